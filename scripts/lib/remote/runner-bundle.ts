// The self-contained runner (`make build` → dist/runner/run-attempt.mjs) on its way to a host.
// It is ~0.6 MB of JavaScript that gzip halves, and every fresh host and every new runner
// version needs it, so it travels compressed (a host unpacks it with gzip, which every Linux
// base image has) and is read, hashed and compressed once however many hosts get it (again
// only when the file changes: a long-lived process may outlive a `make build`).
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { UserError } from '../ui/errors.js';
import type { RemoteHost } from './remote-host.js';

export interface RunnerBundle {
  /** where the bundle lives on a host: content-addressed, so a present copy is never re-sent */
  remotePath(host: RemoteHost): string;
  /** the bundle, gzip-compressed */
  gz: Buffer;
}

const loaded = new Map<string, Promise<RunnerBundle>>();

/** The bundle at `file`; a missing one is an error that says to build it. */
export async function loadRunnerBundle(file: string): Promise<RunnerBundle> {
  const stat = statSync(file, { throwIfNoEntry: false });
  if (!stat) throw new UserError(`runner bundle missing: ${file}; run make build`);
  const key = `${file}\0${stat.mtimeMs}\0${stat.size}`;
  let bundle = loaded.get(key);
  if (!bundle) {
    bundle = load(file);
    loaded.set(key, bundle);
    bundle.catch(() => loaded.delete(key));
  }
  return bundle;
}

async function load(file: string): Promise<RunnerBundle> {
  const data = await readFile(file);
  const sha256 = createHash('sha256').update(data).digest('hex');
  const gz = await promisify(gzip)(data, { level: 6 });
  return { remotePath: (host) => host.layout.runner(sha256), gz };
}

/** Writes the runner to its content-addressed path on the host (unconditionally). */
export async function writeRunner(host: RemoteHost, bundle: RunnerBundle): Promise<string> {
  const dest = bundle.remotePath(host);
  await host.writeFile(dest, bundle.gz, { gzipped: true });
  return dest;
}
