// Launch overhead: `make train` of a no-op experiment vs the bare command, side by side in
// one run (this machine is noisy: compare medians from the same minute, not across runs).
// Target: at most 0.15 s added. Node's own start is timed beside them (part of what make train
// adds, and not Switchyard's doing), and with NODE_EXTRA_CA_CERTS set, node's start without it:
// node parses that CA bundle at every start, before any script runs (~80 ms on a slow 2-core
// machine), whatever the script needs.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createSandbox } from '../test/helpers/sandbox.js';
import { median } from './lib/measure.js';

const ROUNDS = 12;
const TARGET_ADDED_S = 0.15;

const extraCa = process.env.NODE_EXTRA_CA_CERTS;

function timeIt(argv: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd, stdio: 'ignore', env: { ...env, MAKEFLAGS: '' } });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const sb = createSandbox();
try {
  const comp = path.join(sb.dir, 'competitions', 'noop');
  mkdirSync(comp);
  writeFileSync(path.join(comp, 'challenge.json'), '{"title": "no-op"}\n');
  writeFileSync(path.join(comp, 'experiment.yaml'), 'train:\n  command: "true"\n');
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', 'noop']);
  timeIt(['make', '-s', 'train', 'experiment=noop'], sb.dir); // build dist/ and warm caches

  const bare: number[] = [];
  const train: number[] = [];
  const node: number[] = [];
  const nodeNoCa: number[] = [];
  const { NODE_EXTRA_CA_CERTS: _, ...withoutCa } = process.env;
  for (let i = 0; i < ROUNDS; i++) {
    // Interleaved, so all see the same background load.
    bare.push(timeIt(['bash', '-c', 'true'], comp));
    train.push(timeIt(['make', '-s', 'train', 'experiment=noop', 'again=1'], sb.dir));
    node.push(timeIt([process.execPath, '-e', '0'], comp));
    if (extraCa) nodeNoCa.push(timeIt([process.execPath, '-e', '0'], comp, withoutCa));
  }
  const added = median(train) - median(bare);
  console.log('launch overhead (median of %d, interleaved)', ROUNDS);
  console.log(`  bare command         ${median(bare).toFixed(3)} s`);
  console.log(`  make train (no-op)   ${median(train).toFixed(3)} s`);
  console.log(`  node -e 0            ${median(node).toFixed(3)} s   (node's own start, within the added time)`);
  if (extraCa) console.log(`  same, without NODE_EXTRA_CA_CERTS   ${median(nodeNoCa).toFixed(3)} s   (this machine sets it: ${(median(node) - median(nodeNoCa)).toFixed(3)} s of every node start)`);
  console.log(`  added                ${added.toFixed(3)} s   target <= ${TARGET_ADDED_S} s   ${added <= TARGET_ADDED_S ? 'MET' : 'MISSED'}`);
  console.log(`  added past node's start   ${(median(train) - median(node)).toFixed(3)} s`);
  if (added > TARGET_ADDED_S) process.exitCode = 1;
} finally {
  sb.cleanup();
}
