// A training program nobody here wrote, run unchanged: it reads input.txt from its working
// folder and prints `step N / M | loss X`. The spec gives it the staged data as its working
// folder and turns its output into metrics; the pins cover exactly its code and its data.
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, experimentPids, holdExperiment, holdMidRun, waitFor, type Sandbox } from '../helpers/sandbox.js';
import type { RunRecord } from '../../scripts/lib/runs/run-record.js';

// A character bigram model in pure Python; it has never heard of Switchyard.
const MICROGPT = `import math, os, random, time

steps = int(os.environ.get("MICRO_STEPS", "40"))
pause = float(os.environ.get("MICRO_PAUSE", "0.05"))
text = open("input.txt", encoding="utf-8").read()
vocab = sorted(set(text))
index = {c: i for i, c in enumerate(vocab)}
counts = [[1.0] * len(vocab) for _ in vocab]
rng = random.Random(1337)
for step in range(1, steps + 1):
    loss = 0.0
    for _ in range(32):
        i = rng.randrange(len(text) - 1)
        row = counts[index[text[i]]]
        loss -= math.log(row[index[text[i + 1]]] / sum(row))
        row[index[text[i + 1]]] += 1.0
    print(f"step {step} / {steps} | loss {loss / 32:.4f}", flush=True)
    time.sleep(pause)
print("done", flush=True)
`;

const SPEC = `train:
  command: python3 "$SWITCHYARD_CODE_DIR/microgpt.py"
  cwd: $data
  metrics_from: 'step (?<step>\\d+) / \\d+ \\| loss (?<loss>[\\d.]+)'
data:
  dir: data
  exclude: ["*.csv"]
`;

let sb: Sandbox;
const comp = () => path.join(sb.dir, 'competitions/microgpt');
const runsDir = () => path.join(sb.dir, '.switchyard/store/runs');
const runIds = () => (existsSync(runsDir()) ? readdirSync(runsDir()).sort() : []);
const runIdIn = (text: string) => /run (\S+-\d{8}T\d{4}-[0-9a-f]{8}(?:-\d+)?)/.exec(text)?.[1];
const record = (id: string) => JSON.parse(readFileSync(path.join(runsDir(), id, 'run.json'), 'utf8')) as RunRecord;
const stored = (id: string, file: string) => readFileSync(path.join(runsDir(), id, 'attempts/1', file), 'utf8');
const ownLines = (stderr: string) => stderr.split('\n').filter((l) => l && !l.startsWith('make: ***'));

function train(experiment: string, ...vars: string[]) {
  const r = sb.make(['train', `experiment=${experiment}`, ...vars]);
  return { ...r, all: r.stdout + r.stderr, id: runIdIn(r.stdout + r.stderr) };
}

beforeAll(() => {
  sb = createSandbox();
  mkdirSync(path.join(comp(), 'data'), { recursive: true });
  mkdirSync(path.join(comp(), 'experiments'));
  writeFileSync(path.join(comp(), 'challenge.json'), '{"title": "microgpt"}\n');
  writeFileSync(path.join(comp(), 'microgpt.py'), MICROGPT);
  writeFileSync(path.join(comp(), 'data/input.txt'), 'first citizen: before we proceed any further, hear me speak.\n'.repeat(40));
  writeFileSync(path.join(comp(), 'data/notes.csv'), 'not,for,training\n');
  writeFileSync(path.join(comp(), 'experiment.yaml'), SPEC);
  // Never checkpoints, runs long enough to be interrupted.
  writeFileSync(path.join(comp(), 'experiments/slow.yaml'), SPEC.replace('  cwd: $data\n', '  cwd: $data\n  env: { MICRO_STEPS: "600", MICRO_PAUSE: "0.1" }\n'));
  // What the experiment can see of its data: the listing, the modes, and the excluded file.
  writeFileSync(
    path.join(comp(), 'experiments/peek.yaml'),
    `train:\n  command: 'ls -A; stat -c %a . input.txt; exec python3 -c "open(\\"notes.csv\\")"'\n  cwd: $data\ndata:\n  dir: data\n  exclude: ["*.csv"]\n`,
  );
  writeFileSync(path.join(comp(), 'experiments/nothing.yaml'), 'train:\n  command: "true"\ndata:\n  dir: data\n  include: ["*.txt", "*.parquet"]\n');
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', 'microgpt']);
});
afterAll(() => sb?.cleanup());

