// make verify, pull and replay against a tampered ledger and store: the first line whose hash
// breaks is named, outputs are checked, pull never leaves a corrupt copy, an abandoned step is
// told from corruption and repaired, the chain is anchored in the store (and signed with a key),
// and an edited run.json is refused by verify and replay.
import { createHash, createHmac } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, holdExperiment, holdMidRun, type Sandbox } from '../helpers/sandbox.js';

let sb: Sandbox;
let id: string;

const ownLines = (stderr: string) => stderr.split('\n').filter((l) => l && !l.startsWith('make: ***'));
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const ledgerPath = () => path.join(sb.dir, '.switchyard/ledger.jsonl');
const headPath = () => `${ledgerPath()}.head`;
const store = (rel: string) => path.join(sb.dir, '.switchyard/store', rel);
const ledgerLines = () => readFileSync(ledgerPath(), 'utf8').split('\n').slice(0, -1);
const anchorPath = () => {
  const dir = store('ledgers');
  return path.join(dir, readdirSync(dir).find((d) => d === sha(ledgerLines()[0]!).slice(0, 16))!, 'head.json');
};

function make(args: string[]) {
  const r = sb.make(args);
  return { ...r, out: r.stdout + r.stderr, first: ownLines(r.stderr)[0] ?? '' };
}

/** The files left in a folder; none when the store removed the folder too. */
function filesIn(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String) : [];
}

/** Runs `fn`, then puts back the files named (their bytes as they were before). */
async function restoring(files: string[], fn: () => void | Promise<void>): Promise<void> {
  const saved = files.map((f) => [f, existsSync(f) ? readFileSync(f) : null] as const);
  try {
    await fn();
  } finally {
    for (const [f, bytes] of saved) {
      if (bytes) writeFileSync(f, bytes);
      else rmSync(f, { force: true });
    }
  }
}

/** Rewrites every prev after an edit, as a careful forger would, and the local head with them. */
function forgeChain(lines: string[]): string[] {
  const out: string[] = [];
  for (const [i, line] of lines.entries()) {
    const e = JSON.parse(line);
    e.prev = i === 0 ? '0'.repeat(64) : sha(out[i - 1]!);
    out.push(JSON.stringify(e));
  }
  writeFileSync(ledgerPath(), out.map((l) => `${l}\n`).join(''));
  writeFileSync(headPath(), JSON.stringify({ seq: out.length, sha256: sha(out.at(-1)!) }) + '\n');
  return out;
}

beforeAll(async () => {
  sb = createSandbox();
  // Held from its start until a step of it is pruned in the ledger: however quick the machine,
  // the run has a prune between other entries to tamper with.
  const hold = await holdExperiment(sb);
  const p = sb.spawnMake(['train', 'experiment=penguins/fast']);
  const held = await holdMidRun(sb, hold, 1, { pruned: 1 });
  process.kill(-held.pid, 'SIGCONT');
  expect(await new Promise((r) => p.on('close', r)), p.output()).toBe(0);
  id = held.runId;
  expect(make(['verify']).code).toBe(0);
}, 120_000);
afterAll(() => sb?.cleanup());

