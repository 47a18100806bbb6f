// make predict: the spec's predict command against the run's latest committed checkpoint, on
// this machine; its output file is saved with the run.
import { LocalBackend } from '../backends/local.js';
import type { PollResult } from '../backends/backend.js';
import type { Project } from '../project.js';
import { TERMINAL, type RunRecord } from '../runs/run-record.js';
import { attemptSpec } from '../runs/unit-spec.js';
import { UserError } from '../ui/errors.js';

export async function predict(project: Project, run: RunRecord, opts: { echo?: (stream: 'stdout' | 'stderr', data: Buffer) => void; onPoll?: (p: PollResult) => void } = {}): Promise<PollResult> {
  if (!run.command.predict || !run.spec.predict?.output) {
    throw new UserError(`experiment ${run.experiment}: predict: not set in its spec; add predict: { command: python3 predict.py, output: submission.csv }`);
  }
  if (run.sharded) throw new UserError(`predict: run ${run.run_id} is a sharded search; its result is the merged file (make pull run=${run.run_id})`);
  const backend = new LocalBackend({ root: project.root, store: project.store, workDir: project.workDir, echo: opts.echo });
  const [handle] = await backend.submitMany([{ spec: attemptSpec(project, run, 0, 'predict'), slot: 'local' }]);
  if (handle instanceof Error) throw handle;
  const events: PollResult['events'] = [];
  for (;;) {
    const [poll] = await backend.pollMany([{ handle: handle!, eventsFrom: events.length }]);
    events.push(...poll!.events);
    if (TERMINAL.has(poll!.state)) {
      await backend.pull(handle!).catch(() => {}); // its copies the store holds leave the work folder
      return { ...poll!, events };
    }
    opts.onPoll?.(poll!);
    await backend.waitForChange(250);
  }
}
