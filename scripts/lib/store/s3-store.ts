// s3://bucket/prefix stores (AWS S3 and S3-compatible servers). Loaded only through openStore's
// dynamic import, so file:// stores never load the AWS SDK.
//
// Integrity: every object carries the SHA-256 of its bytes as metadata (x-amz-meta-sha256).
// Metadata is fixed when an upload is created, so put hashes the file first (the bytes its size
// said when the put began), then hashes them again as its parts are read (a file that changed in
// between is caught before the object is completed, and its upload aborted).
// Larger files go up in parts read into a buffer pool the store shares (s3-multipart.ts).
// After an upload the HEAD must show the size and that metadata, and the server's own MD5 must
// match what was sent: the ETag of a single-part object, or each part's ETag.
// Where the server's ETags are not MD5s (SSE-KMS, some S3-compatible servers) the object is read
// back and hashed instead. Every get hashes what it receives and refuses bytes that differ from
// the metadata, naming the key, so an object damaged at rest is never passed on. The one
// exception is `read`, a ranged read for logs, which a whole-object digest cannot check.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type GetObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { sha256Hex } from '../hash.js';
import { writeAtomically } from './atomic-file.js';
import type { ByteProgress } from '../ui/progress.js';
import { configProblem, makeClient, parseS3Url, probeProblem, type S3ClientSettings } from './s3-client.js';
import { bareETag, BufferPool, bufferParts, fileParts, uploadMultipart, type PartReader } from './s3-multipart.js';
import { checkKey, CorruptObject, type Store, type StoredObject } from './store.js';

export interface S3StoreOptions extends S3ClientSettings {
  /** a progress bar per large transfer, e.g. byteProgress from ui/progress.ts */
  progress?: (label: string) => ByteProgress;
  /**
   * multipart part size in bytes (default 16 MiB); files up to this size go up in one PUT. A
   * checkpoint's tensors and shards are mostly a few to some tens of MiB: at 8 MiB most of them
   * took a multipart upload (create, two or more parts, complete) where one PUT does, and servers
   * that join parts by copying them (s3rver, some S3-compatible stores) wrote their bytes twice.
   * Committing a 1 GiB step of such files to s3rver: 94 MB/s at 8 MiB x 8 buffers, 109 MB/s at
   * 16 MiB x 4, in the same memory.
   */
  partSize?: number;
  /** parts of one object in flight at once, buffers permitting (default 4) */
  queueSize?: number;
  /** buffers of partSize the whole store shares for what put reads from files (default 4: 64 MiB) */
  partBuffers?: number;
  /** attempts per request, with the SDK's standard backoff (default 5) */
  maxAttempts?: number;
}

const SHA256_RE = /^[0-9a-f]{64}$/;
/** Reads of an object that did not match its metadata, before getBytes calls it corrupt. */
const TORN_READ_TRIES = 4;
const isMissing = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
};
/** A range that starts at or past the object's end (416): the object has no bytes there. */
const isPastEnd = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 416;
const NO_BYTES: AsyncIterable<Buffer> = { async *[Symbol.asyncIterator]() {} };

/** `body` past its first `count` bytes. */
async function* skipped(body: AsyncIterable<Buffer>, count: number): AsyncIterable<Buffer> {
  for await (const chunk of body) {
    if (count >= chunk.length) {
      count -= chunk.length;
      continue;
    }
    yield count ? chunk.subarray(count) : chunk;
    count = 0;
  }
}

/** Size and SHA-256 of a file's first `size` bytes (what a put sends of a file that may grow), streamed. */
async function hashHead(file: string, size: number): Promise<StoredObject> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { end: size - 1, highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return { size, sha256: hash.digest('hex') };
}

export class S3Store implements Store {
  readonly url: string;
  readonly localDir = null;
  readonly bucket: string;
  private readonly base: string;
  private readonly client: S3Client;
  /** 2 attempts, 5 s without a reply: the first request of a store fails fast on a dead endpoint */
  private readonly probeClient: S3Client;
  private probing?: Promise<void>;
  private readonly partSize: number;
  private readonly pool: BufferPool;

