// The dashboard's runs API with 5,000 runs in the index: p95 latency of GET /api/runs (the first
// page of 100, newest first, the page the runs table asks for every few seconds), each request
// reading the index afresh (the one-second cache the server keeps is emptied before each). The
// baseline beside it: the same page, already serialised, from a bare express route on the same
// machine (what HTTP and JSON alone cost). Target: p95 at most 50 ms.
import express from 'express';
import { createDashboard } from '../dashboard/app.js';
import { listen, projectWithRuns } from './lib/runs-fixture.js';

const RUNS = 5000;
const REQUESTS = 200;
const TARGET_MS = 50;

const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)]!;

async function timeGets(url: string, before: () => void): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    before();
    const t0 = performance.now();
    const res = await fetch(url);
    await res.arrayBuffer();
    ms.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
  }
  return ms;
}

const { project, close } = await projectWithRuns(RUNS);
try {
  let port = 0;
  const { app, runs } = createDashboard({ project, bindHost: '127.0.0.1', port: () => port });
  const dash = await listen(app);
  port = Number(new URL(dash.url).port);
  const page = await (await fetch(`${dash.url}/api/runs`)).text();
  const bare = express();
  bare.get('/api/runs', (_req, res) => void res.type('application/json').send(page));
  const base = await listen(bare);

  // Interleaved halves, so drift on a noisy machine lands on both sides.
  const api: number[] = [];
  const baseline: number[] = [];
  for (let round = 0; round < 2; round++) {
    baseline.push(...(await timeGets(`${base.url}/api/runs`, () => {})));
    api.push(...(await timeGets(`${dash.url}/api/runs`, () => runs.invalidate())));
  }
  const cached = await timeGets(`${dash.url}/api/runs`, () => {});
  dash.close();
  base.close();

  const got = p95(api);
  const verdict = got <= TARGET_MS ? 'MET' : 'MISSED';
  console.log(
    `runs API, ${RUNS} runs: p95 ${got.toFixed(1)} ms uncached (${(got / p95(baseline)).toFixed(1)}× the bare route's ${p95(baseline).toFixed(1)} ms), ` +
      `${p95(cached).toFixed(1)} ms within the server's 1 s cache; target ≤ ${TARGET_MS} ms: ${verdict}`,
  );
  process.exitCode = verdict === 'MET' ? 0 : 1;
} finally {
  close();
}
