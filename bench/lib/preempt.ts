// What the preemption benches share: an experiment that notes each attempt's start (attempt 1
// then waits to be killed), a competition of it in a sandbox with the test hosts in its
// inventory, reading the notes, and the baseline of starting it by hand.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Sandbox } from '../../test/helpers/sandbox.js';
import { inventoryEntries, type TestHosts } from '../../test/helpers/ssh-hosts.js';
import { makeRandomRepo, now } from './measure.js';

// Attempt 1 notes its start and pid, then waits to be killed; attempt 2 notes its start and ends.
const experiment = (marks: string) => `#!/bin/sh
mkdir -p "$HOME/${marks}"
echo "$SWITCHYARD_ATTEMPT $$ $(date +%s.%N)" >> "$HOME/${marks}/$SWITCHYARD_RUN_ID"
[ "$SWITCHYARD_ATTEMPT" = 1 ] && exec sleep 300
exit 0
`;

export async function until<T>(what: string, probe: () => T | null, ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The notes of a run's attempts below `home`: [attempt, pid, start seconds] each. */
export function marksOf(home: string, marks: string, run: string): string[][] {
  const file = path.join(home, marks, run);
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split(' ')) : [];
}

/**
 * `competitions/preempt` in the sandbox, the hosts (and `clusters`, an entry text) in its
 * inventory, committed, and host h1 bootstrapped. `payloadMb` MB of random files in 500 under
 * the experiment's folder make it as heavy as a real one's code (pinned and synced each attempt).
 */
export function setUpPreempt(sb: Sandbox, hosts: TestHosts, marks: string, clusters?: string, payloadMb = 0): void {
  const comp = path.join(sb.dir, 'competitions/preempt');
  mkdirSync(comp);
  if (payloadMb > 0) makeRandomRepo(path.join(comp, 'payload'), payloadMb, 500);
  writeFileSync(path.join(comp, 'challenge.json'), '{"title": "preemption"}\n');
  writeFileSync(path.join(comp, 'run.sh'), experiment(marks), { mode: 0o755 });
  writeFileSync(path.join(comp, 'experiment.yaml'), 'train:\n  command: sh run.sh\n');
  const config = path.join(sb.dir, 'cluster_fleet_config.ts');
  let text = readFileSync(config, 'utf8').replace('  hosts: {},', `  hosts: {\n${inventoryEntries(hosts).join('\n')}\n  },`);
  if (clusters) text = text.replace('  clusters: {},', `  clusters: {\n${clusters}\n  },`);
  writeFileSync(config, text);
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', 'preempt']);
  const boot = sb.make(['bootstrap', 'host=h1'], { timeoutMs: 300_000 });
  if (boot.code !== 0) throw new Error(`bootstrap failed:\n${boot.stdout}${boot.stderr}`);
}

/** Starting the experiment by hand: what any restart costs at least. */
export function bareStart(dir: string): number {
  const t0 = now();
  spawnSync('sh', [path.join(dir, 'competitions/preempt/run.sh')], { env: { ...process.env, SWITCHYARD_ATTEMPT: '2', SWITCHYARD_RUN_ID: 'bare' } });
  return now() - t0;
}