describe('the ledger', () => {
  it('one digit changed names that line, not the checkpoint the edit brought back to life', async () => {
    const lines = ledgerLines();
    // A prune in the middle: changing its step makes the pruned (deleted) step look live again.
    // The last digit changes: a first digit 9 made 0 would leave JSON with a leading zero.
    const n = lines.findIndex((l, i) => i < lines.length - 2 && l.includes('"type":"ckpt.pruned"')) + 1;
    expect(n).toBeGreaterThan(1);
    await restoring([ledgerPath()], () => {
      writeFileSync(ledgerPath(), lines.map((l, i) => (i === n - 1 ? l.replace(/"step":(\d*)(\d)/, (_, head: string, d: string) => `"step":${head}${(Number(d) + 1) % 10}`) : l)).join('\n') + '\n');
      const r = make(['verify']);
      expect(r.code).not.toBe(0);
      expect(r.first).toMatch(new RegExp(`line ${n} was edited`));
    });
  });

  it('a line appended with a correct prev (and the local head moved with it) is caught by the store anchor', async () => {
    await restoring([ledgerPath(), headPath()], () => {
      const lines = ledgerLines();
      const forged = JSON.stringify({ seq: lines.length + 1, ts: new Date().toISOString(), type: 'submission.made', run_id: id, file: 'x.csv', sha256: '0'.repeat(64), dry: false, prev: sha(lines.at(-1)!) });
      appendFileSync(ledgerPath(), `${forged}\n`);
      writeFileSync(headPath(), JSON.stringify({ seq: lines.length + 1, sha256: sha(forged) }) + '\n');
      const r = make(['verify']);
      expect(r.code).not.toBe(0);
      expect(r.first).toMatch(new RegExp(`line ${lines.length + 1} was appended after the newest anchored entry \\(line ${lines.length}, .*ledgers/[0-9a-f]{16}/head\\.json\\): Switchyard did not write it`));
    });
    expect(make(['verify']).code).toBe(0);
  });

  it('a rewritten chain with its local head is caught by the store anchor', async () => {
    await restoring([ledgerPath(), headPath()], () => {
      const lines = ledgerLines();
      forgeChain(lines.map((l, i) => (i === 2 ? l.replace('"ts":"2', '"ts":"1') : l)));
      const r = make(['verify']);
      expect(r.code).not.toBe(0);
      expect(r.first).toMatch(new RegExp(`line ${lines.length} does not match the store anchor .*: the ledger was rewritten at or before it`));
    });
  });

  it('with SWITCHYARD_LEDGER_KEY the anchor is signed: a forged chain, head and anchor are caught', async () => {
    const env = path.join(sb.dir, '.env');
    await restoring([env], async () => {
      writeFileSync(env, 'SWITCHYARD_LEDGER_KEY=a-test-key-not-secret\n');
      const unsigned = make(['verify']);
      expect(unsigned.first).toMatch(/the store anchor .* is not signed but SWITCHYARD_LEDGER_KEY is set/);
      const repaired = make(['verify', 'repair=1']);
      expect(repaired.code, repaired.out).toBe(0);
      expect(repaired.stdout).toMatch(/repair: anchored the ledger at line \d+/);
      expect(ledgerLines().at(-1)).toMatch(/"type":"ledger.anchored"/);
      expect(JSON.parse(readFileSync(anchorPath(), 'utf8')).hmac).toMatch(/^[0-9a-f]{64}$/);
      expect(make(['verify']).code).toBe(0);

      await restoring([ledgerPath(), headPath(), anchorPath()], () => {
        const forged = forgeChain(ledgerLines().map((l, i) => (i === 2 ? l.replace('"ts":"2', '"ts":"1') : l)));
        const anchor = JSON.parse(readFileSync(anchorPath(), 'utf8'));
        const fake = { ...anchor, sha256: sha(forged.at(-1)!), prev: sha(forged.at(-2)!) };
        fake.hmac = createHmac('sha256', 'a-guessed-key').update(`${fake.ledger}\n${fake.seq}\n${fake.sha256}\n${fake.prev}`).digest('hex');
        writeFileSync(anchorPath(), JSON.stringify(fake) + '\n');
        const r = make(['verify']);
        expect(r.code).not.toBe(0);
        expect(r.first).toMatch(/the store anchor .* has a wrong HMAC \(forged, or SWITCHYARD_LEDGER_KEY changed\)/);
      });
    });
  });
});

