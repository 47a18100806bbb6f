// Every byte of a Store.read, for tests of the stores and what reads through them.

/** Every byte of a store read; null for a missing object. */
export async function readAll(read: Promise<AsyncIterable<Buffer> | null>): Promise<Buffer | null> {
  const chunks = await read;
  if (!chunks) return null;
  const got: Buffer[] = [];
  for await (const chunk of chunks) got.push(chunk);
  return Buffer.concat(got);
}
