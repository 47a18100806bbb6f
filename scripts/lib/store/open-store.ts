// Store URL → Store. Heavy clients (the AWS SDK) load only when their scheme is used.
import path from 'node:path';
import type { S3Config } from '../config/load-config.js';
import { readDotEnv } from '../secrets/dotenv.js';
import { UserError } from '../ui/errors.js';
import { FileStore } from './file-store.js';
import type { Store } from './store.js';

/** `env` adds variables (a worker's secrets file) over the process environment and `.env`. */
export async function openStore(url: string, root: string, s3?: S3Config, env: Record<string, string> = {}): Promise<Store> {
  if (url.startsWith('file://')) {
    const dir = path.resolve(root, url.slice('file://'.length));
    return new FileStore(url, dir);
  }
  if (url.startsWith('s3://')) {
    const [{ S3Store }, { s3Settings }] = await Promise.all([import('./s3-store.js'), import('./s3-client.js')]);
    const { byteProgress } = await import('../ui/progress.js');
    return new S3Store(url, { ...s3Settings(s3, { ...process.env, ...readDotEnv(root), ...env }), progress: byteProgress });
  }
  throw new UserError(`store ${url}: unsupported scheme; use file://<dir> or s3://bucket/prefix`);
}
