// competitions/knn: search.py sharded 1, 3 and 6 ways, verified and merged: byte-identical results.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mergeShards, verifyCoverage } from '../../scripts/lib/merge/index.js';

const COMPETITION = fileURLToPath(new URL('../../competitions/knn', import.meta.url));
const CKPT_LIB = fileURLToPath(new URL('../../scripts/lib/ckpt', import.meta.url));
const PINS = 'feedface0123';
const TOTAL = 30;

let root: string;
beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'sy-knn-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function shard(dir: string, index: number, count: number): Promise<{ code: number | null; stderr: string }> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SWITCHYARD_')));
  const env = {
    ...inherited,
    PYTHONPATH: CKPT_LIB,
    PYTHONDONTWRITEBYTECODE: '1',
    SWITCHYARD_SHARD_INDEX: String(index),
    SWITCHYARD_SHARD_COUNT: String(count),
    SWITCHYARD_PINS_DIGEST: PINS,
    SWITCHYARD_CKPT_DIR: path.join(dir, `ckpt-${index}`),
    SWITCHYARD_CKPT_EVERY_SEC: '1',
    SWITCHYARD_OUTPUT_DIR: path.join(dir, 'out'),
    SWITCHYARD_DATA_DIR: path.join(COMPETITION, 'data'),
  };
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['search.py'], { cwd: COMPETITION, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

/** Runs all shards of one layout (two at a time), verifies and merges them; the merged bytes. */
async function runLayout(count: number): Promise<Buffer> {
  const dir = path.join(root, `n${count}`);
  const queue = [...Array(count).keys()];
  await Promise.all(
    [0, 1].map(async () => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
        const res = await shard(dir, i, count);
        expect(res.code, res.stderr).toBe(0);
      }
    }),
  );
  const out = path.join(dir, 'out');
  const files = readdirSync(out).map((f) => path.join(out, f));
  expect(files).toHaveLength(count);
  const reports = await verifyCoverage(files, { count, pinsDigest: PINS, total: TOTAL });
  expect(reports.reduce((a, r) => a + r.records, 0)).toBe(TOTAL);
  const merged = path.join(dir, 'merged.jsonl');
  const report = await mergeShards(files, 'concat', merged);
  expect(report.merged.records).toBe(TOTAL);
  return readFileSync(merged);
}

describe('knn shards', () => {
  it('merges to the same bytes with 1, 3 and 6 shards', async () => {
    const one = await runLayout(1);
    const three = await runLayout(3);
    const six = await runLayout(6);
    const lines = one.toString('utf8').trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l).key)).toEqual([...Array(TOTAL).keys()]);
    expect(JSON.parse(lines[0]!)).toMatchObject({ key: 0, k: 1, metric: 'euclidean', weights: 'uniform' });
    expect(three.equals(one)).toBe(true);
    expect(six.equals(one)).toBe(true);
  });
});
