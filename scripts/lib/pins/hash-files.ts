// SHA-256 of many files, as fast as the machine allows. Small jobs run on the calling thread
// (starting a worker costs ~30 ms; the common data dir is tiny). Large jobs are shared by the
// calling thread and one worker thread per other core; a caller that sees a large job coming
// can start the pool early so the workers boot while it is still listing files.
// Every reader streams through one fixed buffer, so memory stays bounded for any file size.
import { closeSync, openSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';

export interface HashJob {
  path: string;
  /** Expected size from stat; used for scheduling and progress only. */
  size: number;
}

export interface HashResult {
  sha256: string;
  /** Bytes actually read; differs from the job's size if the file changed under us. */
  size: number;
}

export type ByteProgress = (doneBytes: number, totalBytes: number) => void;

const CHUNK = 1 << 20;
const PROGRESS_STEP = 8 << 20;
// Rough single-thread cost model (SHA-NI ~1.5 GB/s, ~15 µs to open/read/close a small file).
// Below this many estimated ms the pool's start-up would cost more than it saves.
const POOL_THRESHOLD_MS = 40;
const BATCH_BYTES = 8 << 20;
const MIN_BATCH_BYTES = 512 << 10;
const BATCH_FILES = 128;

/** Whether hashing this much is worth starting worker threads. */
export function worthAPool(bytes: number, files: number): boolean {
  return availableParallelism() >= 2 && bytes / 1.5e6 + files * 0.015 >= POOL_THRESHOLD_MS;
}

// Plain CommonJS run with eval:true and no execArgv, so the worker neither needs a file on
// disk (esbuild bundles scripts/ into dist/) nor inherits the tsx loader (~100 ms to start).
// Replies with [sha256, size, ...] per batch, or [null, {code, message}] for a failed file.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const buf = Buffer.allocUnsafe(${CHUNK});
const progress = new BigInt64Array(workerData.progress);
parentPort.on('message', (paths) => {
  const out = [];
  for (const path of paths) {
    let fd;
    try {
      fd = openSync(path, 'r');
      const hash = createHash('sha256');
      let size = 0, pending = 0, n;
      while ((n = readSync(fd, buf, 0, buf.length, null)) > 0) {
        hash.update(n === buf.length ? buf : buf.subarray(0, n));
        size += n;
        pending += n;
        if (pending >= ${PROGRESS_STEP}) { Atomics.add(progress, 0, BigInt(pending)); pending = 0; }
      }
      if (pending) Atomics.add(progress, 0, BigInt(pending));
      out.push(hash.digest('hex'), size);
    } catch (e) {
      out.push(null, { code: e && e.code, message: String(e && e.message) });
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
  parentPort.postMessage(out);
});
`;

// node:worker_threads (and the internal modules it loads) is required when a pool starts, not
// with this module: most pins hash a few files on the calling thread, and loading it took ~5 ms
// of every make train.
const requireBuiltin = createRequire(import.meta.url);

/** Worker threads, one per core but the caller's; hashFiles closes them when done. */
export class HashPool {
  readonly workers: Worker[] = [];
  readonly progress = new BigInt64Array(new SharedArrayBuffer(8));
  /** First error or early exit of any worker, kept until a hashFiles call can report it. */
  failure: Error | undefined;

  constructor(count = availableParallelism() - 1) {
    const { Worker } = requireBuiltin('node:worker_threads') as typeof import('node:worker_threads');
    for (let i = 0; i < Math.max(1, count); i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { progress: this.progress.buffer } });
      w.on('error', (err) => (this.failure ??= err));
      w.on('exit', (code) => (this.failure ??= new Error(`hash worker exited early (code ${code})`)));
      this.workers.push(w);
    }
  }

  close(): void {
    for (const w of this.workers.splice(0)) {
      w.removeAllListeners();
      w.unref();
      void w.terminate();
    }
  }
}

/** Hashes every job; results in job order. Uses (and closes) `pool` if one is given. */
export async function hashFiles(
  jobs: readonly HashJob[],
  onProgress?: ByteProgress,
  pool?: HashPool,
): Promise<HashResult[]> {
  if (jobs.length === 0) {
    pool?.close();
    return [];
  }
  let total = 0;
  for (const j of jobs) total += j.size;
  if (!pool && !worthAPool(total, jobs.length)) return hashOnThisThread(jobs, total, onProgress);
  pool ??= new HashPool(Math.min(availableParallelism() - 1, jobs.length));
  try {
    return await hashInPool(jobs, total, pool, onProgress);
  } finally {
    pool.close();
  }
}

function hashOnThisThread(jobs: readonly HashJob[], total: number, onProgress?: ByteProgress): HashResult[] {
  let largest = 0;
  for (const j of jobs) largest = Math.max(largest, j.size);
  const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(64 << 10, largest)));
  let done = 0;
  return jobs.map((job) => {
    const fd = openSync(job.path, 'r');
    try {
      const hash = createHash('sha256');
      let size = 0;
      let n: number;
      while ((n = readSync(fd, buf, 0, buf.length, null)) > 0) {
        hash.update(n === buf.length ? buf : buf.subarray(0, n));
        size += n;
        done += n;
        onProgress?.(done, total);
      }
      return { sha256: hash.digest('hex'), size };
    } finally {
      closeSync(fd);
    }
  });
}

/**
 * The calling thread hashes too, from the small end of the size-sorted queue while workers
 * take the large end: it is busy from the first millisecond while the workers boot, small
 * files (where per-file cost dominates) stay off the message channel, and both ends meet in
 * the middle. It yields to the event loop every batch (at most BATCH_BYTES) so worker
 * messages and progress timers keep flowing.
 */
function hashInPool(
  jobs: readonly HashJob[],
  total: number,
  pool: HashPool,
  onProgress?: ByteProgress,
): Promise<HashResult[]> {
  const order = jobs.map((_, i) => i).sort((a, b) => jobs[b]!.size - jobs[a]!.size);
  const results: HashResult[] = new Array(jobs.length);
  const workerBytesAtStart = Atomics.load(pool.progress, 0);
  let mainBytes = 0;
  let front = 0; // order[front, back) is still to be taken
  let back = order.length;
  let remaining = total;
  let finished = 0;
  let lastReported = -1;
  const hashers = pool.workers.length + 1;

  const take = (fromFront: boolean): number[] | undefined => {
    if (front >= back) return undefined;
    // Batches shrink as the queue drains, so no hasher is left with a long tail of work.
    const limit = Math.max(MIN_BATCH_BYTES, Math.min(BATCH_BYTES, remaining / (4 * hashers)));
    const batch: number[] = [];
    let bytes = 0;
    while (front < back && bytes < limit && batch.length < BATCH_FILES) {
      const i = order[fromFront ? front++ : --back]!;
      batch.push(i);
      bytes += jobs[i]!.size;
    }
    remaining -= bytes;
    return batch;
  };
  const report = () => {
    const done = Number(Atomics.load(pool.progress, 0) - workerBytesAtStart) + mainBytes;
    if (done !== lastReported) {
      lastReported = done;
      onProgress?.(done, total);
    }
  };

  return new Promise<HashResult[]>((resolve, reject) => {
    const timer = onProgress ? setInterval(report, 50) : undefined;
    let settled = false;
    const settle = (err?: unknown) => {
      if (settled) return;
      settled = true;
      if (timer) clearInterval(timer);
      if (err) return reject(err);
      report();
      resolve(results);
    };
    const completed = (count: number) => {
      finished += count;
      if (finished === jobs.length) settle();
    };
    if (pool.failure) return settle(pool.failure);

    for (const worker of pool.workers) {
      const inFlight: number[][] = [];
      const send = () => {
        const batch = take(true);
        if (!batch) return;
        inFlight.push(batch);
        worker.postMessage(batch.map((i) => jobs[i]!.path));
      };
      worker.on('message', (out: unknown[]) => {
        const batch = inFlight.shift()!;
        for (let k = 0; k < batch.length; k++) {
          const sha = out[2 * k];
          if (typeof sha !== 'string') {
            const info = out[2 * k + 1] as { code?: string; message: string };
            const err = Object.assign(new Error(info.message), { code: info.code, path: jobs[batch[k]!]!.path });
            return settle(err);
          }
          results[batch[k]!] = { sha256: sha, size: out[2 * k + 1] as number };
        }
        send();
        completed(batch.length);
      });
      worker.on('error', settle);
      worker.on('exit', (code) => settle(new Error(`hash worker exited early (code ${code})`)));
      // Two batches in flight so a worker never waits on the main thread between batches.
      send();
      send();
    }

    const buf = Buffer.allocUnsafe(CHUNK);
    const yieldToLoop = () => new Promise((r) => setImmediate(r));
    (async () => {
      for (let batch = take(false); batch && !settled; batch = take(false)) {
        for (const i of batch) {
          const fd = openSync(jobs[i]!.path, 'r');
          try {
            const hash = createHash('sha256');
            let size = 0;
            let slice = 0;
            let n: number;
            while ((n = readSync(fd, buf, 0, buf.length, null)) > 0) {
              hash.update(n === buf.length ? buf : buf.subarray(0, n));
              size += n;
              mainBytes += n;
              // A single huge file must not block the event loop either.
              if ((slice += n) >= BATCH_BYTES) {
                slice = 0;
                await yieldToLoop();
                if (settled) return;
              }
            }
            results[i] = { sha256: hash.digest('hex'), size };
          } finally {
            closeSync(fd);
          }
        }
        completed(batch.length);
        await yieldToLoop();
      }
    })().catch(settle);
  });
}