  constructor(
    url: string,
    private readonly opts: S3StoreOptions,
  ) {
    this.url = url.replace(/\/+$/, '');
    ({ bucket: this.bucket, base: this.base } = parseS3Url(this.url));
    this.client = makeClient(opts, opts.maxAttempts ?? 5);
    // Patient enough for a busy server; a refused connection still fails at once.
    this.probeClient = makeClient(opts, 3, 15_000);
    this.partSize = opts.partSize ?? 16 * 1024 * 1024;
    this.pool = new BufferPool(this.partSize, opts.partBuffers ?? 4);
  }

  locate(key: string): string {
    return `s3://${this.bucket}/${this.base}${key}`;
  }

  /** Releases the HTTP connections (the process can exit without it). */
  close(): void {
    this.client.destroy();
    this.probeClient.destroy();
    this.pool.drop();
  }

  async put(key: string, srcPath: string, expected?: StoredObject): Promise<StoredObject> {
    const { size } = await stat(srcPath);
    // A file of another size than expected is refused before anything is sent.
    if (expected && expected.size !== size) throw new Error(this.unexpected(key));
    if (size <= this.partSize) return this.putSmallFile(key, srcPath, size, expected);
    // The hash goes into the object's metadata before the first byte: known, or read once first.
    // Only the `size` bytes stat saw are hashed and sent, so a log that grows meanwhile goes up as it was then.
    const { sha256 } = expected ?? (await hashHead(srcPath, size));
    const changed = `${srcPath} changed while it was uploaded to ${this.locate(key)}`;
    const hash = createHash('sha256');
    // The parts are hashed as they are read, in order: a change is known before the object is
    // completed, and the upload is aborted, leaving any object already at the key in place.
    const unchanged = () => {
      if (hash.digest('hex') !== sha256) throw new Error(changed);
    };
    const file = await open(srcPath, 'r');
    let allChecked: boolean;
    try {
      allChecked = await this.upload(key, size, sha256, fileParts(file, changed, this.pool, (bytes) => hash.update(bytes)), unchanged);
    } finally {
      await file.close();
    }
    const got = { size, sha256 };
    await this.verifyUpload(key, got, () => allChecked);
    return got;
  }

  private unexpected(key: string): string {
    return `${this.locate(key)}: the file does not match its expected SHA-256 (changed since it was hashed)`;
  }

  async putBytes(key: string, data: Buffer | string): Promise<StoredObject> {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (buf.length <= this.partSize) return this.putSmall(key, buf);
    const sent = { size: buf.length, sha256: sha256Hex(buf) };
    const allChecked = await this.upload(key, sent.size, sent.sha256, bufferParts(buf));
    await this.verifyUpload(key, sent, () => allChecked);
    return sent;
  }

  /** The GET is sent for each try of the write: one tried again (its folder was removed meanwhile) needs a body of its own. */
  async get(key: string, destPath: string): Promise<StoredObject> {
    return writeAtomically(destPath, async (tmp) => {
      const res = await this.getObject(key);
      if (!res) throw new Error(`${this.locate(key)}: no such object`);
      const got = await this.receive(key, res, createWriteStream(tmp));
      this.checkReceived(key, res, got);
      return got;
    });
  }

  /**
   * The object's bytes, checked against its size and sha256. A mismatch is read again before it
   * counts as corruption: a server that replaces an object's body and metadata one after the
   * other (s3rver does) can answer a read that races an overwrite with one version's bytes and
   * the other's metadata, and the small records read here (run.json, the agent's files) are
   * overwritten often. Reads of an object that never disagrees cost nothing more.
   */
  async getBytes(key: string): Promise<Buffer | null> {
    for (let tries = 1; ; tries++) {
      const res = await this.getObject(key);
      if (!res) return null;
      const bytes = await res.Body!.transformToByteArray();
      const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      try {
        this.checkReceived(key, res, { size: buf.length, sha256: createHash('sha256').update(buf).digest('hex') });
        return buf;
      } catch (err) {
        if (tries >= TORN_READ_TRIES) throw err;
        await sleep(25 * 2 ** (tries - 1)); // the overwrite's other half lands in a few ms
      }
    }
  }

