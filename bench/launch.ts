// Launch overhead: `make train` of a no-op experiment vs the bare command, side by side in
// one run (this machine is noisy: compare medians from the same minute, not across runs).
// Target: at most 0.15 s added. Node's own start is timed beside them (part of what make train
// adds, and not Switchyard's doing). With NODE_EXTRA_CA_CERTS set, node parses that file at every
// start, whatever the script needs (~0.1 ms a certificate on a 2-core VM): node's start is timed
// with the file, with the narrowed copy make starts the verb with (scripts/lib/extra-ca.ts), and
// without it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { narrowedCaFile } from '../scripts/lib/extra-ca.js';
import { addCompetition, createSandbox } from '../test/helpers/sandbox.js';
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
  const comp = addCompetition(sb, 'noop', 'train:\n  command: "true"\n');
  timeIt(['make', '-s', 'train', 'experiment=noop'], sb.dir); // build dist/ and warm caches

  const bare: number[] = [];
  const train: number[] = [];
  const node: number[] = [];
  const nodeNoCa: number[] = [];
  const nodeNarrowed: number[] = [];
  const { NODE_EXTRA_CA_CERTS: _, ...withoutCa } = process.env;
  // None where make cannot name the file (a path with spaces, say): the verb starts with the file itself.
  const narrowed = extraCa && narrowedCaFile(sb.dir, extraCa);
  const narrowedCa = narrowed && existsSync(narrowed) ? narrowed : null;
  for (let i = 0; i < ROUNDS; i++) {
    // Interleaved, so all see the same background load.
    bare.push(timeIt(['bash', '-c', 'true'], comp));
    train.push(timeIt(['make', '-s', 'train', 'experiment=noop', 'again=1'], sb.dir));
    node.push(timeIt([process.execPath, '-e', '0'], comp));
    if (narrowedCa) {
      nodeNoCa.push(timeIt([process.execPath, '-e', '0'], comp, withoutCa));
      nodeNarrowed.push(timeIt([process.execPath, '-e', '0'], comp, { ...withoutCa, NODE_EXTRA_CA_CERTS: narrowedCa }));
    }
  }
  const added = median(train) - median(bare);
  console.log('launch overhead (median of %d, interleaved)', ROUNDS);
  console.log(`  bare command         ${median(bare).toFixed(3)} s`);
  console.log(`  make train (no-op)   ${median(train).toFixed(3)} s`);
  console.log(`  node -e 0            ${median(node).toFixed(3)} s   (node's own start)`);
  if (narrowedCa) {
    console.log(`  same, without NODE_EXTRA_CA_CERTS   ${median(nodeNoCa).toFixed(3)} s   (this machine sets it: ${(median(node) - median(nodeNoCa)).toFixed(3)} s of every node start)`);
    console.log(`  same, with its narrowed copy        ${median(nodeNarrowed).toFixed(3)} s   (the verb's own start, within the added time)`);
  }
  console.log(`  added                ${added.toFixed(3)} s   target <= ${TARGET_ADDED_S} s   ${added <= TARGET_ADDED_S ? 'MET' : 'MISSED'}`);
  console.log(`  added past the verb's node start   ${(median(train) - median(narrowedCa ? nodeNarrowed : node)).toFixed(3)} s`);
  if (added > TARGET_ADDED_S) process.exitCode = 1;
} finally {
  sb.cleanup();
}
