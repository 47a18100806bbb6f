// Stored logs read as text: streamed from the store (no temporary copy), and followed as they
// grow a read at a time, a character cut between two chunks or two reads coming out whole.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoredLogTail, storedLogText } from '../../scripts/lib/backends/log-text.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';

let tmp: string;
let store: FileStore;
beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'log-text-'));
  store = new FileStore('file://store', path.join(tmp, 'store'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const EURO = Buffer.from('€'); // 3 bytes

async function joined(texts: AsyncIterable<string>): Promise<string> {
  let all = '';
  for await (const text of texts) all += text;
  return all;
}

describe('storedLogText', () => {
  it('streams a stored log from the store, characters cut between chunks whole, with no temporary copy', async () => {
    const log = '€'.repeat(100_000); // 300,000 bytes: 64 KiB chunks cut characters
    await store.putBytes('runs/r/attempts/1/stdout.log', log);
    const tmpdir = process.env.TMPDIR;
    process.env.TMPDIR = path.join(tmp, 'no-such-folder'); // a copy to a temporary file would fail here
    try {
      expect(await joined(storedLogText(store, 'runs/r/attempts/1/stdout.log'))).toBe(log);
    } finally {
      if (tmpdir === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = tmpdir;
    }
    expect(await joined(storedLogText(store, 'runs/r/attempts/1/stderr.log'))).toBe('');
  });
});

describe('StoredLogTail', () => {
  it('reads only what was added since its last read; a character cut by a read comes out whole with the next', async () => {
    const key = 'runs/r/attempts/1/stdout.log';
    const tail = new StoredLogTail(store, key);
    expect(await joined(tail.added())).toBe(''); // no log yet
    const first = Buffer.concat([Buffer.from('loss 0.5 '), EURO.subarray(0, 1)]);
    await store.putBytes(key, first);
    expect(await joined(tail.added())).toBe('loss 0.5 ');
    await store.putBytes(key, Buffer.concat([first, EURO.subarray(1), Buffer.from('\nloss 0.4\n'), EURO.subarray(0, 2)]));
    expect(await joined(tail.added())).toBe('€\nloss 0.4\n');
    expect(await joined(tail.added())).toBe('');
    expect(tail.rest()).toBe('\ufffd'); // the log ended inside a character
  });
});
