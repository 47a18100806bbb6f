// A file the experiment appends to (its metrics) when there are secrets to mask: the
// experiment writes it in a private temporary folder outside the project, and the runner
// copies what was appended, masked, into the attempt's own file, which is what the store,
// the status line and `make logs` see. The temporary folder goes when the attempt ends.
import { appendFileSync, closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { MaskingPipe, Redactor } from './redact.js';

export class MaskedCopy {
  /** where the experiment writes */
  readonly source: string;
  /** the private folder of `source`, removed by `close` (or by the reaper, should the runner die) */
  readonly dir: string;
  private readonly pipe: MaskingPipe;
  private offset = 0;
  private failed = false;

  /** `onError` hears the first failure to copy (a full disk): later lines are dropped. */
  constructor(dest: string, redactor: Redactor, private readonly onError: (err: Error) => void) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-')); // mode 0700
    this.source = path.join(this.dir, path.basename(dest));
    writeFileSync(this.source, '', { mode: 0o600 });
    this.pipe = redactor.pipe((chunk) => appendFileSync(dest, chunk));
  }

  /** Copies what was appended since the last call. */
  pump(): void {
    this.guard(() => {
      const fd = openSync(this.source, 'r');
      try {
        const buf = Buffer.alloc(1 << 16);
        for (let n; (n = readSync(fd, buf, 0, buf.length, this.offset)) > 0; this.offset += n) this.pipe.write(buf.subarray(0, n));
      } finally {
        closeSync(fd);
      }
    });
  }

  /** The last copy, then the temporary folder is removed. */
  close(): void {
    this.pump();
    this.guard(() => this.pipe.end());
    rmSync(this.dir, { recursive: true, force: true });
  }

  private guard(fn: () => void): void {
    if (this.failed) return;
    try {
      fn();
    } catch (err) {
      this.failed = true;
      this.onError(err as Error);
    }
  }
}
