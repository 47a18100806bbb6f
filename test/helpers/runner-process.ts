// Runs an AttemptRunner in its own Node process (tsx), so tests can SIGKILL it like a machine
// that dies: the runner, not just the experiment.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { AttemptSpec } from '../../scripts/lib/runner/attempt-spec.js';
import { REPO } from './sandbox.js';

export interface RunnerProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** An attempt spec for tests: an experiment in `<root>/exp`, no secrets, one shard. */
export function testAttemptSpec(over: Partial<AttemptSpec> & Pick<AttemptSpec, 'run_id' | 'command' | 'store'>): AttemptSpec {
  return {
    unit_id: over.run_id,
    pins_digest: 'feedface0123',
    attempt: 1,
    setup: null,
    secrets: [],
    secrets_file: null,
    venv: null,
    cwd: 'exp',
    command_cwd: null,
    setup_cwd: null,
    data_dir: null,
    data_pin: null,
    metrics_from: null,
    env: {},
    seed: 1,
    ckpt_every_sec: 0.2,
    grace_sec: 10,
    keep_checkpoints: 3,
    shard_index: 0,
    shard_count: 1,
    store_s3: null,
    ...over,
  };
}

/** `storeModule` exports `openTestStore(): Promise<Store>`; it runs inside the child. */
export function spawnRunner(opts: { dir: string; spec: AttemptSpec; storeModule: string }): RunnerProcess {
  const script = path.join(opts.dir, `runner-${process.hrtime.bigint()}.mts`);
  writeFileSync(
    script,
    `import { AttemptRunner } from ${JSON.stringify(path.join(REPO, 'scripts/lib/runner/attempt-runner.ts'))};
     import { openTestStore } from ${JSON.stringify(opts.storeModule)};
     const r = new AttemptRunner(${JSON.stringify(opts.spec)}, { root: ${JSON.stringify(opts.dir)},
       workDir: ${JSON.stringify(path.join(opts.dir, 'work'))}, store: await openTestStore(),
       echo: (_s, b) => process.stdout.write(b) });
     const status = await r.run();
     process.stdout.write('STATUS ' + JSON.stringify(status) + '\\n');`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, output: () => out, exited };
}
