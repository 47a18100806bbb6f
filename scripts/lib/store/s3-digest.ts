// What we know about the bytes we sent to S3: their SHA-256 (Switchyard's hash, kept as object
// metadata) and the MD5-based ETags a server may compute from them, so an upload can be checked
// against the server's own digest without downloading it again.
import { createHash, type Hash } from 'node:crypto';
import { Transform } from 'node:stream';

export interface SentBytes {
  size: number;
  sha256: string;
  /** ETags that prove the server got these bytes: md5 of the whole body, and md5-of-part-md5s-N */
  etags: string[];
}

export class SentDigest {
  private readonly sha = createHash('sha256');
  private readonly whole = createHash('md5');
  private part: Hash = createHash('md5');
  private readonly partMd5s: Buffer[] = [];
  private inPart = 0;
  private size = 0;

  /** `partSize`: where the multipart uploader cuts the body (every part but the last is exactly this). */
  constructor(private readonly partSize: number) {}

  update(chunk: Buffer): void {
    this.sha.update(chunk);
    this.whole.update(chunk);
    this.size += chunk.length;
    for (let off = 0; off < chunk.length; ) {
      const n = Math.min(chunk.length - off, this.partSize - this.inPart);
      this.part.update(chunk.subarray(off, off + n));
      off += n;
      this.inPart += n;
      if (this.inPart === this.partSize) this.endPart();
    }
  }

  /** A pass-through stream that digests what flows through it. */
  tap(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, done) => {
        this.update(chunk);
        done(null, chunk);
      },
    });
  }

  result(): SentBytes {
    if (this.inPart > 0) this.endPart();
    const md5s = this.partMd5s;
    const composite = `${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${md5s.length}`;
    return { size: this.size, sha256: this.sha.digest('hex'), etags: [this.whole.digest('hex'), composite] };
  }

  private endPart(): void {
    this.partMd5s.push(this.part.digest());
    this.part = createHash('md5');
    this.inPart = 0;
  }
}

/** `"abc"` → `abc` (ETags come quoted). */
export const bareETag = (etag: string | undefined): string => (etag ?? '').replace(/"/g, '');
