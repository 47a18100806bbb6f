// Signal handling for a verb that runs an attempt in the foreground: the first Ctrl-C asks
// the experiment to checkpoint and stop, a second one kills it; SIGTERM/SIGHUP mean this
// machine is going away, so the attempt checkpoints and ends as preempted.
import type { Backend } from '../backends/backend.js';
import { openBackend } from '../backends/index.js';
import { LocalBackend } from '../backends/local.js';
import type { BackendName } from '../config/define-config.js';
import type { Project } from '../project.js';
import type { StatusLine } from '../ui/status-line.js';
import { driveRun } from './drive-run.js';
import { lastStep, type AttemptState, type Handle, type RunRecord } from './run-record.js';

/** A backend whose attempts' output scrolls above the live status line. */
export function foregroundBackend(name: BackendName, project: Project, ui: StatusLine, where: { host?: string; fleet?: string } = {}): Promise<Backend> {
  return openBackend(name, project, {
    echo: (stream, data) => ui.write(stream === 'stdout' ? process.stdout : process.stderr, data),
    ...where,
  });
}

/** Drives a run's attempts to an end in the foreground, with Ctrl-C and SIGTERM handled. */
export function runInForeground(project: Project, run: RunRecord, backend: Backend, ui: StatusLine, host?: string): Promise<AttemptState> {
  const signals = new ForegroundSignals(ui, run);
  return driveRun(project, run, {
    backend,
    maxAttempts: run.attempts.length + project.config.defaults.max_attempts,
    ui,
    stopping: () => signals.stopping,
    onSubmitted: (a, b) => signals.attach(a.handle!, b),
    nextBackend: async (current) => {
      const name = run.backends[run.backends.indexOf(current.name) + 1];
      return name ? foregroundBackend(name, project, ui, { host }) : null;
    },
  });
}

class ForegroundSignals {
  private interrupts = 0;
  private terminated = false;
  stopping = false;
  private handle: Handle | null = null;
  private backend: Backend | null = null;

  constructor(
    private readonly ui: StatusLine,
    private readonly run: RunRecord,
  ) {
    process.on('SIGINT', () => this.interrupt());
    process.on('SIGTERM', () => this.terminate('SIGTERM'));
    process.on('SIGHUP', () => this.terminate('SIGHUP'));
  }

  /** Signals that arrived before the attempt started are acted on as soon as it has. */
  attach(handle: Handle, backend: Backend): void {
    this.handle = handle;
    this.backend = backend;
    if (this.terminated) this.preempt();
    else if (this.interrupts > 0) void backend.cancel(handle, { force: this.interrupts > 1 });
  }

  private preempt(): void {
    if (this.handle && this.backend instanceof LocalBackend) this.backend.preempt(this.handle);
  }

  private interrupt(): void {
    this.stopping = true;
    this.interrupts++;
    if (!this.handle || !this.backend) return;
    if (this.interrupts === 1) {
      this.ui.say(`stopping: ${this.outlook()} (Ctrl-C again to kill it now)`);
      void this.backend.cancel(this.handle);
    } else {
      this.ui.say('killing the experiment');
      void this.backend.cancel(this.handle, { force: true });
    }
  }

  /** What stopping now means, as far as this shell has seen: never "checkpointing" for an experiment that has not checkpointed. */
  private outlook(): string {
    const step = lastStep(this.run);
    const grace = `${this.run.spec.train.grace_sec}s`;
    return step === null
      ? `the experiment has ${grace} to exit; it has not committed a checkpoint, so make train starts it over from the beginning`
      : `the experiment has ${grace} to checkpoint and exit; make train resumes it from its newest checkpoint (step ${step} so far)`;
  }

  private terminate(signal: string): void {
    this.stopping = true;
    this.terminated = true;
    this.ui.say(`${signal}: stopping: ${this.outlook()}`);
    this.preempt();
  }
}
