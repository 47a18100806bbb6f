// A log read as text a chunk at a time, for Backend.logs and make logs: a character cut between
// two chunks (or two reads of a growing log) is decoded whole, and a stored log is streamed from
// the store, so a log of any size is never held whole in memory nor copied to disk first.
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
  const bytes = await store.read(key);
  if (bytes) yield* utf8Text(bytes);
}

/**
 * A stored log that grows while it is followed: each `added()` reads only the bytes past those
 * read before. A character cut by the end of one read waits in the decoder for the next.
 */
export class StoredLogTail {
  private offset = 0;
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    private readonly store: Store,
    private readonly key: string,
  ) {}

  /** The text added since the last call (nothing while the log is missing). */
  async *added(): AsyncGenerator<string> {
    const bytes = await this.store.read(this.key, { start: this.offset });
    for await (const chunk of bytes ?? []) {
      this.offset += chunk.length;
      const text = this.decoder.write(chunk);
      if (text) yield text;
    }
  }

  /** Once the log is complete: what is left of a character it ended in the middle of. */
  rest(): string {
    return this.decoder.end();
  }
}
