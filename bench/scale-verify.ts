// make verify's ledger check at scale (not a test): npx tsx bench/scale-verify.ts
// A ledger of ENTRIES lines (default 1,000,000) written through the ledger's own format code
// (formatLine, hashLine, its head and store anchor): runs of 1,000 entries each, as make train
// writes them (run.created with its pins, attempt.started, a ckpt.committed per step with the
// step three back pruned, attempt.ended). Then, in a fresh process, what make verify does to the
// ledger before it audits the store: the hash chain, the head, the store anchor, and every entry
// folded into the ledger state (verifyLedger + LedgerState). Baseline beside it: `sha256sum` of
// the same file (one hash over the bytes, no lines). Target: <= 10 s at 1,000,000 entries.
// SCALE_VERIFY_ENTRIES=100000,300000,1000000 (the default) measures each size. Inputs are
// cached in bench/.tmp/scale-verify/ (git-ignored).
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LedgerState } from '../scripts/lib/audit/ledger-state.js';
import { listRuns } from '../scripts/lib/audit/store-audit.js';
import { ledgerId, makeAnchor, writeAnchor } from '../scripts/lib/ledger/anchor.js';
import { formatLine, hashLine, ZERO_HASH } from '../scripts/lib/ledger/format.js';
import { writeHead } from '../scripts/lib/ledger/head.js';
import { verifyLedger } from '../scripts/lib/ledger/verify.js';
import { openStore } from '../scripts/lib/store/open-store.js';

const SELF = fileURLToPath(import.meta.url);
const DIR = fileURLToPath(new URL('./.tmp/scale-verify/', import.meta.url));
const SIZES = (process.env.SCALE_VERIFY_ENTRIES ?? '100000,300000,1000000').split(',').map(Number);
const PER_RUN = 1000;
const TARGET_S = 10;
const sizeDir = (n: number) => path.join(DIR, String(n));

if (process.argv[2] === '--child') {
  // Child: the ledger half of make verify's check, then its own time and peak RSS.
  const dir = process.argv[3]!;
  const t0 = performance.now();
  const store = await openStore('file://store', dir);
  const state = new LedgerState((await listRuns(store)).steps);
  const res = await verifyLedger(path.join(dir, 'ledger.jsonl'), { anchor: { store, key: null }, onEntry: (e) => state.add(e) });
  const ms = performance.now() - t0;
  process.stdout.write(JSON.stringify({ ms, ok: res.ok, bad: res.firstBad, entries: res.entries, runs: state.runs.size, live: state.liveSteps().length, maxRssKiB: process.resourceUsage().maxRSS }) + '\n');
  process.exit(0);
}

