// A real S3-compatible server for tests and benchmarks: s3rver as a child process on loopback
// (or an address test hosts reach), a free port, a temp data directory and one bucket. Keys: S3RVER / S3RVER.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface S3rver {
  endpoint: string;
  bucket: string;
  /** s3rver's data directory: objects are `<dir>/<bucket>/<key>._S3rver_object` */
  dir: string;
  stop(): Promise<void>;
}

export const S3RVER_KEYS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** Points a project copy at this server: its config's store (under `prefix`), and the keys in `.env`. */
export function useS3rverStore(projectDir: string, server: S3rver, prefix: string): void {
  const config = path.join(projectDir, 'cluster_fleet_config.ts');
  const text = readFileSync(config, 'utf8');
  const line = "store: 'file://.switchyard/store',";
  if (!text.includes(line)) throw new Error(`${config}: no ${line} line to point at s3rver`);
  writeFileSync(config, text.replace(line, `store: 's3://${server.bucket}/${prefix}',\n    s3: { endpoint: '${server.endpoint}', force_path_style: true },`));
  writeFileSync(path.join(projectDir, '.env'), `AWS_ACCESS_KEY_ID=${S3RVER_KEYS.accessKeyId}\nAWS_SECRET_ACCESS_KEY=${S3RVER_KEYS.secretAccessKey}\n`);
}

/** Where s3rver keeps the bytes of an object (for tampering with them in tests). */
export function s3rverObjectPath(server: S3rver, objectKey: string): string {
  const parts = objectKey.split('/');
  const last = parts.pop()!;
  return path.join(server.dir, server.bucket, ...parts, `${last}._S3rver_object`);
}

/**
 * `address`: where it listens (default loopback; a test-hosts gateway lets those hosts reach it too).
 * `tls`: PEM files of a key and its certificate, to answer over https.
 */
export async function startS3rver(bucket = 'switchyard-test', address = '127.0.0.1', tls?: { key: string; cert: string }): Promise<S3rver> {
  // s3rver's own bin, with objects stored whole or not at all (see s3rver-atomic.cjs)
  const bin = path.join(import.meta.dirname, 's3rver-atomic.cjs');
  const dir = mkdtempSync(path.join(os.tmpdir(), 's3rver-'));
  // --openssl-legacy-provider: s3rver's continuation tokens use DES, which OpenSSL 3 disables.
  const args = ['--openssl-legacy-provider', bin, '-d', dir, '-a', address, '-p', '0', '--silent', '--configure-bucket', bucket, ...(tls ? ['--key', tls.key, '--cert', tls.cert] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stopped: Promise<void> | null = null;
  const stop = () =>
    (stopped ??= new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }).then(() => rmSync(dir, { recursive: true, force: true })));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      let err = '';
      const timer = setTimeout(() => reject(new Error(`s3rver did not start in 15 s: ${err || out}`)), 15_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on [\d.]+:(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`s3rver exited ${code}: ${err || out}`));
      });
    });
    return { endpoint: `${tls ? 'https' : 'http'}://${address}:${port}`, bucket, dir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
