// A throwaway copy of this repository (tracked and untracked, not ignored, files) in a temp
// folder with its own git history, sharing node_modules by symlink: e2e tests run `make` in it.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

export const REPO = path.resolve(import.meta.dirname, '..', '..');

export interface Sandbox {
  dir: string;
  /** runs `make <args>` to completion */
  make(args: string[], opts?: { env?: NodeJS.ProcessEnv; timeoutMs?: number }): { code: number; stdout: string; stderr: string };
  /** starts `make <args>` in its own process group, for signal tests */
  spawnMake(args: string[], env?: NodeJS.ProcessEnv): ChildProcess & { output: () => string };
  git(args: string[]): string;
  cleanup(): void;
}

/** `competitions/<slug>` with a challenge.json and this `experiment.yaml`, committed with what else changed. */
export function addCompetition(sb: Sandbox, slug: string, experimentYaml: string): string {
  const comp = path.join(sb.dir, 'competitions', slug);
  mkdirSync(comp, { recursive: true });
  writeFileSync(path.join(comp, 'challenge.json'), `${JSON.stringify({ title: slug })}\n`);
  writeFileSync(path.join(comp, 'experiment.yaml'), experimentYaml);
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', `competition ${slug}`]);
  return comp;
}

export function createSandbox(): Sandbox {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-e2e-'));
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: REPO })
    .toString()
    .split('\0')
    .filter((f) => f && !f.startsWith('node_modules/'));
  for (const f of files) {
    try {
      // Timestamps kept: files older than the index it writes, so git trusts their stat data
      // (copies stamped "now" share the index's second, and every pin re-reads every file).
      cpSync(path.join(REPO, f), path.join(dir, f), { recursive: true, preserveTimestamps: true });
    } catch {
      // a file deleted in the work tree but not yet in the index
    }
  }
  symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  // The copied lockfile must not look newer than the shared node_modules: make would `npm ci`.
  utimesSync(path.join(dir, 'package-lock.json'), new Date(0), new Date(0));
  const git = (args: string[]) =>
    execFileSync('git', args, {
      cwd: dir,
      env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' },
    }).toString();
  git(['init', '-q']);
  git(['add', '-A']);
  git(['commit', '-qm', 'sandbox']);
  const makeEnv = (env: NodeJS.ProcessEnv = {}) => {
    const e: NodeJS.ProcessEnv = { ...process.env, ...env };
    // A fresh top-level make, even when the tests themselves run under `make test`.
    delete e.MAKEFLAGS;
    delete e.MFLAGS;
    delete e.MAKELEVEL;
    return e;
  };
  const spawned: ChildProcess[] = [];
  return {
    dir,
    git,
    make(args, opts = {}) {
      // spawnSync blocks this worker, test timeouts included, until make exits; make on SIGTERM
      // waits for its verb, and a verb that defers SIGTERM (make train before its run opens)
      // could wait on a server this worker runs. So coreutils' timeout ends the whole process
      // group: SIGTERM at the limit, SIGKILL 10 s later; spawnSync's own limit is the backstop.
      const limitS = Math.ceil((opts.timeoutMs ?? 120_000) / 1000);
      const r = spawnSync('timeout', ['--kill-after=10', String(limitS), 'make', '-s', ...args], {
        cwd: dir,
        env: makeEnv(opts.env),
        timeout: (limitS + 30) * 1000,
        killSignal: 'SIGKILL',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const stderr = r.stderr.toString();
      const timedOut = r.status === 124 || r.status === 137 || r.error ? `\n(make ${args.join(' ')}: stopped after its ${limitS} s limit)` : '';
      return { code: r.status ?? -1, stdout: r.stdout.toString(), stderr: stderr + timedOut };
    },
    spawnMake(args, env) {
      const child = spawn('make', ['-s', ...args], { cwd: dir, env: makeEnv(env), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      spawned.push(child);
      let out = '';
      child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
      return Object.assign(child, { output: () => out });
    },
    cleanup() {
      // A test that failed midway leaves its make running, still writing into the folder.
      for (const child of spawned) {
        if (child.exitCode === null && child.signalCode === null) {
          try {
            process.kill(-child.pid!, 'SIGKILL');
          } catch {
            // its group has gone meanwhile
          }
        }
      }
      rmSync(dir, { recursive: true, force: true, maxRetries: 10 });
    },
  };
}

/**
 * Resolves once `predicate()` holds, asked every `everyMs` (a predicate may ask a host or a
 * scheduler: then less often), or rejects after `ms`. `what` names the event for the timeout's
 * message; a function is asked then, to say what it found.
 */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  ms: number,
  what: string | (() => string | Promise<string>),
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : await what()}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * The `ckpt.committed` ledger entries of one shard of a run (no shard: a run of one unit), read
 * while its launcher runs (an unknown run id yet, or no ledger: none). A line still being
 * written is skipped.
 */
export function shardCommits(sb: Sandbox, runId: string | undefined, shard?: number): { step: number; manifest: string }[] {
  return ledgerEntries(sb, runId, 'ckpt.committed').filter((e) => e.shard === shard) as unknown as { step: number; manifest: string }[];
}

/** A run's ledger entries of one type, as the ledger holds them now. */
export function ledgerEntries(sb: Sandbox, runId: string | undefined, type: string): Record<string, unknown>[] {
  const ledger = path.join(sb.dir, '.switchyard/ledger.jsonl');
  if (!runId || !existsSync(ledger)) return [];
  return readFileSync(ledger, 'utf8')
    .split('\n')
    .flatMap((line) => {
      try {
        const e = JSON.parse(line);
        return e.type === type && e.run_id === runId ? [e] : [];
      } catch {
        return [];
      }
    });
}

/** Pids of a run's experiment processes (`train.py`): they carry the run's id in their environment. */
export function experimentPids(runId: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(`SWITCHYARD_RUN_ID=${runId}`) && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('train.py');
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** A test's hold on the experiment of the next `make train` in a sandbox. */
export interface ExperimentHold {
  /**
   * Lets the experiment, stopped from its start, run in slices of ~50 ms until `ready()` holds,
   * asked while it is stopped (it may wait: the runner goes on). Resolves with the experiment,
   * its process group still stopped (SIGCONT `-pid` lets it go on): the signal a test sends next
   * lands exactly there.
   */
  until(ready: (runId: string) => boolean | Promise<boolean>, what: string): Promise<{ pid: number; runId: string }>;
}

/**
 * Holds the experiment the next `make train` in `sb` starts: stopped from its first moment, on
 * by a slice at a time (see hold_experiment.py for why a process of its own does it). Start it
 * before the make. `env`: instead of working in the sandbox, the experiment carries this
 * `NAME=VALUE` in its environment (one on a test host: TestHosts.mark).
 */
export async function holdExperiment(sb: Sandbox, { ms = 120_000, env = '' } = {}): Promise<ExperimentHold> {
  const where = env ? ['--env', env] : [sb.dir];
  const helper = spawn('python3', [path.join(REPO, 'test/helpers/hold_experiment.py'), ...where], { detached: true, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: helper.stdout! })[Symbol.asyncIterator]();
  const deadline = Date.now() + ms;
  const next = async (what: string): Promise<string> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), Math.max(0, deadline - Date.now()));
    });
    try {
      const line = await Promise.race([lines.next(), late]);
      if (line.done) throw new Error(`hold_experiment.py exited while waiting for ${what}`);
      return line.value;
    } finally {
      clearTimeout(timer);
    }
  };
  if ((await next('hold_experiment.py to start')) !== 'ready') throw new Error('hold_experiment.py did not start');
  return {
    async until(ready, what) {
      try {
        const [, pid, runId] = (await next('the experiment to start')).split(' ');
        for (;;) {
          if (await ready(runId!)) {
            helper.stdin!.end('release\n');
            return { pid: Number(pid), runId: runId! };
          }
          helper.stdin!.write('slice\n');
          if ((await next(what)) === 'gone') throw new Error(`the experiment of ${runId} ended before ${what}`);
        }
      } catch (err) {
        helper.stdin!.end(); // the experiment goes on, and the helper exits
        throw err;
      }
    },
  };
}

