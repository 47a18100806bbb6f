// One shard file read record by record, validated on the way, and a k-way merge over several.
// Memory: one read buffer per shard plus the current record; nothing else is kept.
import { UserError } from '../ui/errors.js';
import { compareKeys, formatKey, headerOf, type ShardHeader, type ShardKey } from './header.js';
import { LineReader } from './lines.js';

export interface StreamOptions {
  /** Allow equal keys on consecutive lines of one shard (best-by-score inputs). */
  allowDuplicateKeys: boolean;
  /** Reject integer keys outside the header's key_range. */
  checkRange: boolean;
  /**
   * Parse only the key where the line starts with `{"key":<integer>` (records are then not fully
   * validated: verifyCoverage does that); other lines, and a last line without '\n', are parsed.
   */
  keysOnly?: boolean;
  /** Appended to every content error: how to fix it for shard i. */
  fix: (index: number) => string;
}

export class ShardStream {
  key: ShardKey = 0;
  record: Record<string, unknown> = {};
  records = 0;
  done = false;

  private constructor(
    readonly file: string,
    readonly header: ShardHeader,
    readonly reader: LineReader,
    private readonly opts: StreamOptions,
  ) {}

  /** Opens a shard and reads its header; a UserError naming the file on a bad header. */
  static async open(file: string, opts: StreamOptions, name?: string): Promise<ShardStream> {
    const reader = await LineReader.open(file);
    const header = await headerOf(reader);
    if (typeof header === 'string') {
      await reader.close();
      throw new UserError(`${name ?? file}: ${header}`);
    }
    return new ShardStream(file, header, reader, opts);
  }

  private get where(): string {
    return `shard ${this.header.shard_index} of ${this.header.shard_count}`;
  }

  get index(): number {
    return this.header.shard_index;
  }

  /** Moves to the next record; false (and `done`) at the end, after checking the record count. */
  async advance(): Promise<boolean> {
    if (!(await this.reader.next())) {
      this.done = true;
      const expected = this.header.records;
      if (this.records < expected)
        this.fail(`${this.where} is truncated: header says ${expected} records, file has ${this.records}`);
      return false;
    }
    return this.take();
  }

  /**
   * Moves to the next record if its line is already buffered; false, with nothing consumed,
   * when `advance()` has to read. The merge loops call this first: most records need no I/O,
   * and then no promise either.
   */
  advanceBuffered(): boolean {
    return this.reader.nextBuffered() && this.take();
  }

