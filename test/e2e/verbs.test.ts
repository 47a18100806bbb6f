// The other verbs end to end: hostile and malformed input, Ctrl-C, make stop, replay,
// reindex, verify against tampering, predict and submit.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createSandbox, waitFor, type Sandbox } from '../helpers/sandbox.js';

let sb: Sandbox;
/** A host that takes the connection and never speaks SSH: make train waits on it before any run exists. */
let mute: { server: net.Server; port: number; accepted: number };
beforeAll(async () => {
  sb = createSandbox();
  const server = net.createServer(() => void mute.accepted++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  mute = { server, port: (server.address() as net.AddressInfo).port, accepted: 0 };
  mkdirSync(path.join(sb.dir, '.switchyard'), { recursive: true });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(sb.dir, '.switchyard', 'mute_key')]);
  writeFileSync(path.join(sb.dir, '.switchyard', 'mute_known_hosts'), '');
  const exps = path.join(sb.dir, 'competitions/penguins/experiments');
  writeFileSync(path.join(exps, 'bad-yaml.yaml'), 'train:\n  command: [python3\n');
  writeFileSync(path.join(exps, 'unknown-key.yaml'), 'train:\n  command: python3 train.py\nepochs: 3\n');
  writeFileSync(path.join(exps, 'no-command.yaml'), 'train:\n  checkpoint_every_sec: 1\n');
  writeFileSync(path.join(exps, 'no-data.yaml'), 'train:\n  command: python3 train.py\ndata:\n  dir: missing\n');
  writeFileSync(path.join(exps, 'bad-backend.yaml'), 'train:\n  command: python3 train.py\nbackends: [mainframe]\n');
  writeFileSync(path.join(exps, 'gpus.yaml'), 'train:\n  command: python3 train.py\nresources: { gpus: 48 }\n');
  const config = path.join(sb.dir, 'cluster_fleet_config.ts');
  const mutedHost = `mute: { host: '127.0.0.1', port: ${mute.port}, identity_file: '${sb.dir}/.switchyard/mute_key', known_hosts: '${sb.dir}/.switchyard/mute_known_hosts', connect_timeout: 300 }`;
  writeFileSync(config, readFileSync(config, 'utf8').replace('  hosts: {},', `  hosts: {\n    bigbox: { host: 'bigbox.example', gpus: 64 },\n    ${mutedHost},\n  },`));
  writeFileSync(path.join(exps, 'stubborn.yaml'), "train:\n  command: \"trap '' TERM; echo stubborn; while true; do sleep 0.1; done\"\n  grace_sec: 60\n");
  // For the stops: runs that a quick machine does not finish before a stop lands. `long` is only
  // ever stopped; `twice` (twice penguins/fast) is stopped once its first epoch line is out,
  // ~1 s in, and resumed to its end.
  const fast = readFileSync(path.join(exps, 'fast.yaml'), 'utf8');
  writeFileSync(path.join(exps, 'long.yaml'), fast.replace('EPOCHS: "1600"', 'EPOCHS: "1000000"'));
  writeFileSync(path.join(exps, 'twice.yaml'), fast.replace('EPOCHS: "1600"', 'EPOCHS: "3200"'));
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', 'test experiments']);
});
afterAll(() => {
  mute?.server.close();
  sb?.cleanup();
});

const runsDir = () => path.join(sb.dir, '.switchyard/store/runs');
const runIds = () => (existsSync(runsDir()) ? readdirSync(runsDir()).sort() : []);
const runIdIn = (text: string) => /run (\S+-\d{8}T\d{4}-[0-9a-f]{8}(?:-\d+)?)/.exec(text)?.[1];
const ownLines = (stderr: string) => stderr.split('\n').filter((l) => l && !l.startsWith('make: ***'));

