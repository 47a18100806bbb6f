// SHA-256 of many files, as fast as the machine allows. Small jobs run on the calling thread
// (starting a worker costs ~30 ms; the common data dir is tiny). Large jobs go to a pool of
// worker threads, one per core, fed largest-first in batches so the cores finish together.
// Every reader streams through one fixed buffer, so memory stays bounded for any file size.
import { closeSync, openSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

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
const BATCH_FILES = 128;

export async function hashFiles(jobs: readonly HashJob[], onProgress?: ByteProgress): Promise<HashResult[]> {
  if (jobs.length === 0) return [];
  const total = jobs.reduce((n, j) => n + j.size, 0);
  const estimateMs = total / 1.5e6 + jobs.length * 0.015;
  const threads = availableParallelism();
  if (threads < 2 || estimateMs < POOL_THRESHOLD_MS) return hashOnThisThread(jobs, total, onProgress);
  return hashInPool(jobs, total, Math.min(threads, jobs.length), onProgress);
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

// Plain CommonJS run with eval:true and no execArgv, so the worker neither needs a file on
// disk (esbuild bundles scripts/ into dist/) nor inherits the tsx loader (~100 ms to start).
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

function hashInPool(
  jobs: readonly HashJob[],
  total: number,
  workerCount: number,
  onProgress?: ByteProgress,
): Promise<HashResult[]> {
  const order = jobs.map((_, i) => i).sort((a, b) => jobs[b]!.size - jobs[a]!.size);
  const results: HashResult[] = new Array(jobs.length);
  const progress = new BigInt64Array(new SharedArrayBuffer(8));
  let next = 0;
  let finished = 0;
  let lastReported = -1;

  const takeBatch = (): number[] | undefined => {
    if (next >= order.length) return undefined;
    const batch: number[] = [];
    let bytes = 0;
    while (next < order.length && bytes < BATCH_BYTES && batch.length < BATCH_FILES) {
      const i = order[next++]!;
      batch.push(i);
      bytes += jobs[i]!.size;
    }
    return batch;
  };
  const report = () => {
    const done = Number(Atomics.load(progress, 0));
    if (done !== lastReported) {
      lastReported = done;
      onProgress?.(done, total);
    }
  };

  return new Promise<HashResult[]>((resolve, reject) => {
    const workers: Worker[] = [];
    const timer = onProgress ? setInterval(report, 50) : undefined;
    let settled = false;
    const settle = (err?: unknown) => {
      if (settled) return;
      settled = true;
      if (timer) clearInterval(timer);
      for (const w of workers) {
        w.unref();
        void w.terminate();
      }
      if (err) reject(err);
      else {
        report();
        resolve(results);
      }
    };

    for (let w = 0; w < workerCount; w++) {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        execArgv: [],
        workerData: { progress: progress.buffer },
      });
      workers.push(worker);
      const inFlight: number[][] = [];
      const send = () => {
        const batch = takeBatch();
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
        finished += batch.length;
        if (finished === jobs.length) return settle();
        send();
        if (onProgress) report();
      });
      worker.on('error', settle);
      worker.on('exit', (code) => {
        if (!settled) settle(new Error(`hash worker exited early (code ${code})`));
      });
      // Two batches in flight so a worker never waits on the main thread between batches.
      send();
      send();
    }
  });
}
