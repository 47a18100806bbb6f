// What Ctrl-C, SIGTERM and SIGHUP mean to a verb that drives a run. Before a run is chosen
// (while the experiment is pinned, its data hashed, a host prepared) nothing has started: the
// verb exits at once. From the moment a run is chosen until it opens, a signal waits, so the
// run is never left half-written, then acts as below. A run of one unit: the first Ctrl-C asks
// the experiment to checkpoint and stop, a second kills it; SIGTERM/SIGHUP mean this machine
// is going away, so an attempt running in this process checkpoints and ends preempted, while
// one running elsewhere goes on (a later make train re-attaches). A sharded run detaches at
// once: its units go on where they run, and a second signal exits.
import { constants } from 'node:os';
import type { LaunchEvent } from '../actions/launch.js';
import type { Backend } from '../backends/backend.js';
import { lastStep, type RunRecord } from '../runs/run-record.js';
import type { Supervisor } from '../runs/supervisor.js';

/** What stopping now means, as far as this shell has seen: never "checkpointing" for an experiment that has not checkpointed. */
function outlook(run: RunRecord): string {
  const step = lastStep(run);
  const grace = `${run.spec.train.grace_sec}s`;
  return step === null
    ? `the experiment has ${grace} to exit; it has not committed a checkpoint, so make train starts it over from the beginning`
    : `the experiment has ${grace} to checkpoint and exit; make train resumes it from its newest checkpoint (step ${step} so far)`;
}

interface SignalTarget {
  supervisor: Supervisor;
  run: RunRecord;
  backend: Backend;
}

export class ForegroundSignals {
  private target: SignalTarget | null = null;
  /** signals held while a chosen run opens; null until a run is chosen */
  private pending: NodeJS.Signals[] | null = null;
  private interrupts = 0;

  constructor(private readonly say: (line: string) => void, private readonly detachHint: (run: RunRecord) => string) {
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => this.on(s));
  }

  /** Follows the launch: once a run is chosen a signal waits for it to open; once open, held signals act. */
  follow(e: LaunchEvent): void {
    if (e.type === 'opening') this.pending ??= [];
    if (e.type !== 'opened') return;
    this.target = { supervisor: e.supervisor, run: e.run, backend: e.backend };
    for (const s of (this.pending ?? []).splice(0)) this.on(s);
  }

  private on(signal: NodeJS.Signals): void {
    const t = this.target;
    if (!t && !this.pending) {
      this.say(`${signal}: stopped before any run was opened; nothing was started`);
      process.exit(128 + constants.signals[signal as keyof typeof constants.signals]);
    }
    if (!t) return void this.pending!.push(signal);
    if (t.run.sharded) {
      if (t.supervisor.isDetached) process.exit(130);
      this.say(`${signal}: detaching; the shards keep running on their hosts`);
      this.say(`  ${this.detachHint(t.run)}`);
      t.supervisor.detach();
      return;
    }
    if (signal !== 'SIGINT') {
      if (t.backend.attemptsInProcess) {
        this.say(`${signal}: stopping: ${outlook(t.run)}`);
        t.supervisor.stop({ preempt: true });
      } else {
        this.say(`${signal}: detaching; the attempt goes on on ${t.backend.name}; make train re-attaches to it`);
        t.supervisor.detach();
      }
      return;
    }
    this.interrupts++;
    if (this.interrupts === 1) {
      this.say(`stopping: ${outlook(t.run)} (Ctrl-C again to kill it now)`);
      t.supervisor.stop();
    } else {
      this.say('killing the experiment');
      t.supervisor.stop({ force: true });
    }
  }
}