describe('a training program run unchanged', () => {
  let first: string;

  it('runs with cwd: $data; metrics_from feeds metrics.jsonl, the status line and make status; its output equals a bare run', () => {
    // On a terminal, so the live status line is drawn.
    const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm' };
    for (const k of ['MAKEFLAGS', 'MFLAGS', 'MAKELEVEL']) delete env[k];
    const r = spawnSync('script', ['-qefc', 'make -s train experiment=microgpt', '/dev/null'], { cwd: sb.dir, env, timeout: 120_000 });
    const out = r.stdout.toString();
    expect(r.status, out).toBe(0);
    expect(out).toMatch(/▸ attempt 1 · step \d+ · loss \d+\.\d+ · no checkpoint yet · /);
    first = runIdIn(out)!;

    const metrics = stored(first, 'metrics.jsonl').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics).toHaveLength(40);
    expect(metrics.map((m) => m.step)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(metrics.every((m) => Object.keys(m).join() === 'step,loss' && typeof m.loss === 'number')).toBe(true);

    const bare = spawnSync('python3', [path.join(comp(), 'microgpt.py')], { cwd: path.join(comp(), 'data') });
    expect(bare.status).toBe(0);
    expect(stored(first, 'stdout.log')).toBe(bare.stdout.toString());

    const last = metrics.at(-1)!;
    expect(sb.make(['status']).stdout).toMatch(new RegExp(`${first}\\s+microgpt\\s+succeeded\\s+1\\s+local\\s+40\\s+${last.loss.toPrecision(4)}\\s+-\\s`));
    // The store holds the logs: no second copy stays behind in the work folder.
    expect(existsSync(path.join(sb.dir, '.switchyard/work', first))).toBe(false);
    expect(out).toContain('run ' + first + ' succeeded');
    expect(out).toMatch(/succeeded in [\d.]+s · no checkpoint committed · /);
  });

  it('sees exactly the pinned files, read-only: an excluded file cannot be opened', () => {
    const r = train('microgpt/peek');
    expect(r.code, r.all).not.toBe(0);
    expect(stored(r.id!, 'stdout.log')).toBe('input.txt\n555\n444\n');
    expect(stored(r.id!, 'stderr.log')).toMatch(/FileNotFoundError: .*'notes\.csv'/);
    expect(record(r.id!).pins.data.files).toBe(1);
    expect(r.all).toContain('(1 file, ');
  });

  it('refuses an include pattern that matches nothing, naming it, before a run exists', () => {
    const before = runIds();
    const r = train('microgpt/nothing');
    expect(r.code).not.toBe(0);
    expect(ownLines(r.stderr)).toEqual([
      'switchyard: competitions/microgpt/experiments/nothing.yaml: data.include: "*.parquet" matches no file in competitions/microgpt/data; fix the pattern or add the files',
    ]);
    expect(runIds()).toEqual(before);
  });

  it('pins its own code: edits to another competition and to the inventory are a cache hit, an edit to its code a new run', () => {
    writeFileSync(path.join(sb.dir, 'competitions/penguins/NEW-NOTES.md'), 'unrelated\n');
    appendFileSync(path.join(sb.dir, 'cluster_fleet_config.ts'), '// a host moved to a new address\n');
    const hit = train('microgpt');
    expect(hit.code, hit.all).toBe(0);
    expect(hit.all).toContain(`run ${first} already finished with these pins`);

    appendFileSync(path.join(comp(), 'microgpt.py'), '# tweak\n');
    const edited = train('microgpt');
    expect(edited.code, edited.all).toBe(0);
    expect(edited.id).not.toBe(first);
    const run = record(edited.id!);
    expect(run.pins.code.commit).toBe(record(first).pins.code.commit);
    expect(run.pins.code.dirty_sha256).toMatch(/^[0-9a-f]{64}$/);
    const diff = readFileSync(path.join(runsDir(), edited.id!, 'source.diff'), 'utf8');
    expect(diff).toContain('+# tweak');
    expect(diff).not.toContain('NEW-NOTES');
    expect(diff).not.toContain('cluster_fleet_config');
  });
});

