// Runs an AttemptRunner in its own Node process (bundled), so tests can SIGKILL it like a machine
// that dies: the runner, not just the experiment.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

const bundles = new Map<string, Promise<string>>();
const bundleDirs: string[] = [];

/** Removes the bundles spawnRunner made (call it once the file's runners have exited). */
export function removeRunnerBundles(): void {
  for (const dir of bundleDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  bundles.clear();
}

/**
 * The runner and a test's store module bundled into one plain-node script, once per store
 * module. Started through tsx's loader, every module of the runner and the AWS SDK went through
 * its hooks: ~0.8 s before a child's first line. The bundle sits under the repository's state
 * folder, so the runner finds switchyard_ckpt.py above it as it does from its source.
 */
function runnerBundle(storeModule: string): Promise<string> {
  let bundle = bundles.get(storeModule);
  if (!bundle) {
    mkdirSync(path.join(REPO, '.switchyard'), { recursive: true });
    const dir = mkdtempSync(path.join(REPO, '.switchyard', 'test-runner-'));
    bundleDirs.push(dir);
    const entry = path.join(dir, 'entry.mts');
    writeFileSync(
      entry,
      `import { AttemptRunner } from ${JSON.stringify(path.join(REPO, 'scripts/lib/runner/attempt-runner.ts'))};
       import { openTestStore } from ${JSON.stringify(storeModule)};
       const [spec, root, workDir] = [JSON.parse(process.argv[2]), process.argv[3], process.argv[4]];
       const r = new AttemptRunner(spec, { root, workDir, store: await openTestStore(), echo: (_s, b) => process.stdout.write(b) });
       const status = await r.run();
       process.stdout.write('STATUS ' + JSON.stringify(status) + '\\n');`,
    );
    const outfile = path.join(dir, 'runner.mjs');
    // CommonJS packages bundled into an ES module require node's builtins: give them a require.
    const banner = { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" };
    bundle = import('esbuild').then(async ({ build }) => {
      await build({ entryPoints: [entry], outfile, bundle: true, format: 'esm', platform: 'node', target: 'node20', banner, logLevel: 'error' });
      return outfile;
    });
    bundles.set(storeModule, bundle);
  }
  return bundle;
}

/** `storeModule` exports `openTestStore(): Promise<Store>`; it runs inside the child. */
export async function spawnRunner(opts: { dir: string; spec: AttemptSpec; storeModule: string }): Promise<RunnerProcess> {
  const script = await runnerBundle(opts.storeModule);
  const child = spawn(process.execPath, [script, JSON.stringify(opts.spec), opts.dir, path.join(opts.dir, 'work')], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, output: () => out, exited };
}
