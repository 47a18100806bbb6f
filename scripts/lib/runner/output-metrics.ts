// Metrics from output (`train.metrics_from`): splits what the experiment prints into lines and
// appends a metrics line for each that the spec's pattern matches, so a program that only
// prints its progress still shows step and loss in the status line and `make status`.
// Each stream has its own buffer (a line is never glued from both); \r ends a line too, since
// progress bars redraw with it. The experiment may still append to the same file itself.
import { appendFileSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { compileMetricsPattern, metricsOfLine } from '../spec/metrics-pattern.js';

/** A line longer than this is judged by its first bytes only: no unbounded buffer. */
const MAX_LINE = 64 * 1024;

class LineSplitter {
  private partial = '';
  // A chunk may end inside a multi-byte character.
  private readonly decoder = new StringDecoder('utf8');

  constructor(private readonly onLine: (line: string) => void) {}

  feed(chunk: Buffer): void {
    const parts = (this.partial + this.decoder.write(chunk)).split(/\r\n|\r|\n/);
    this.partial = parts.pop()!.slice(0, MAX_LINE);
    for (const line of parts) this.onLine(line);
  }

  end(): void {
    this.partial += this.decoder.end();
    if (this.partial) this.onLine(this.partial);
    this.partial = '';
  }
}

export class OutputMetrics {
  readonly stdout: LineSplitter;
  readonly stderr: LineSplitter;

  constructor(pattern: string, metricsFile: string) {
    const re = compileMetricsPattern(pattern);
    const onLine = (line: string) => {
      const m = metricsOfLine(re, line);
      if (m) appendFileSync(metricsFile, JSON.stringify(m) + '\n');
    };
    this.stdout = new LineSplitter(onLine);
    this.stderr = new LineSplitter(onLine);
  }

  /** The last line of each stream, if it had no newline. */
  end(): void {
    this.stdout.end();
    this.stderr.end();
  }
}
