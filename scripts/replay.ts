// make replay run=<id> [backend=<name>] [fleet=<name>]: runs an experiment again with a recorded run's pins.
// Refuses, naming each pin, when the record no longer matches the pins its ledger entry and
// digest vouch for, or when the code, data or env here no longer match the record.
import { z } from 'zod';
import { runLedgerState } from './lib/audit/ledger-state.js';
import { recordProblems } from './lib/audit/record-check.js';
import { BACKENDS } from './lib/config/load-config.js';
import { comparePins } from './lib/pins/digest.js';
import { openProject } from './lib/project.js';
import { runKeys } from './lib/runs/run-record.js';
import { exitCodeFor } from './lib/runs/describe.js';
import { foregroundBackend, runInForeground } from './lib/runs/foreground.js';
import { openRun } from './lib/runs/open-run.js';
import { pinExperiment } from './lib/runs/pin-experiment.js';
import { loadRun } from './lib/runs/run-store.js';
import { requireSecrets } from './lib/secrets/dotenv.js';
import { loadExperiment } from './lib/spec/experiment.js';
import { readVars } from './lib/spec/make-vars.js';
import type { FleetBackend } from './lib/backends/fleet.js';
import { searchOnFleet } from './lib/runs/fleet-search.js';
import { atExit, runMain, UserError } from './lib/ui/errors.js';
import { StatusLine } from './lib/ui/status-line.js';

await runMain(async () => {
  const vars = readVars('replay', { run: z.string(), backend: z.enum(BACKENDS).optional(), fleet: z.string().optional() });
  const project = await openProject();
  const recorded = await loadRun(project, vars.run);
  // The record must be the one the ledger vouches for: an edited pin would replay other pins.
  const tampered = recordProblems(recorded, (await runLedgerState(project.ledgerPath, recorded.run_id)).runs.get(recorded.run_id));
  if (tampered.length) throw new UserError(`cannot replay ${recorded.run_id}: its record was changed after it was created: ${tampered.join('; ')} (make verify checks every run)`);
  const exp = await loadExperiment(project.root, recorded.experiment);
  requireSecrets(project.root, exp.file, exp.spec.secrets);
  const pinned = await pinExperiment(project.root, project.stateDir, exp, recorded.pins.seed);
  const diffs = comparePins(recorded.pins, pinned.pins);
  if (diffs.length) {
    const fix = recorded.pins.code.dirty_sha256
      ? `git checkout ${recorded.pins.code.commit.slice(0, 12)} && git apply ${project.store.locate(runKeys.sourceDiff(recorded.run_id))}`
      : `git checkout ${recorded.pins.code.commit.slice(0, 12)}`;
    throw new UserError(`cannot replay ${recorded.run_id}: ${diffs.join('; ')} (for the code: ${fix})`);
  }
  const backendName = vars.backend ?? recorded.backends[0] ?? 'local';
  const ui = new StatusLine();
  const fleet = backendName === 'fleet' ? (vars.fleet ?? recorded.fleet) : undefined;
  const backend = await foregroundBackend(backendName, project, ui, { fleet });
  const { run, release } = await openRun(project, exp, pinned, { backends: [backendName], again: true, replayOf: recorded.run_id, ready: backend.ready?.bind(backend) });
  atExit(async () => release());
  ui.say(`replaying ${recorded.run_id} as ${run.run_id} on ${fleet ? `fleet ${fleet}` : backendName} (all five pins match)`);
  if (backend.name === 'fleet') return searchOnFleet(project, run, backend as FleetBackend);
  const state = await runInForeground(project, run, backend, ui);
  ui.say(`replay ${run.run_id} ${state}`);
  return exitCodeFor(state, run.attempts.at(-1)?.exit_code ?? null);
});