describe('bad input', () => {
  it.each([
    [[], /^switchyard: experiment: required, e\.g\. make train experiment=penguins$/],
    [['experiment=nosuch'], /^switchyard: experiment: no competition "nosuch" \(known: knn, penguins\); create it with make competition-new/],
    [['experiment=penguins/bad-yaml'], /^switchyard: competitions\/penguins\/experiments\/bad-yaml\.yaml:\d+:\d+: malformed YAML: /],
    [['experiment=penguins/unknown-key'], /^switchyard: competitions\/penguins\/experiments\/unknown-key\.yaml: epochs: unknown key; valid keys here: setup, train,/],
    [['experiment=penguins/no-command'], /^switchyard: competitions\/penguins\/experiments\/no-command\.yaml: train\.command: required, e\.g\. "python3 train\.py"$/],
    [['experiment=penguins/no-data'], /^switchyard: competitions\/penguins\/experiments\/no-data\.yaml: data\.dir: competitions\/penguins\/missing is not a directory/],
    [['experiment=penguins/bad-backend'], /^switchyard: competitions\/penguins\/experiments\/bad-backend\.yaml: backends\.0: must be one of "local", "ssh"/],
    [['experiment=penguins', 'backend=mainframe'], /^switchyard: make train: backend: "mainframe" is not valid/],
    [['experiment=penguins', 'backend=slurm'], /^switchyard: cluster: no SLURM clusters configured; add one under clusters in cluster_fleet_config\.ts \(the commented example explains each field\)$/],
    [['experiment=../penguins'], /^switchyard: experiment: "\.\.\/penguins" is not a valid name/],
    [['experiment=pen guins'], /^switchyard: experiment: "pen guins" is not a valid name/],
    [['experiment=penguins;touch pwned'], /^switchyard: experiment: "penguins;touch pwned" is not a valid name/],
    // make itself expands $(...) on its command line; $$ passes a literal $ through to us.
    [['experiment=$(touch pwned)'], /^switchyard: experiment: required/],
    [['experiment=$$(touch pwned)'], /^switchyard: experiment: "\$\(touch pwned\)" is not a valid name/],
    [["experiment=penguins/`touch pwned`"], /^switchyard: experiment: "penguins\/`touch pwned`" is not a valid name/],
    // Checked against what the backend has before any run exists, naming where it would fit.
    [['experiment=penguins/gpus'], /^switchyard: competitions\/penguins\/experiments\/gpus\.yaml: resources\.gpus: 48 asked, this machine has \d+; run it with backend=ssh host=bigbox$/],
  ])('make train %j fails in one line and creates no run', (args, message) => {
    const before = runIds();
    const r = sb.make(['train', ...args]);
    expect(r.code).not.toBe(0);
    const lines = ownLines(r.stderr);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(runIds()).toEqual(before);
    expect(existsSync(path.join(sb.dir, 'pwned'))).toBe(false);
    expect(existsSync(path.join(sb.dir, 'competitions/penguins/pwned'))).toBe(false);
  });

  it('competition-new refuses hostile names and never overwrites', () => {
    for (const bad of ['../x', 'a b', 'x;id', '$$(id)']) {
      const r = sb.make(['competition-new', `competition=${bad}`]);
      expect(r.code).not.toBe(0);
      expect(ownLines(r.stderr)).toEqual([expect.stringMatching(/^switchyard: competition: .* is not a valid name/)]);
    }
    const r = sb.make(['competition-new', 'competition=penguins']);
    expect(ownLines(r.stderr)).toEqual(['switchyard: competition: competitions/penguins already exists; pick another slug or edit it in place']);
    expect(readFileSync(path.join(sb.dir, 'competitions/penguins/challenge.json'), 'utf8')).toContain('Palmer');
  });

  it('competition-new keeps a hostile title as data: the scaffold trains and predicts without running it', () => {
    const title = 'x"""+__import__("os").system("touch pwned")+"""' + " `touch pwned` $(touch pwned) {{slug}} $& '''";
    // make expands $ on its command line; $$ passes one through.
    const made = sb.make(['competition-new', 'competition=hostile', `name=${title.replace(/\$/g, () => '$$')}`]);
    expect(made.code, made.stderr).toBe(0);
    const dir = path.join(sb.dir, 'competitions/hostile');
    onTestFinished(() => rmSync(dir, { recursive: true, force: true })); // the later tests want a clean tree
    expect(JSON.parse(readFileSync(path.join(dir, 'challenge.json'), 'utf8')).title).toBe(title);
    expect(readFileSync(path.join(dir, 'NOTES.md'), 'utf8').split('\n')[0]).toBe(`# ${title}`);
    for (const code of ['train.py', 'predict.py', 'experiment.yaml']) expect(readFileSync(path.join(dir, code), 'utf8')).not.toContain('pwned');
    writeFileSync(path.join(dir, 'experiments/quick.yaml'), readFileSync(path.join(dir, 'experiment.yaml'), 'utf8').replace('"40000"', '"300"'));
    const trained = sb.make(['train', 'experiment=hostile/quick']);
    expect(trained.code, trained.stdout + trained.stderr).toBe(0);
    const predicted = sb.make(['predict', 'experiment=hostile/quick']);
    expect(predicted.code, predicted.stdout + predicted.stderr).toBe(0);
    expect(existsSync(path.join(dir, 'pwned'))).toBe(false);
    expect(existsSync(path.join(sb.dir, 'pwned'))).toBe(false);
  });
});

