// A log read as text a chunk at a time, for Backend.logs and make logs: a character cut between
// two chunks is decoded whole, and a stored log is copied to a temporary file and read from
// there, so a log of any size is never held whole in memory.
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { Store } from '../store/store.js';

/** The UTF-8 text of byte chunks, as they come. */
export async function* utf8Text(chunks: AsyncIterable<Buffer>): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  for await (const chunk of chunks) {
    const text = decoder.write(chunk);
    if (text) yield text;
  }
  const rest = decoder.end();
  if (rest) yield rest;
}

/** The text of the log the store holds at `key`, a chunk at a time; nothing when it holds none. */
export async function* storedLogText(store: Store, key: string): AsyncGenerator<string> {
  if (!(await store.stat(key))) return;
  // The store's one way to read without a buffer of the whole object: into a file (verified).
  const dir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-log-'));
  try {
    const file = path.join(dir, path.basename(key));
    await store.get(key, file);
    yield* utf8Text(createReadStream(file));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