describe('the store against the ledger', () => {
  it('a changed output byte fails verify, naming the run, the file and the line', async () => {
    const model = store(`runs/${id}/outputs/model.json`);
    await restoring([model], () => {
      appendFileSync(model, ' ');
      const r = make(['verify']);
      expect(r.code).not.toBe(0);
      expect(r.first).toMatch(new RegExp(`line (\\d+): run ${id}: outputs/model\\.json \\(.*\\) changed since line \\1 recorded its SHA-256`));
    });
  });

  it('pull checks outputs, logs and metrics before they replace anything, and never leaves a corrupt copy', async () => {
    const first = make(['pull', `run=${id}`]);
    expect(first.code, first.out).toBe(0);
    expect(first.stdout).not.toMatch(/not checked/);
    const home = path.join(sb.dir, 'outputs', id);
    const good = { model: readFileSync(path.join(home, 'outputs/model.json')), log: readFileSync(path.join(home, 'attempts/1/stdout.log')) };
    for (const [rel, local, original] of [
      ['outputs/model.json', 'outputs/model.json', good.model],
      ['attempts/1/stdout.log', 'attempts/1/stdout.log', good.log],
    ] as const) {
      const stored = store(`runs/${id}/${rel}`);
      await restoring([stored], () => {
        appendFileSync(stored, 'tampered\n');
        const r = make(['pull', `run=${id}`]);
        expect(r.code).not.toBe(0);
        expect(r.first).toMatch(new RegExp(`pull: .*runs/${id}/${rel.replace('.', '\\.')} does not match the SHA-256 its runner recorded`));
        expect(readFileSync(path.join(home, local)).equals(original)).toBe(true); // the good copy is untouched
        const fresh = path.join(sb.dir, 'elsewhere');
        expect(make(['pull', `run=${id}`, `dest=${fresh}`]).code).not.toBe(0);
        expect(existsSync(path.join(fresh, local))).toBe(false); // and no corrupt one appears
        rmSync(fresh, { recursive: true, force: true });
      });
    }
  });

  it('a step whose manifest was deleted is abandoned, not corrupt; repair=1 records it and removes its blobs', () => {
    const ckpt = store(`runs/${id}/ckpt`);
    const step = readdirSync(ckpt).filter((s) => existsSync(path.join(ckpt, s, 'manifest.json'))).sort((a, b) => Number(b) - Number(a))[0]!;
    rmSync(path.join(ckpt, step, 'manifest.json'));
    // Blobs of a step nobody committed (an upload cut short): a leftover, not a failure.
    mkdirSync(path.join(ckpt, '999999'), { recursive: true });
    writeFileSync(path.join(ckpt, '999999', 'state.json'), '{}');

    const r = make(['verify']);
    expect(r.code).not.toBe(0);
    expect(r.first).toMatch(new RegExp(`line \\d+: checkpoint step ${step} of run ${id}: abandoned, not corrupt: .*ckpt/${step}/manifest\\.json is gone \\(1 file left\\); make verify repair=1 records it`));
    expect(r.stdout).toMatch(/note: step 999999 of run .*: 1 file left \(blobs without a manifest/);

    const repaired = make(['verify', 'repair=1']);
    expect(repaired.code, repaired.out).toBe(0);
    expect(repaired.stdout).toMatch(new RegExp(`repair: recorded abandoned step ${step} of run ${id} \\(its manifest is gone from the store\\); removed 1 file`));
    expect(repaired.stdout).toMatch(/repair: removed 1 file of step 999999/);
    const entries = ledgerLines().map((l) => JSON.parse(l));
    expect(entries.find((e) => e.type === 'ckpt.abandoned')).toMatchObject({ run_id: id, step: Number(step), reason: 'its manifest is gone from the store', removed: 1 });
    expect(entries.find((e) => e.type === 'ckpt.removed')).toMatchObject({ run_id: id, step: 999999, removed: 1 });
    expect(filesIn(path.join(ckpt, step))).toEqual([]);
    expect(filesIn(path.join(ckpt, '999999'))).toEqual([]);
    const after = make(['verify']);
    expect(after.code, after.out).toBe(0);
    expect(after.stdout).not.toMatch(/note:/);
  });

  it("run.json's seed changed 42 → 43: verify names the run and the pin, and replay refuses", async () => {
    const record = store(`runs/${id}/run.json`);
    await restoring([record], () => {
      writeFileSync(record, readFileSync(record, 'utf8').replace(/"seed": 42/g, '"seed": 43'));
      const r = make(['verify']);
      expect(r.code).not.toBe(0);
      expect(r.first).toMatch(new RegExp(`line \\d+: run ${id}: run\\.json does not match its pins: seed: 42 in the ledger \\(line \\d+\\), 43 in run\\.json`));
      expect(make(['reindex']).code).toBe(0); // the index now holds the edited record, as on a fresh clone
      const replay = make(['replay', `run=${id}`]);
      expect(replay.code).not.toBe(0);
      expect(replay.first).toMatch(new RegExp(`cannot replay ${id}: its record was changed after it was created: seed: 42 in the ledger`));
      expect(replay.out).not.toMatch(/all five pins match/);
    });
    expect(make(['reindex']).code).toBe(0);
    expect(make(['verify']).code).toBe(0);
  });
});
