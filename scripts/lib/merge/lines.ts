// Streaming line reader and buffered writer for shard files: bounded memory (one growing chunk
// per file), SHA-256 and byte count of everything read or written, computed on the way.
import { createHash, type Hash } from 'node:crypto';
import { readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

const CHUNK = 1 << 20;
const NL = 0x0a;

/**
 * Reads a file line by line. After `next()` resolves true, `buf[start, end)` is the line without
 * its '\n'; the slice is valid only until the following `next()` (the buffer is reused).
 */
export class LineReader {
  buf: Buffer;
  start = 0;
  end = 0;
  /** 1-based number of the current line. */
  lineNo = 0;
  /** True when the current line is the file's last and has no '\n' (possibly cut off). */
  unterminated = false;
  bytes = 0;
  private readonly hash: Hash = createHash('sha256');
  private head = 0; // first unread byte in buf
  private tail = 0; // end of valid data in buf
  private eof = false;
  private closed = false;

  private constructor(
    private readonly fh: FileHandle,
    chunk: number,
  ) {
    this.buf = Buffer.allocUnsafe(chunk);
  }

  static async open(file: string, chunk = CHUNK): Promise<LineReader> {
    return new LineReader(await open(file, 'r'), chunk);
  }

  /** Advances to the next line; false at the end of the file. */
  async next(): Promise<boolean> {
    for (;;) {
      if (this.nextBuffered()) return true;
      if (this.eof) {
        if (this.head === this.tail) return false;
        this.start = this.head;
        this.end = this.tail;
        this.head = this.tail;
        this.lineNo++;
        this.unterminated = true;
        return true;
      }
      this.fill();
    }
  }

  /**
   * Advances to the next line if a whole one ('\n' included) is already buffered; false, with
   * nothing consumed, when `next()` has to read. Lets a hot loop skip a promise per line.
   */
  nextBuffered(): boolean {
    if (this.head >= this.tail) return false;
    const nl = this.buf.indexOf(NL, this.head);
    if (nl === -1 || nl >= this.tail) return false;
    this.start = this.head;
    this.end = nl;
    this.head = nl + 1;
    this.lineNo++;
    return true;
  }

  /** The current line as a string. */
  text(): string {
    return this.buf.toString('utf8', this.start, this.end);
  }

  /** Where in `buf` the lines taken so far end: just past the current line's '\n'. */
  get taken(): number {
    return this.head;
  }

  /** Hex SHA-256 of the whole file; call after `next()` returned false. */
  digest(): string {
    return this.hash.digest('hex');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  private fill(): void {
    if (this.head > 0) {
      // Keep the unfinished line: move it to the front (it is never longer than the buffer).
      this.buf.copy(this.buf, 0, this.head, this.tail);
      this.tail -= this.head;
      this.head = 0;
    }
    if (this.tail === this.buf.length) {
      // One line longer than the buffer: grow it (memory is bounded by the longest record).
      const bigger = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(bigger, 0, 0, this.tail);
      this.buf = bigger;
    }
    // A synchronous read: the caller waits for it either way, and a read the page cache answers
    // costs a fraction of the thread-pool round trip (a 260 MiB merge spent more time idle on
    // them than reading).
    const bytesRead = readSync(this.fh.fd, this.buf, this.tail, this.buf.length - this.tail, null);
    if (bytesRead === 0) {
      this.eof = true;
      return;
    }
    this.hash.update(this.buf.subarray(this.tail, this.tail + bytesRead));
    this.bytes += bytesRead;
    this.tail += bytesRead;
  }
}

/**
 * Appends bytes to an open file through two buffers: one fills while the other is written, so
 * the caller's work overlaps the write. Hashes and counts what it writes.
 */
export class BufferedWriter {
  bytes = 0;
  private buf: Buffer;
  private spare: Buffer;
  private used = 0;
  /** The write of `spare`'s bytes, in flight. */
  private writing: Promise<void> = Promise.resolve();
  private readonly hash: Hash = createHash('sha256');

  constructor(
    private readonly fh: FileHandle,
    size = 2 * CHUNK,
  ) {
    this.buf = Buffer.allocUnsafe(size);
    this.spare = Buffer.allocUnsafe(size);
  }

  /** Writes `src[start, end)` followed by '\n'. */
  async line(src: Buffer, start: number, end: number): Promise<void> {
    if (this.lineBuffered(src, start, end)) return;
    await this.flush();
    if (this.lineBuffered(src, start, end)) return;
    // One line longer than the buffer: straight to the file.
    await this.writing;
    await this.raw(Buffer.concat([src.subarray(start, end), Buffer.from('\n')]));
  }

  /** Buffers `src[start, end)` + '\n' if it fits; false, with nothing written, when `line()` must flush. */
  lineBuffered(src: Buffer, start: number, end: number): boolean {
    const len = end - start + 1;
    if (this.used + len > this.buf.length) return false;
    src.copy(this.buf, this.used, start, end);
    this.buf[this.used + len - 1] = NL;
    this.used += len;
    return true;
  }

  /** Writes `src[start, end)` as it is (whole lines, '\n's included). */
  async lines(src: Buffer, start: number, end: number): Promise<void> {
    if (this.linesBuffered(src, start, end)) return;
    await this.flush();
    if (this.linesBuffered(src, start, end)) return;
    await this.writing; // more than the buffer holds: straight to the file, done before `src` is reused
    await this.raw(src.subarray(start, end));
  }

  /** Buffers `src[start, end)` if it fits; false, with nothing written, when `lines()` must flush. */
  linesBuffered(src: Buffer, start: number, end: number): boolean {
    const len = end - start;
    if (this.used + len > this.buf.length) return false;
    src.copy(this.buf, this.used, start, end);
    this.used += len;
    return true;
  }

  /** Waits for the previous write, then starts writing the buffered bytes and returns. */
  async flush(): Promise<void> {
    await this.writing;
    if (this.used === 0) return;
    const data = this.buf.subarray(0, this.used);
    [this.buf, this.spare] = [this.spare, this.buf];
    this.used = 0;
    this.writing = this.raw(data);
    // Resolve as soon as the buffer is free to fill again; the write is awaited by the next
    // flush, or by `done()`. A failure surfaces there.
    this.writing.catch(() => undefined);
  }

  /** Flushes everything and waits for the last write. */
  async done(): Promise<void> {
    await this.flush();
    await this.writing;
  }

  digest(): string {
    return this.hash.digest('hex');
  }

  private async raw(data: Buffer): Promise<void> {
    this.hash.update(data);
    this.bytes += data.length;
    let off = 0;
    while (off < data.length) {
      const { bytesWritten } = await this.fh.write(data, off, data.length - off, null);
      off += bytesWritten;
    }
  }
}