  /** Validates the reader's current line as the next record. */
  private take(): boolean {
    const r = this.reader;
    if (this.opts.keysOnly && !r.unterminated) {
      const key = fastIntKey(r.buf, r.start, r.end);
      if (key !== undefined) return this.accept(key, EMPTY);
    }
    let value: unknown;
    try {
      value = JSON.parse(r.text());
    } catch {
      this.fail(r.unterminated ? this.truncated() : `${this.where} is corrupt: line ${r.lineNo} is not valid JSON`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      this.fail(r.unterminated ? this.truncated() : `${this.where} is corrupt: line ${r.lineNo} is not a JSON object`);
    const record = value as Record<string, unknown>;
    const key = record.key;
    if (!(typeof key === 'string' || (typeof key === 'number' && Number.isSafeInteger(key))))
      this.fail(`${this.where} is corrupt: line ${r.lineNo} has no string or integer "key"`);
    return this.accept(key, record);
  }

  private truncated(): string {
    return `${this.where} is truncated: header says ${this.header.records} records, file has ${this.records} and a cut-off line`;
  }

  private accept(key: ShardKey, record: Record<string, unknown>): boolean {
    const r = this.reader;
    const expected = this.header.records;
    if (this.records === expected)
      this.fail(`${this.where} is corrupt: header says ${expected} records, file has more (line ${r.lineNo})`);
    if (this.records > 0) {
      const c = compareKeys(this.key, key);
      if (c > 0 || (c === 0 && !this.opts.allowDuplicateKeys))
        this.fail(
          c > 0
            ? `${this.where} is not sorted by key: line ${r.lineNo} has key ${formatKey(key)} after ${formatKey(this.key)}`
            : `${this.where} has key ${formatKey(key)} twice (lines ${r.lineNo - 1} and ${r.lineNo})`,
        );
    }
    const [lo, hi] = this.header.key_range;
    if (this.opts.checkRange && typeof key === 'number' && (key < lo || key >= hi))
      this.fail(`${this.where} has key ${key} on line ${r.lineNo}, outside its key range [${lo}, ${hi})`);
    this.key = key;
    this.record = record;
    this.records++;
    return true;
  }

  close(): Promise<void> {
    return this.reader.close();
  }

  private fail(message: string): never {
    throw new UserError(`${message}; ${this.opts.fix(this.header.shard_index)}`);
  }
}

const EMPTY: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;
// `{"key":` as bytes, compared in JS: a native Buffer.compare per line cost more than the rest
// of the key parse.
const PREFIX = [...Buffer.from('{"key":')];

/** The integer key of a line starting `{"key":<digits>` then `,` or `}`; undefined otherwise. */
function fastIntKey(buf: Buffer, start: number, end: number): number | undefined {
  const p = PREFIX.length;
  if (end - start < p + 2) return undefined;
  for (let k = 0; k < p; k++) if (buf[start + k] !== PREFIX[k]) return undefined;
  let i = start + p;
  let neg = false;
  if (buf[i] === 0x2d) {
    neg = true;
    i++;
  }
  const first = i;
  let v = 0;
  while (i < end) {
    const c = buf[i]!;
    if (c < 0x30 || c > 0x39) break;
    v = v * 10 + (c - 0x30);
    i++;
  }
  const digits = i - first;
  if (digits === 0 || digits > 15 || (digits > 1 && buf[first] === 0x30)) return undefined;
  if (i >= end || (buf[i] !== 0x2c && buf[i] !== 0x7d)) return undefined;
  return neg ? -v : v;
}

/** Min-heap of streams ordered by (current key, position in the input list). */
export class StreamHeap {
  private readonly items: { s: ShardStream; pos: number }[] = [];

  get size(): number {
    return this.items.length;
  }

  push(s: ShardStream, pos: number): void {
    this.items.push({ s, pos });
    this.up(this.items.length - 1);
  }

  peek(): { s: ShardStream; pos: number } | undefined {
    return this.items[0];
  }

  /** Whether the top stream, after it advanced, still comes before every other (a done one does not). */
  topStaysFirst(): boolean {
    const n = this.items.length;
    if (n === 0 || this.items[0]!.s.done) return false;
    return (n < 2 || this.less(0, 1)) && (n < 3 || this.less(0, 2));
  }

  /** After the top stream advanced: restore order, or drop it when it is done. */
  fixTop(): void {
    const top = this.items[0];
    if (!top) return;
    if (top.s.done) {
      const last = this.items.pop()!;
      if (this.items.length === 0) return;
      this.items[0] = last;
    }
    this.down(0);
  }

  private less(a: number, b: number): boolean {
    const x = this.items[a]!;
    const y = this.items[b]!;
    const c = compareKeys(x.s.key, y.s.key);
    return c < 0 || (c === 0 && x.pos < y.pos);
  }

  private swap(a: number, b: number): void {
    const t = this.items[a]!;
    this.items[a] = this.items[b]!;
    this.items[b] = t;
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) return;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    const n = this.items.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(l, m)) m = l;
      if (r < n && this.less(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}

/** Opens every file (closing all on failure); the caller closes them. */
export async function openAll(files: string[], opts: StreamOptions, name?: (file: string) => string): Promise<ShardStream[]> {
  const streams: ShardStream[] = [];
  try {
    for (const f of files) streams.push(await ShardStream.open(f, opts, name?.(f)));
    return streams;
  } catch (err) {
    await closeAll(streams);
    throw err;
  }
}

export async function closeAll(streams: ShardStream[]): Promise<void> {
  await Promise.allSettled(streams.map((s) => s.close()));
}