describe('an experiment that never checkpoints', () => {
  it('says so at start, words Ctrl-C by what is true, and says a resume after kill -9 starts over', async () => {
    const started = sb.spawnMake(['train', 'experiment=microgpt/slow']);
    await waitFor(() => /^step 3 \//m.test(started.output()), 30_000, 'three steps');
    // The runner's restored event reaches the verb with a poll, which may come after the output.
    await waitFor(() => started.output().includes('starting from scratch (no checkpoint yet: until the experiment commits one, a resume starts over from the beginning)'), 30_000, 'the restored line');
    process.kill(-started.pid!, 'SIGKILL');
    await new Promise((r) => started.on('close', r));

    const resumed = sb.spawnMake(['train', 'experiment=microgpt/slow']);
    await waitFor(() => /^step 2 \//m.test(resumed.output()), 30_000, 'the resumed attempt');
    expect(resumed.output()).toContain('attempt 1 ended lost');
    // The runner's restored event reaches the verb with the next poll, not with the output.
    await waitFor(() => resumed.output().includes('starting over from the beginning: no earlier attempt committed a checkpoint'), 30_000, 'the restored line');
    process.kill(-resumed.pid!, 'SIGINT');
    const code = await new Promise<number | null>((r) => resumed.on('close', r));
    expect(code).not.toBe(0);
    expect(resumed.output()).toContain(
      'stopping: the experiment has 60s to exit; it has not committed a checkpoint, so make train starts it over from the beginning (Ctrl-C again to kill it now)',
    );
    expect(resumed.output()).not.toContain('checkpointing');
  });
});

describe('runs recorded before these fields existed', () => {
  it('resume, pull, predict and verify', async () => {
    const hold = await holdExperiment(sb);
    const p = sb.spawnMake(['train', 'experiment=penguins/fast', 'seed=5']);
    const { runId: id } = await holdMidRun(sb, hold, 2);
    process.kill(-p.pid!, 'SIGKILL');
    await new Promise((r) => p.on('close', r));
    await waitFor(() => experimentPids(id).length === 0, 30_000, 'the experiment to be killed with its runner');

    // What an older Switchyard wrote: no metrics in the attempts, no attempt in the restored event.
    const file = path.join(runsDir(), id, 'run.json');
    const old = JSON.parse(readFileSync(file, 'utf8'));
    for (const a of old.attempts) delete a.metrics;
    writeFileSync(file, JSON.stringify(old, null, 2));
    const events = path.join(sb.dir, '.switchyard/work', id, 'attempts/1/events.jsonl');
    writeFileSync(events, readFileSync(events, 'utf8').replace(/,"attempt":1\}/, '}'));
    expect(sb.make(['reindex']).code).toBe(0);

    const resumed = train('penguins/fast', 'seed=5');
    expect(resumed.code, resumed.all).toBe(0);
    expect(resumed.id).toBe(id);
    expect(resumed.all).toMatch(/resuming from committed checkpoint step \d+/);
    for (const verb of [['pull', `run=${id}`], ['predict', `run=${id}`], ['verify']]) {
      const r = sb.make(verb);
      expect(r.code, `${verb.join(' ')}: ${r.stdout}${r.stderr}`).toBe(0);
    }
  });
});
