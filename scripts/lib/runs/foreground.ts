// Signal handling for a verb that runs an attempt in the foreground: the first Ctrl-C asks
// the experiment to checkpoint and stop, a second one kills it; SIGTERM/SIGHUP mean this
// machine is going away, so the attempt checkpoints and ends as preempted.
import type { Backend } from '../backends/backend.js';
import { LocalBackend } from '../backends/local.js';
import type { StatusLine } from '../ui/status-line.js';
import type { Handle } from './run-record.js';

export class ForegroundSignals {
  private interrupts = 0;
  stopping = false;
  private handle: Handle | null = null;

  constructor(
    private readonly backend: Backend,
    private readonly ui: StatusLine,
  ) {
    process.on('SIGINT', () => this.interrupt());
    process.on('SIGTERM', () => this.terminate('SIGTERM'));
    process.on('SIGHUP', () => this.terminate('SIGHUP'));
  }

  attach(handle: Handle): void {
    this.handle = handle;
  }

  private interrupt(): void {
    this.stopping = true;
    this.interrupts++;
    if (!this.handle) return;
    if (this.interrupts === 1) {
      this.ui.say('stopping: the experiment is checkpointing (Ctrl-C again to kill it now)');
      void this.backend.cancel(this.handle);
    } else {
      this.ui.say('killing the experiment');
      void this.backend.cancel(this.handle, { force: true });
    }
  }

  private terminate(signal: string): void {
    this.stopping = true;
    this.ui.say(`${signal}: checkpointing and stopping; make train resumes the run`);
    if (this.handle && this.backend instanceof LocalBackend) this.backend.preempt(this.handle);
  }
}