describe('stopping', () => {
  it('the first Ctrl-C checkpoints and stops; make train then resumes from that checkpoint', async () => {
    const p = sb.spawnMake(['train', 'experiment=penguins/twice', 'seed=11']);
    await waitFor(() => /epoch \d+/.test(p.output()), 30_000, 'training to start');
    process.kill(-p.pid!, 'SIGINT'); // what a terminal's Ctrl-C does: the whole foreground group
    const code = await new Promise<number | null>((r) => p.on('close', r));
    expect(code).not.toBe(0);
    const out = p.output();
    // Whether a checkpoint was committed before the Ctrl-C is a race: each has its own true words.
    expect(out).toMatch(/stopping: the experiment has 60s to (checkpoint and exit; make train resumes it from its newest checkpoint \(step \d+ so far\)|exit; it has not committed a checkpoint, so make train starts it over from the beginning) \(Ctrl-C again to kill it now\)/);
    const id = runIdIn(out)!;
    const run = JSON.parse(readFileSync(path.join(runsDir(), id, 'run.json'), 'utf8'));
    expect(run.attempts[0]).toMatchObject({ state: 'cancelled', exit_code: 75 });
    const step = run.attempts[0].last_step as number;
    expect(step).toBeGreaterThan(0);

    const resumed = sb.make(['train', 'experiment=penguins/twice', 'seed=11']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout + resumed.stderr).toContain(`resuming from committed checkpoint step ${step}`);
  });

  it('a second Ctrl-C kills an experiment that ignores SIGTERM', async () => {
    const p = sb.spawnMake(['train', 'experiment=penguins/stubborn']);
    // Its own line, not the run id (penguins-stubborn-...), which is printed before the handlers are in place.
    await waitFor(() => /^stubborn$/m.test(p.output()), 30_000, 'the stubborn experiment');
    process.kill(-p.pid!, 'SIGINT');
    // The first Ctrl-C has been taken (and SIGTERM sent, which it ignores) once make train says so.
    await waitFor(() => /stopping: the experiment/.test(p.output()), 30_000, 'the first Ctrl-C to be taken');
    const t0 = Date.now();
    process.kill(-p.pid!, 'SIGINT');
    await new Promise((r) => p.on('close', r));
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(p.output()).toContain('killing the experiment');
    const run = JSON.parse(readFileSync(path.join(runsDir(), runIdIn(p.output())!, 'run.json'), 'utf8'));
    expect(run.attempts[0]).toMatchObject({ state: 'cancelled' });
  });

  it('Ctrl-C before a run is opened (its host still being reached) ends make train at once, leaving no run', async () => {
    const before = runIds();
    const p = sb.spawnMake(['train', 'experiment=penguins/fast', 'backend=ssh', 'host=mute', 'seed=31']);
    await waitFor(() => mute.accepted > 0 || p.exitCode !== null, 60_000, 'make train to reach the host');
    process.kill(-p.pid!, 'SIGINT');
    // The host would keep it waiting for its 300 s connect timeout.
    await waitFor(() => p.exitCode !== null || p.signalCode !== null, 60_000, () => `make train to exit (it printed: ${p.output()})`);
    expect(p.output()).toContain('SIGINT: stopped before any run was opened; nothing was started');
    expect(runIds()).toEqual(before);
  });

  it('make stop from another shell checkpoints and stops a running run', async () => {
    const p = sb.spawnMake(['train', 'experiment=penguins/long', 'seed=12']);
    await waitFor(() => /epoch \d+/.test(p.output()), 30_000, 'training to start');
    const id = runIdIn(p.output())!;
    const stop = sb.make(['stop', `run=${id}`]);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toMatch(/attempt 1 cancelled at checkpoint step \d+/);
    await new Promise((r) => p.on('close', r));
    expect(sb.make(['status']).stdout).toMatch(new RegExp(`${id}\\s+penguins/long\\s+cancelled`));
    expect(ownLines(sb.make(['stop', `run=${id}`]).stderr)).toEqual([`switchyard: stop: run ${id} is not running (cancelled)`]);
  });
});

