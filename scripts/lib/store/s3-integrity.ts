// Integrity checks S3Store adds to the SDK: a SHA-256 tap for what streams up, and a per-part
// MD5 check for multipart uploads. Each part goes up with its Content-MD5 (servers that check
// it refuse a damaged part) and must come back with that MD5 as its ETag (servers that do not
// check it, like s3rver). A part whose ETag is not an MD5 (SSE-KMS, some S3-compatible servers)
// marks its object for a read-back after the upload instead.
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { S3Client, UploadPartCommandInput, UploadPartCommandOutput } from '@aws-sdk/client-s3';

/** SHA-256 and size of the bytes that flow through `tap`. */
export class StreamHash {
  private readonly hash = createHash('sha256');
  private size = 0;
  readonly tap = new Transform({
    transform: (chunk: Buffer, _enc, done) => {
      this.hash.update(chunk);
      this.size += chunk.length;
      done(null, chunk);
    },
  });

  result(): { size: number; sha256: string } {
    return { size: this.size, sha256: this.hash.digest('hex') };
  }
}

/** `"abc"` → `abc` (ETags come quoted). */
export const bareETag = (etag: string | undefined): string => (etag ?? '').replace(/"/g, '');

const MD5_RE = /^[0-9a-f]{32}$/;

/** Checks every UploadPart a client sends, remembering per object key what it found. */
export class UploadPartChecks {
  private readonly unchecked = new Set<string>();
  private readonly failures = new Map<string, unknown>();

  constructor(client: S3Client) {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as UploadPartCommandInput;
        if (context.commandName !== 'UploadPartCommand' || !(input.Body instanceof Uint8Array)) return next(args);
        const key = input.Key!;
        try {
          const md5 = createHash('md5').update(input.Body).digest();
          input.ContentMD5 = md5.toString('base64');
          const result = await next(args);
          const etag = bareETag((result.output as UploadPartCommandOutput).ETag);
          if (etag === md5.toString('hex')) return result;
          if (MD5_RE.test(etag)) throw new Error(`s3://${input.Bucket}/${key}: part ${input.PartNumber} reached the server damaged (ETag ${etag}, sent MD5 ${md5.toString('hex')})`);
          this.unchecked.add(key);
          return result;
        } catch (err) {
          if (!this.failures.has(key)) this.failures.set(key, err);
          throw err;
        }
      },
      { step: 'initialize', name: 'switchyardUploadPartMd5' },
    );
  }

  /** Forgets what an earlier upload of `key` left. */
  begin(key: string): void {
    this.unchecked.delete(key);
    this.failures.delete(key);
  }

  /** The first failed part of `key`: lib-storage reports its abort's error instead where abort is unsupported (s3rver). */
  failure(key: string): unknown {
    return this.failures.get(key);
  }

  /** True when every part's ETag was the MD5 of what was sent. */
  allChecked(key: string): boolean {
    return !this.unchecked.has(key);
  }
}