/**
 * Holds the first attempt of a run of one unit still once `commits` of its steps are in the
 * ledger: a SIGKILL or SIGTERM sent then lands mid-run, with steps left for the resume to do.
 * A step the experiment has committed in its work folder is waited for, the experiment held
 * still, until the runner has uploaded it and the ledger names it: on a loaded machine the
 * runner can lag the experiment by seconds. `pruned`: held until that many of its steps are
 * pruned in the ledger too (the experiment keeps SWITCHYARD_CKPT_KEEP of them).
 */
export function holdMidRun(sb: Sandbox, hold: ExperimentHold, commits: number, { pruned = 0 } = {}): Promise<{ pid: number; runId: string }> {
  const newestLocal = (id: string) => {
    const ckpt = path.join(sb.dir, '.switchyard/work', id, 'ckpt');
    const steps = existsSync(ckpt) ? readdirSync(ckpt).filter((s) => /^\d+$/.test(s) && existsSync(path.join(ckpt, s, 'manifest.json'))) : [];
    return steps.length ? Math.max(...steps.map(Number)) : null;
  };
  const ledger = (id: string) => shardCommits(sb, id).map((c) => c.step);
  return hold.until(async (id) => {
    const local = newestLocal(id);
    if (local !== null) await waitFor(() => ledger(id).some((s) => s >= local), 60_000, `step ${local} of ${id} in the ledger`);
    return ledger(id).length >= commits && ledgerEntries(sb, id, 'ckpt.pruned').length >= pruned;
  }, `${commits} committed checkpoint${commits > 1 ? 's' : ''}${pruned ? ` and ${pruned} pruned` : ''}`);
}