describe('records', () => {
  let id: string;

  beforeAll(() => {
    const r = sb.make(['train', 'experiment=penguins/fast']);
    id = runIdIn(r.stdout + r.stderr)!;
  });

  it('predict writes the submission and submit dry-runs it with a real local score', () => {
    const p = sb.make(['predict', 'experiment=penguins/fast']);
    expect(p.code, p.stderr).toBe(0);
    expect(existsSync(path.join(runsDir(), id, 'outputs/submission.csv'))).toBe(true);
    const s = sb.make(['submit', 'experiment=penguins/fast', 'dry=1']);
    expect(s.code, s.stderr).toBe(0);
    const score = JSON.parse(/local score: (.*)/.exec(s.stdout)![1]!);
    expect(score.metric).toBe('accuracy');
    expect(score.score).toBeGreaterThan(0.9);
    expect(s.stdout).toContain('dry run: nothing was uploaded (dry=1 was given)');
    const ledger = readFileSync(path.join(sb.dir, '.switchyard/ledger.jsonl'), 'utf8');
    expect(ledger).toContain('"type":"submission.made"');
  });

  it('predict run=<id> says to submit that run, not the experiment\'s newest finished one', () => {
    const p = sb.make(['predict', `run=${id}`]);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stderr).toContain(`next: make submit run=${id} dry=1`);
  });

  it('a run= and an experiment= of different runs are refused, never one of them guessed', () => {
    const p = sb.make(['predict', `run=${id}`, 'experiment=knn']);
    expect(p.code).not.toBe(0);
    expect(p.stderr).toContain(`switchyard: make predict: run ${id} is a run of penguins/fast, not of knn; give run= or experiment=, or both of one run`);
    expect(sb.make(['predict', `run=${id}`, 'experiment=penguins/fast']).code).toBe(0);
  });

  it('merge and retry of an experiment without shards say what a sharded search needs, not "make train"', () => {
    for (const verb of ['merge', 'retry']) {
      const r = sb.make([verb, 'experiment=penguins/fast', ...(verb === 'retry' ? ['shard=0'] : [])]);
      expect(r.code).not.toBe(0);
      expect(ownLines(r.stderr)).toEqual([
        `switchyard: make ${verb}: experiment penguins/fast has no sharded search yet; its newest run, ${id}, is a run of one unit: a search over shards is declared with \`shards:\` in the experiment's spec (docs/experiment-contract.md#shards)`,
      ]);
    }
    expect(ownLines(sb.make(['merge', `run=${id}`]).stderr)).toEqual([
      `switchyard: merge: run ${id} is not a sharded search (its spec had no \`shards:\`); make merge joins the shard files of a search over shards`,
    ]);
  });

  it('replay refuses, naming the pin, once the code has changed', () => {
    const replicate = path.join(runsDir(), id, 'replicate.sh');
    const file = path.join(sb.dir, 'competitions/penguins/train.py');
    const original = readFileSync(file, 'utf8');
    writeFileSync(file, original + '\n# changed\n');
    try {
      const r = sb.make(['replay', `run=${id}`]);
      expect(r.code).not.toBe(0);
      expect(ownLines(r.stderr)).toEqual([expect.stringMatching(new RegExp(`^switchyard: cannot replay ${id}: code: clean tree recorded, uncommitted changes [0-9a-f]{8} here \\(for the code: git stash -u\\)$`))]);
    } finally {
      writeFileSync(file, original);
    }
    expect(readFileSync(replicate, 'utf8')).toMatch(/exec make replay run=/);
  });

  it('replay with matching pins makes a new run with the same digest', () => {
    const r = sb.make(['replay', `run=${id}`]);
    expect(r.code, r.stderr).toBe(0);
    const replayId = /as (\S+) on local/.exec(r.stdout + r.stderr)![1]!;
    const rec = JSON.parse(readFileSync(path.join(runsDir(), replayId, 'run.json'), 'utf8'));
    const orig = JSON.parse(readFileSync(path.join(runsDir(), id, 'run.json'), 'utf8'));
    expect(rec.pins.digest).toBe(orig.pins.digest);
    expect(rec.replay_of).toBe(id);
    // Wanted finished as a train is (the agent carries it should this shell die), and closed with its end.
    expect(sb.make(['status', `run=${replayId}`]).stdout).toContain(`run ${replayId} on local: succeeded, 1 of 1 units done; wanted: closed (succeeded)`);
  });

  it('reindex rebuilds the state db from the store', () => {
    const before = sb.make(['status']).stdout;
    rmSync(path.join(sb.dir, '.switchyard/state.db'));
    expect(sb.make(['status']).stdout).toContain('no runs yet');
    const r = sb.make(['reindex']);
    expect(r.stdout).toMatch(/reindexed \d+ runs/);
    expect(sb.make(['status']).stdout).toBe(before);
  });

  it('verify names an edited ledger line and a corrupted checkpoint', () => {
    const ledgerPath = path.join(sb.dir, '.switchyard/ledger.jsonl');
    const original = readFileSync(ledgerPath, 'utf8');
    expect(sb.make(['verify']).code).toBe(0);
    const lines = original.split('\n');
    lines[2] = lines[2]!.replace('"ts":"2', '"ts":"1');
    writeFileSync(ledgerPath, lines.join('\n'));
    expect(ownLines(sb.make(['verify']).stderr)[0]).toMatch(/line 3 was edited/);
    writeFileSync(ledgerPath, original);

    const ckpt = path.join(runsDir(), id, 'ckpt');
    const step = readdirSync(ckpt).sort((a, b) => Number(b) - Number(a))[0]!;
    writeFileSync(path.join(ckpt, step, 'state.json'), '{}');
    const bad = ownLines(sb.make(['verify']).stderr)[0];
    expect(bad).toMatch(new RegExp(`line \\d+: .*runs/${id}/ckpt/${step}/state.json does not match its manifest`));
  });
});
