// Store URL → Store. Heavy clients (the AWS SDK) load only when their scheme is used.
import path from 'node:path';
import { UserError } from '../ui/errors.js';
import { FileStore } from './file-store.js';
import type { Store } from './store.js';

export async function openStore(url: string, root: string): Promise<Store> {
  if (url.startsWith('file://')) {
    const dir = path.resolve(root, url.slice('file://'.length));
    return new FileStore(url, dir);
  }
  throw new UserError(`store ${url}: unsupported scheme; use file://<dir> (s3:// is not available in this version)`);
}
