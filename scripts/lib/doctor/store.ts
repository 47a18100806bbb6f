// The store runs are kept in: that it answers, that an object can be written and deleted there
// (a probe under doctor/), and for a folder the free space of its disk.
import { randomBytes } from 'node:crypto';
import { statSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { CONFIG_FILE, type Config } from '../config/load-config.js';
import { openStore } from '../store/open-store.js';
import type { Store } from '../store/store.js';
import { formatBytes } from '../ui/format.js';
import { fail, pass, skip, splitFix, type Check, type Finding } from './row.js';

const TIMEOUT_MS = 15_000;
/** Below this a run's checkpoints are likely to fill the disk. */
export const LOW_SPACE_BYTES = 100 * 1024 * 1024;

/** The nearest folder of `dir` that exists, and whether that is `dir` itself. */
function nearestFolder(dir: string): { folder: string; exists: boolean } {
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      if (statSync(d).isDirectory()) return { folder: d, exists: d === dir };
      return { folder: d, exists: false };
    } catch {
      if (path.dirname(d) === d) return { folder: d, exists: false };
    }
  }
}

function reachable(store: Store, url: string): Promise<Finding> {
  const dir = store.localDir;
  if (dir) {
    const { folder, exists } = nearestFolder(dir);
    if (!statSync(folder).isDirectory()) return Promise.resolve(fail('reachable', `${folder} is a file, not a folder`, `move it away, or set defaults.store in ${CONFIG_FILE}`));
    return Promise.resolve(pass('reachable', exists ? dir : `${dir} (made on the first run)`));
  }
  return store.stat('doctor/absent').then(
    () => pass('reachable', url),
    (err: Error) => fail('reachable', splitFix(err.message.split('\n')[0]!).detail, `check defaults.store and defaults.s3 in ${CONFIG_FILE}, and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in .env`),
  );
}

async function writable(store: Store): Promise<Finding> {
  const key = `doctor/probe-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await store.putBytes(key, 'make doctor\n');
    await store.delete(key);
    return pass('writable', `wrote and deleted ${key}`);
  } catch (err) {
    const detail = splitFix((err as Error).message.split('\n')[0]!).detail.replace(/^store [^:]+: /, '');
    const fix = store.localDir
      ? `make ${store.localDir} writable (remount it read-write: findmnt -T ${store.localDir} shows how it is mounted), or set defaults.store in ${CONFIG_FILE} to a folder you can write`
      : `give the credentials in .env write and delete rights on ${store.url} (s3:PutObject, s3:DeleteObject)`;
    return fail('writable', detail, fix);
  }
}

function freeSpace(store: Store): Finding {
  if (!store.localDir) return skip('free space', 'an object store: no disk of its own to measure');
  const { folder } = nearestFolder(store.localDir);
  const s = statfsSync(folder);
  const free = s.bavail * s.bsize;
  if (free < LOW_SPACE_BYTES) return fail('free space', `${formatBytes(free)} free on the disk of ${folder}`, `free space there, or set defaults.store in ${CONFIG_FILE} to a folder on a bigger disk`);
  return pass('free space', `${formatBytes(free)} free`);
}

export function storeCheck(root: string, config: Config): Check {
  const url = config.defaults.store;
  return {
    group: 'store',
    name: url,
    required: true,
    timeoutMs: TIMEOUT_MS,
    run: async () => {
      const store = await openStore(url, root, config.defaults.s3);
      const there = await reachable(store, url);
      if (there.ok !== true) return [there, skip('writable', 'not reachable'), skip('free space', 'not reachable')];
      return [there, await writable(store), freeSpace(store)];
    },
  };
}
