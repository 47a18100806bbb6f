// Multipart uploads for S3Store, without @aws-sdk/lib-storage. Each part is read straight from its
// file range into a buffer of a pool the whole store shares, sent, and its buffer handed on, so an
// upload's memory is bounded per store (pool × part size), not per file, and no stream chunks are
// concatenated into parts (lib-storage's Upload copies every byte once more to build them).
//
// Each part goes up with its Content-MD5 (servers that check it refuse a damaged part) and must
// come back with that MD5 as its ETag (servers that do not check it, like s3rver). A part whose
// ETag is not an MD5 (SSE-KMS, some S3-compatible servers) leaves the upload unchecked: the caller
// reads the object back instead. Retries are the client's own (its maxAttempts, per request).
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

/** `"abc"` → `abc` (ETags come quoted). */
export const bareETag = (etag: string | undefined): string => (etag ?? '').replace(/"/g, '');

/** How long a pool keeps its buffers once none is in use (a store lives as long as a runner). */
const POOL_IDLE_MS = 10_000;

/** At most `count` buffers of `size` bytes, made on demand; a taker waits for a free one, first come first served. */
export class BufferPool {
  private free: Buffer[] = [];
  private readonly waiting: ((buf: Buffer) => void)[] = [];
  private made = 0;
  private inUse = 0;
  private idle?: NodeJS.Timeout;

  constructor(
    readonly size: number,
    readonly count: number,
  ) {}

  async take(): Promise<Buffer> {
    clearTimeout(this.idle);
    this.inUse++;
    const buf = this.free.pop();
    if (buf) return buf;
    if (this.made < this.count) {
      this.made++;
      return Buffer.allocUnsafeSlow(this.size);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  give(buf: Buffer): void {
    const next = this.waiting.shift();
    if (next) return next(buf);
    this.inUse--;
    this.free.push(buf);
    if (this.inUse === 0) this.idle = setTimeout(() => this.drop(), POOL_IDLE_MS).unref();
  }

  /** Lets the free buffers go (the garbage collector returns their memory). */
  drop(): void {
    this.made -= this.free.length;
    this.free = [];
  }
}

/** One part's bytes; `done` hands its buffer back once the part is sent (or failed). */
export interface PartBody {
  bytes: Buffer;
  done(): void;
}

/** The parts of an object, asked for in order: part n covers bytes [offset, offset + length). */
export type PartReader = (offset: number, length: number) => Promise<PartBody>;

/**
 * Parts read from `file` into buffers of `pool`, each fed to `onRead` (in file order) before it is
 * sent. A file that ends early fails the upload with `changed`, saying where it ended.
 */
export function fileParts(file: FileHandle, changed: string, pool: BufferPool, onRead: (bytes: Buffer) => void): PartReader {
  return async (offset, length) => {
    const buf = await pool.take();
    try {
      let got = 0;
      while (got < length) {
        const { bytesRead } = await file.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) throw new Error(`${changed} (it ended at ${offset + got} bytes)`);
        got += bytesRead;
      }
    } catch (err) {
      pool.give(buf);
      throw err;
    }
    const bytes = buf.subarray(0, length);
    onRead(bytes);
    return { bytes, done: () => pool.give(buf) };
  };
}

/** Parts of a buffer already in memory: subarrays, nothing copied. */
export const bufferParts =
  (data: Buffer): PartReader =>
  async (offset, length) => ({ bytes: data.subarray(offset, offset + length), done: () => {} });

export interface MultipartUpload {
  client: S3Client;
  bucket: string;
  key: string;
  size: number;
  partSize: number;
  /** parts of this object in flight at once (buffers permitting) */
  queueSize: number;
  metadata: Record<string, string>;
  read: PartReader;
  /** bytes of parts sent so far, after each part */
  onProgress?: (sent: number) => void;
  /** Called once every part is sent, before the object is completed: throwing aborts the upload instead. */
  beforeComplete?: () => void;
}

/**
 * Uploads `size` bytes in parts of `partSize`; true when every part's ETag was the MD5 of what was
 * sent. On failure (a part's, `beforeComplete`'s or the completion's) the upload is aborted and
 * that error thrown: not the abort's, which servers without abort (s3rver) answer with an error of their own.
 */
export async function uploadMultipart(u: MultipartUpload): Promise<{ allChecked: boolean }> {
  const where = `s3://${u.bucket}/${u.key}`;
  const created = await u.client.send(new CreateMultipartUploadCommand({ Bucket: u.bucket, Key: u.key, Metadata: u.metadata }));
  const uploadId = created.UploadId;
  if (!uploadId) throw new Error(`${where}: the server started a multipart upload without an UploadId`);
  const etags: string[] = [];
  let allChecked = true;
  let sent = 0;
  let failure: { err: unknown } | null = null;
  const inFlight = new Set<Promise<void>>();

  const sendPart = async (n: number, bytes: Buffer): Promise<void> => {
    const md5 = createHash('md5').update(bytes).digest();
    const res = await u.client.send(
      new UploadPartCommand({
        Bucket: u.bucket,
        Key: u.key,
        UploadId: uploadId,
        PartNumber: n,
        Body: bytes,
        ContentLength: bytes.length,
        ContentMD5: md5.toString('base64'),
      }),
    );
    const etag = bareETag(res.ETag);
    const want = md5.toString('hex');
    if (etag !== want) {
      if (MD5_RE.test(etag)) throw new Error(`${where}: part ${n} reached the server damaged (ETag ${etag}, sent MD5 ${want})`);
      allChecked = false;
    }
    etags[n - 1] = res.ETag!;
    sent += bytes.length;
    u.onProgress?.(sent);
  };

  try {
    for (let n = 1, offset = 0; offset < u.size && !failure; n++, offset += u.partSize) {
      while (inFlight.size >= u.queueSize) await Promise.race(inFlight);
      if (failure) break;
      const part = await u.read(offset, Math.min(u.partSize, u.size - offset));
      const p: Promise<void> = sendPart(n, part.bytes)
        .catch((err: unknown) => void (failure ??= { err }))
        .finally(() => {
          part.done();
          inFlight.delete(p);
        });
      inFlight.add(p);
    }
  } catch (err) {
    failure ??= { err }; // a part that could not be read
  }
  await Promise.all(inFlight);
  try {
    if (failure) throw failure.err;
    u.beforeComplete?.();
    await u.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: u.bucket,
        Key: u.key,
        UploadId: uploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
  } catch (err) {
    // A server keeps (and bills) the parts of an upload neither completed nor aborted.
    await abortUpload(u, uploadId);
    throw err;
  }
  return { allChecked };
}

/** Aborts an upload; its own failure is not reported (servers without abort, like s3rver, answer with an error). */
async function abortUpload(u: MultipartUpload, uploadId: string): Promise<void> {
  await u.client.send(new AbortMultipartUploadCommand({ Bucket: u.bucket, Key: u.key, UploadId: uploadId })).catch(() => undefined);
}

const MD5_RE = /^[0-9a-f]{32}$/;
