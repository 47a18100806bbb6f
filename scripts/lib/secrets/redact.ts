// Masks secret values in everything Switchyard writes or shows: the experiment's output and
// metrics, the runner's notices and status, `make logs`. Each value is masked as written and as
// the body of a JSON string (how it lands in metrics.jsonl, escaped the JavaScript way or the
// Python `ensure_ascii` way), and each line of a multi-line value on its own. Masking works on
// bytes: output cut anywhere into chunks is masked as if it came whole, because a chunk that
// ends in what could be the start of a secret is held back until the next chunk (or the end)
// decides. Whatever is held is at most one secret long.
//
// Values shorter than MIN_SECRET_LENGTH are masked too (never shown), but such a value also
// turns up in ordinary text (a 4-digit PIN matches step counters), so masking it garbles the
// logs: `short` names them so the runner can warn. Empty values have nothing to mask.
import { Transform } from 'node:stream';

export const MIN_SECRET_LENGTH = 8;

/** .env keys masked whenever they are set, declared or not: the store's and Kaggle's credentials. */
export const CREDENTIAL_KEYS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'KAGGLE_KEY'] as const;

/** Every value to mask: the declared keys and the credential keys, from each source that sets them. */
export function secretsToMask(declared: readonly string[], ...sources: Record<string, string | undefined>[]): [string, string][] {
  const keys = [...new Set([...declared, ...CREDENTIAL_KEYS])];
  return keys.flatMap((k) => sources.flatMap((s) => (s[k] ? [[k, s[k]] as [string, string]] : [])));
}

/** Forwards what is written to it, masked; `end` flushes what it held back. */
export interface MaskingPipe {
  write(chunk: Buffer): void;
  end(): void;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
/** A string's UTF-8 bytes, one char per byte, so a regular expression matches bytes. */
const asBytes = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

/** The spellings of one value that may reach a log: raw, as JSON string bodies, line by line. */
function spellings(value: string): string[] {
  const json = JSON.stringify(value).slice(1, -1);
  const asciiJson = json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const lines = value.includes('\n') ? value.split(/\r?\n/).filter((l) => l.length >= MIN_SECRET_LENGTH) : [];
  return [value, json, asciiJson, ...lines];
}

export class Redactor {
  /** keys whose values are shorter than MIN_SECRET_LENGTH (masked all the same) */
  readonly short: string[];
  /** byte spelling → the key it masks */
  private readonly names = new Map<string, string>();
  private readonly pattern: RegExp | null;
  private readonly longest: number;
  private readonly firstBytes: Set<string>;

  constructor(secrets: Iterable<[string, string]>) {
    const short = new Set<string>();
    for (const [name, value] of secrets) {
      if (!value) continue;
      if (value.length < MIN_SECRET_LENGTH) short.add(name);
      for (const s of spellings(value)) if (!this.names.has(asBytes(s))) this.names.set(asBytes(s), name);
    }
    this.short = [...short];
    // Longest first: where two spellings start at one place, the longer one is masked.
    const all = [...this.names.keys()].sort((a, b) => b.length - a.length);
    this.pattern = all.length ? new RegExp(all.map(escapeRegExp).join('|'), 'g') : null;
    this.longest = all[0]?.length ?? 0;
    this.firstBytes = new Set(all.map((s) => s[0]!));
  }

  get empty(): boolean {
    return this.pattern === null;
  }

  text(s: string): string {
    return this.pattern ? Buffer.from(this.mask(asBytes(s), true).out, 'latin1').toString('utf8') : s;
  }

  pipe(write: (chunk: Buffer) => void): MaskingPipe {
    if (!this.pattern) return { write, end() {} };
    let held = '';
    const emit = (out: string) => out && write(Buffer.from(out, 'latin1'));
    return {
      write: (chunk) => {
        const { out, rest } = this.mask(held + chunk.toString('latin1'), false);
        held = rest;
        emit(out);
      },
      end: () => {
        emit(this.mask(held, true).out);
        held = '';
      },
    };
  }

  /** pipe() as a stream, for a pipeline that keeps the reader's pace: bytes in, masked bytes out. */
  stream(): Transform {
    const masked = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        pipe.write(chunk);
        done();
      },
      flush(done) {
        pipe.end();
        done();
      },
    });
    const pipe = this.pipe((b) => masked.push(b));
    return masked;
  }

  /** Masks `text` (bytes); unless `final`, holds back from the first place a secret may begin. */
  private mask(text: string, final: boolean): { out: string; rest: string } {
    const re = this.pattern!;
    let out = '';
    let pos = 0;
    let hold = final ? text.length : this.openStart(text, 0);
    for (;;) {
      re.lastIndex = pos;
      const m = re.exec(text);
      // A match that starts before `hold` is complete and no longer spelling can start there.
      if (!m || m.index >= hold) return { out: out + text.slice(pos, hold), rest: text.slice(hold) };
      out += `${text.slice(pos, m.index)}[redacted ${this.names.get(m[0])}]`;
      pos = m.index + m[0].length;
      if (pos > hold) hold = this.openStart(text, pos); // that start was inside the match
    }
  }

  /** The first index from `from` where the rest of `text` is a proper prefix of a spelling. */
  private openStart(text: string, from: number): number {
    for (let i = Math.max(from, text.length - this.longest + 1); i < text.length; i++) {
      if (!this.firstBytes.has(text[i]!)) continue;
      const tail = text.slice(i);
      for (const s of this.names.keys()) if (s.length > tail.length && s.startsWith(tail)) return i;
    }
    return text.length;
  }
}