  /**
   * One GET of the bytes from `start` on, its body streamed as it arrives; unverified (see
   * Store.read): the sha256 metadata describes the whole object. From 0 it asks no range, as S3
   * refuses any range of an empty object.
   */
  async read(key: string, opts: { start?: number } = {}): Promise<AsyncIterable<Buffer> | null> {
    const start = opts.start ?? 0;
    try {
      const res = await this.getObject(key, start > 0 ? `bytes=${start}-` : undefined);
      if (!res) return null;
      // A server that ignores Range answers the whole object (200, no Content-Range).
      return start > 0 && !res.ContentRange ? skipped(res.Body as Readable, start) : (res.Body as Readable);
    } catch (err) {
      if (isPastEnd(err)) return NO_BYTES;
      throw err;
    }
  }

  async stat(key: string): Promise<StoredObject | null> {
    const head = await this.head(key);
    if (!head) return null;
    if (head.sha256 && SHA256_RE.test(head.sha256)) return { size: head.size, sha256: head.sha256 };
    return this.hashRemote(key); // written by another tool: no sha256 metadata
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3((c) =>
        c.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.base + prefix, ContinuationToken: token })),
      );
      // A key ending in `/` is a folder marker (a console's "create folder"), not an object.
      for (const o of page.Contents ?? []) if (o.Key && !o.Key.endsWith('/')) keys.push(o.Key.slice(this.base.length));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  async delete(key: string): Promise<void> {
    await this.s3((c) => c.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) })));
  }

  private objectKey(key: string): string {
    return this.base + checkKey(key);
  }

  /** Runs an SDK call after the store's first-use check, turning config problems into UserErrors. */
  private async s3<T>(call: (client: S3Client) => Promise<T>): Promise<T> {
    await this.ready();
    try {
      return await call(this.client);
    } catch (err) {
      throw configProblem(err, this.url, this.bucket, this.opts) ?? err;
    }
  }

  /** One cheap listing on first use: reachable, bucket exists, keys accepted. Other errors are left to the real call. */
  private ready(): Promise<void> {
    this.probing ??= this.probeClient
      .send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.base, MaxKeys: 1 }))
      .then(
        () => undefined,
        (err: unknown) => {
          const problem = probeProblem(err, this.url, this.bucket, this.opts);
          if (!problem) return;
          this.probing = undefined;
          throw problem;
        },
      );
    return this.probing;
  }

  /** A file of one part, read into a buffer of the pool (so every upload's memory is the pool's). */
  private async putSmallFile(key: string, srcPath: string, size: number, expected?: StoredObject): Promise<StoredObject> {
    if (size === 0) return this.putSmallChecked(key, Buffer.alloc(0), expected);
    const file = await open(srcPath, 'r');
    try {
      const part = await fileParts(file, `${srcPath} changed while it was read for ${this.locate(key)}`, this.pool, () => {})(0, size);
      try {
        return await this.putSmallChecked(key, part.bytes, expected);
      } finally {
        part.done();
      }
    } finally {
      await file.close();
    }
  }

  /** putSmall of bytes that must be `expected`: others are refused before they are sent, leaving any object at the key in place. */
  private async putSmallChecked(key: string, data: Buffer, expected?: StoredObject): Promise<StoredObject> {
    const sent = { size: data.length, sha256: sha256Hex(data) };
    if (expected && expected.sha256 !== sent.sha256) throw new Error(this.unexpected(key));
    return this.putSmall(key, data, sent);
  }

  private async putSmall(key: string, data: Buffer, sent: StoredObject = { size: data.length, sha256: sha256Hex(data) }): Promise<StoredObject> {
    const md5 = createHash('md5').update(data).digest();
    await this.s3((c) =>
      c.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.objectKey(key),
          Body: data,
          ContentLength: data.length,
          ContentMD5: md5.toString('base64'), // servers that check it refuse a body damaged on the way
          Metadata: { sha256: sent.sha256 },
        }),
      ),
    );
    await this.verifyUpload(key, sent, (etag) => etag === md5.toString('hex'));
    return sent;
  }

  /** A multipart upload of `size` bytes from `read`; true when every part's ETag was its MD5. `beforeComplete`: see uploadMultipart. */
  private async upload(key: string, size: number, sha256: string, read: PartReader, beforeComplete?: () => void): Promise<boolean> {
    const bar = this.opts.progress?.(`upload ${this.locate(key)}`);
    try {
      const { allChecked } = await this.s3((client) =>
        uploadMultipart({
          client,
          bucket: this.bucket,
          key: this.objectKey(key),
          size,
          partSize: this.partSize,
          queueSize: this.opts.queueSize ?? 4,
          metadata: { sha256 },
          read,
          beforeComplete,
          onProgress: (sent) => bar?.update(sent, size),
        }),
      );
      return allChecked;
    } finally {
      bar?.stop();
    }
  }

  /**
   * The stored object is what we sent, else it is deleted and this throws. `etagChecked`: whether
   * the server's ETag proves the bytes (the MD5 of a single-part upload; every part's, for multipart).
   */
  private async verifyUpload(key: string, sent: StoredObject, etagChecked: (etag: string) => boolean): Promise<void> {
    const problem = await this.uploadProblem(key, sent, etagChecked);
    if (!problem) return;
    await this.delete(key).catch(() => undefined);
    throw new Error(`${this.locate(key)}: ${problem}; the object was deleted`);
  }

  private async uploadProblem(key: string, sent: StoredObject, etagChecked: (etag: string) => boolean): Promise<string | null> {
    // Every put names its bytes' sha256: another one there is another writer's put, landed after
    // ours (the last wins, as with a file store's rename), not ours damaged. Small records such
    // as the agent's have two writers; deleting theirs would lose a good object.
    const superseded = (sha256: string | undefined) => sha256 !== undefined && sha256 !== sent.sha256;
    const head = await this.head(key);
    if (!head) return 'missing right after upload';
    if (superseded(head.sha256)) return null;
    if (head.size !== sent.size || head.sha256 === undefined) {
      return `stored object is not what was sent (${head.size} of ${sent.size} bytes, sha256 metadata ${head.sha256 ?? 'missing'})`;
    }
    if (etagChecked(head.etag)) return null;
    const res = await this.getObject(key); // the server's ETag is no MD5 of the body: read it back
    if (res && superseded(res.Metadata?.sha256)) return null;
    const back = res && (await this.receive(key, res, null));
    return back?.sha256 === sent.sha256 ? null : `stored bytes do not match the source (read back: sha256 ${back?.sha256 ?? 'none'})`;
  }

  private async head(key: string): Promise<{ size: number; sha256?: string; etag: string } | null> {
    try {
      const h = await this.s3((c) => c.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) })));
      return { size: h.ContentLength ?? 0, sha256: h.Metadata?.sha256, etag: bareETag(h.ETag) };
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  /** `range`: an HTTP Range (`bytes=<start>-`), else the whole object. */
  private async getObject(key: string, range?: string): Promise<GetObjectCommandOutput | null> {
    try {
      return await this.s3((c) => c.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Range: range })));
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  private async hashRemote(key: string): Promise<StoredObject> {
    const res = await this.getObject(key);
    if (!res) throw new Error(`${this.locate(key)}: no such object`);
    const got = await this.receive(key, res, null);
    this.checkReceived(key, res, got);
    return got;
  }

  /** Streams a GET body (to `out`, if given), hashing it. */
  private async receive(key: string, res: GetObjectCommandOutput, out: NodeJS.WritableStream | null): Promise<StoredObject> {
    const hash = createHash('sha256');
    const total = res.ContentLength ?? 0;
    const bar = out ? this.opts.progress?.(`download ${this.locate(key)}`) : undefined;
    let size = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        size += chunk.length;
        bar?.update(size, total);
        done(null, chunk);
      },
    });
    try {
      await pipeline(res.Body as Readable, tap, out ?? new Writable({ write: (_chunk, _enc, done) => done() }));
    } finally {
      bar?.stop();
    }
    return { size, sha256: hash.digest('hex') };
  }

  private checkReceived(key: string, res: GetObjectCommandOutput, got: StoredObject): void {
    const where = this.locate(key);
    if (res.ContentLength !== undefined && got.size !== res.ContentLength) {
      throw new Error(`${where}: received ${got.size} of ${res.ContentLength} bytes`);
    }
    const want = res.Metadata?.sha256;
    if (want && want !== got.sha256) {
      throw new CorruptObject(`${where}: corrupt: received bytes have sha256 ${got.sha256.slice(0, 12)}…, the object's metadata says ${want.slice(0, 12)}…`);
    }
  }
}