/** The ledger of `count` entries, its head and its anchor, once per size. */
async function generate(count: number): Promise<void> {
  const dir = sizeDir(count);
  const marker = path.join(dir, '.complete');
  const tag = `${count} ${PER_RUN} v1\n`;
  if (existsSync(marker) && readFileSync(marker, 'utf8') === tag) return;
  mkdirSync(dir, { recursive: true });
  process.stdout.write(`writing a ${count}-entry ledger (once) ...\n`);
  const fd = openSync(path.join(dir, 'ledger.jsonl'), 'w');
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  let prev = ZERO_HASH;
  let beforeLast = ZERO_HASH;
  let first = '';
  let batch: string[] = [];
  for (let seq = 1; seq <= count; seq++) {
    const k = (seq - 1) % PER_RUN; // entry k of its run
    const r = Math.floor((seq - 1) / PER_RUN);
    const run_id = `penguins-default-2026${String(1 + (r % 12)).padStart(2, '0')}01T${String(r % 24).padStart(2, '0')}00-${(r * 2654435761 >>> 0).toString(16).padStart(8, '0')}`;
    const step = Math.ceil((k - 1) / 2) * 100; // k = 2, 3 commit and prune step 100; 4, 5 step 200 ...
    const [type, fields]: [string, object] =
      k === 0
        ? ['run.created', { run_id, experiment: 'penguins', digest: hashLine(run_id), pins: { code: { commit: hashLine(`c${r}`).slice(0, 40), dirty_sha256: null }, data: { root: hashLine('data'), files: 3, bytes: 18_000 }, env: { lock_sha256: hashLine('lock'), python: '3.11.9', node: 'v20.20.2' }, config: hashLine('cfg'), seed: 0, digest: hashLine(run_id) }, data_manifest: `runs/${run_id}/data-manifest.json`, data_manifest_sha256: hashLine(`dm${r}`) }]
        : k === 1
          ? ['attempt.started', { run_id, attempt: 1, backend: 'ssh' }]
          : k === PER_RUN - 1
            ? ['attempt.ended', { run_id, attempt: 1, state: 'succeeded', exit_code: 0, last_step: step }]
            : k % 2 === 0
              ? ['ckpt.committed', { run_id, step, manifest: `runs/${run_id}/ckpt/${step}/manifest.json`, manifest_sha256: hashLine(`${r}/${step}`) }]
              : step > 300
                ? ['ckpt.pruned', { run_id, step: step - 300 }]
                : ['attempt.heartbeat', { run_id, attempt: 1 }];
    const line = formatLine(seq, new Date(t0 + seq * 1000).toISOString(), type, fields, prev);
    if (seq === 1) first = line;
    beforeLast = prev;
    prev = hashLine(line);
    batch.push(line);
    if (batch.length === 8192 || seq === count) {
      writeSync(fd, batch.join('\n') + '\n');
      batch = [];
    }
  }
  closeSync(fd);
  const ledgerPath = path.join(dir, 'ledger.jsonl');
  await writeHead(ledgerPath, { seq: count, sha256: prev });
  await writeAnchor(await openStore('file://store', dir), makeAnchor(ledgerId(first), count, prev, beforeLast, null, ledgerPath));
  writeFileSync(marker, tag);
}

function timed(cmd: string, args: string[]): { s: number; stdout: string } {
  const t = performance.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd} exited ${r.status}`);
  return { s: (performance.now() - t) / 1000, stdout: r.stdout.toString() };
}

process.stdout.write('(figures from a shared, loaded machine are noisy; compare a row with its baseline)\n');
let atTarget = Infinity;
for (const count of SIZES) {
  await generate(count);
  const dir = sizeDir(count);
  const ledger = path.join(dir, 'ledger.jsonl');
  const mb = statSync(ledger).size / 1e6;
  const ours = timed(process.execPath, [...process.execArgv, SELF, '--child', dir]);
  const child = JSON.parse(ours.stdout) as { ms: number; ok: boolean; bad?: { reason: string }; entries: number; runs: number; maxRssKiB: number };
  if (!child.ok || child.entries !== count) throw new Error(`verify of ${count} entries: ${child.ok ? `${child.entries} entries` : child.bad?.reason}`);
  const sha = timed('sha256sum', [ledger]);
  if (count === Math.max(...SIZES)) atTarget = ours.s;
  process.stdout.write(
    `${count} entries (${mb.toFixed(0)} MB, ${child.runs} runs): ledger check ${ours.s.toFixed(2)} s process wall (${(child.ms / 1000).toFixed(2)} s in the check, ` +
      `${((count / child.ms) * 1000 / 1e3).toFixed(0)}k entries/s, peak RSS ${(child.maxRssKiB / 1024).toFixed(0)} MiB); sha256sum ${sha.s.toFixed(2)} s (${(ours.s / sha.s).toFixed(1)}x)\n`,
  );
}
const ok = atTarget <= TARGET_S && Math.max(...SIZES) >= 1_000_000;
process.stdout.write(`ledger check at ${Math.max(...SIZES)} entries: ${atTarget.toFixed(2)} s (target <= ${TARGET_S} s at 1,000,000 entries): ${ok ? 'MET' : 'MISSED'}\n`);
process.exitCode = ok ? 0 : 1;
