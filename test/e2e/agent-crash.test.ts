// Exactly once under crashes: the agent is killed with SIGKILL at 30 random moments (a seeded
// RNG) while three runs go through attempt after attempt (each attempt commits one step and
// exits 75, "resume me", until the last), so the kills land in submits, polls and resubmits.
// A sampler watches every runner process on this machine the whole time. After a last restart
// every run must finish exactly once: one success per run, attempts numbered without a gap and
// each started and ended once in the ledger, never two live runners of one run, and the result
// of an uninterrupted chain of hops.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, waitFor, type Sandbox } from '../helpers/sandbox.js';
import { runIdIn, storedRun } from '../helpers/agent.js';

const HOPS = 8;
const TRIALS = 30;

const HOPS_PY = `import os, sys, switchyard_ckpt
found = switchyard_ckpt.latest()
step = (found[0] if found else 0) + 1
switchyard_ckpt.save(step, {"step.txt": str(step)})
if step < int(os.environ["HOPS"]):
    sys.exit(75)
with open(os.path.join(os.environ["SWITCHYARD_OUTPUT_DIR"], "result.txt"), "w") as f:
    f.write(f"hops {step} seed {os.environ['SWITCHYARD_SEED']}\\n")
`;

/** mulberry32: a small seeded generator, so a failing schedule can be replayed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Live (not zombie) runner processes of this sandbox, as run id → attempt numbers. A runner's
 * own child between its fork and its exec still shows the runner's command line: a process
 * whose parent is a runner is that, not a second runner.
 */
function liveRunners(dir: string): Map<string, number[]> {
  const work = path.join(dir, '.switchyard/work') + '/';
  const runners = new Map<string, { spec: string; ppid: string }>();
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      const spec = argv[argv.indexOf('--spec') + 1];
      if (!argv.includes('--spec') || !spec?.startsWith(work)) continue;
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (!/^[ZX]$/.test(state!)) runners.set(p, { spec, ppid: ppid! });
    } catch {
      // gone meanwhile
    }
  }
  const out = new Map<string, number[]>();
  for (const { spec, ppid } of runners.values()) {
    if (runners.get(ppid)?.spec === spec) continue;
    const [run, , n] = spec.slice(work.length).split('/');
    out.set(run!, [...(out.get(run!) ?? []), Number(n)]);
  }
  return out;
}

describe('the agent killed at random moments', () => {
  let sb: Sandbox;
  let agent: ChildProcess | null = null;

  beforeAll(() => {
    sb = createSandbox();
    writeFileSync(path.join(sb.dir, 'competitions/penguins/hops.py'), HOPS_PY);
    writeFileSync(path.join(sb.dir, 'competitions/penguins/experiments/hops.yaml'), `train:\n  command: python3 hops.py\n  env:\n    HOPS: "${HOPS}"\n  grace_sec: 5\n`);
    const config = path.join(sb.dir, 'cluster_fleet_config.ts');
    writeFileSync(config, readFileSync(config, 'utf8').replace('max_attempts: 5,', `max_attempts: ${HOPS + 2},`));
    sb.git(['add', '-A']);
    sb.git(['commit', '-qm', 'hops']);
    expect(sb.make(['build']).code).toBe(0);
  });
  afterAll(() => {
    if (agent?.exitCode === null) agent.kill('SIGKILL');
    sb?.cleanup();
  });

  const startAgent = () => spawn(process.execPath, ['dist/scripts/agent.js'], { cwd: sb.dir, env: { ...process.env, tick_ms: '100' }, stdio: 'ignore' });
  const exited = (p: ChildProcess) => (p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.on('exit', r)));

  it(`${TRIALS} SIGKILLs during submit, poll and resubmit: every run finishes exactly once`, { timeout: 300_000 }, async () => {
    const ids = [1, 2, 3].map((seed) => {
      const r = sb.make(['train', 'experiment=penguins/hops', `seed=${seed}`, 'detach=1']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      return runIdIn(r.stdout + r.stderr)!;
    });
    const doubles: string[] = [];
    const sampler = setInterval(() => {
      for (const [run, attempts] of liveRunners(sb.dir)) if (attempts.length > 1) doubles.push(`${run}: attempts ${attempts.join(', ')} live at once`);
    }, 20);
    const next = rng(20261130);
    try {
      for (let trial = 0; trial < TRIALS; trial++) {
        agent = startAgent();
        // past Node's start (~0.3 s), then anywhere in the agent's life: its first ticks re-attach, pull and resubmit
        await new Promise((r) => setTimeout(r, 300 + next() * 1200));
        agent.kill('SIGKILL');
        await exited(agent);
      }
      agent = startAgent();
      await waitFor(() => ids.every((id) => storedRun(sb, id)?.units[0]?.attempts.at(-1)?.state === 'succeeded'), 180_000, 'every run to finish');
      agent.kill('SIGTERM');
      await exited(agent);
    } finally {
      clearInterval(sampler);
    }
    expect(doubles).toEqual([]);
    const ledger = readFileSync(path.join(sb.dir, '.switchyard/ledger.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string; run_id?: string; attempt?: number });
    for (const [i, id] of ids.entries()) {
      const attempts = storedRun(sb, id)!.units[0]!.attempts;
      expect(attempts.map((a) => a.n)).toEqual(attempts.map((_, k) => k + 1));
      expect(attempts.filter((a) => a.state === 'succeeded')).toHaveLength(1);
      expect(attempts.slice(0, -1).every((a) => a.state === 'preempted' || a.state === 'lost')).toBe(true);
      const result = readFileSync(path.join(sb.dir, '.switchyard/store/runs', id, 'outputs/result.txt'), 'utf8');
      expect(result).toBe(`hops ${HOPS} seed ${i + 1}\n`);
      for (const type of ['attempt.started', 'attempt.ended']) {
        const ns = ledger.filter((e) => e.type === type && e.run_id === id).map((e) => e.attempt!);
        expect(new Set(ns).size, `${type} of ${id}: ${ns.join(',')}`).toBe(ns.length);
      }
    }
    expect(liveRunners(sb.dir).size).toBe(0);
    const verify = sb.make(['verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});
