// train.metrics_from: printed progress lines become metrics lines.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OutputMetrics } from '../../scripts/lib/runner/output-metrics.js';
import { compileMetricsPattern, metricsOfLine } from '../../scripts/lib/spec/metrics-pattern.js';

const MICROGPT = String.raw`step (?<step>\d+) / \d+ \| loss (?<loss>[\d.]+)`;

describe('metrics patterns', () => {
  it('takes each named group, as a number where it reads as one', () => {
    const re = compileMetricsPattern(MICROGPT);
    expect(metricsOfLine(re, 'step 12 / 1000 | loss 2.4871')).toEqual({ step: 12, loss: 2.4871 });
    expect(metricsOfLine(re, 'sample: hello')).toBeNull();
    const mixed = compileMetricsPattern(String.raw`(?P<phase>\w+) acc=(?<acc>\S+)(?: lr=(?<lr>\S+))?`);
    expect(metricsOfLine(mixed, 'eval acc=0.93')).toEqual({ phase: 'eval', acc: 0.93 });
    expect(metricsOfLine(mixed, 'eval acc=nan lr=1e-3')).toEqual({ phase: 'eval', acc: 'nan', lr: 0.001 });
  });

  it('says what is wrong with a pattern', () => {
    expect(() => compileMetricsPattern('step (?<step>\\d+')).toThrow(/^not a regular expression \(/);
    expect(() => compileMetricsPattern(String.raw`step (\d+)`)).toThrow(/has no named group like \(\?<loss>/);
  });
});

describe('OutputMetrics', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'metrics-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('matches whole lines of each stream, however the output is cut, at CR or LF', () => {
    const file = path.join(dir, 'metrics.jsonl');
    const m = new OutputMetrics(MICROGPT, file);
    const out = Buffer.from('step 1 / 3 | loss 3.5\nstep 2 / 3 | lo');
    m.stdout.feed(out.subarray(0, 9));
    m.stdout.feed(out.subarray(9));
    m.stderr.feed(Buffer.from('ss 9.9\n')); // not glued to stdout's partial line
    m.stdout.feed(Buffer.from('ss 2.5\rstep 3 / 3 | loss 1.25'));
    m.end();
    expect(readFileSync(file, 'utf8')).toBe('{"step":1,"loss":3.5}\n{"step":2,"loss":2.5}\n{"step":3,"loss":1.25}\n');
  });

  it('keeps a character split across chunks whole', () => {
    const file = path.join(dir, 'metrics.jsonl');
    const m = new OutputMetrics(String.raw`(?<name>\S+) loss (?<loss>[\d.]+)`, file);
    const line = Buffer.from('épocha loss 0.5\n');
    m.stdout.feed(line.subarray(0, 1));
    m.stdout.feed(line.subarray(1));
    expect(readFileSync(file, 'utf8')).toBe('{"name":"épocha","loss":0.5}\n');
  });
});
