// Which run a verb acts on: `run=<id>`, or the newest run of `experiment=` that fits (a smoke
// run of make train-1 only where the verb asks for one: it never stands in for the full run).
import type { Project } from '../project.js';
import { UserError } from '../ui/errors.js';
import { parseExperimentRef } from '../spec/experiment.js';
import { runState, type RunRecord } from './run-record.js';
import { loadRun } from './run-store.js';

/** Which runs of an experiment a verb can act on, and what to say where the newest is not one. */
export interface Wanted {
  fits: (run: RunRecord) => boolean;
  /** what a fitting run is called: `finished run`, `sharded search` */
  name: string;
  /** where the experiment's newest run does not fit: what it is, and what to do */
  otherwise: (newest: RunRecord) => string;
  /** a smoke run of make train-1 (else a full run) */
  smoke?: boolean;
}

export const FINISHED: Wanted = {
  fits: (r) => runState(r) === 'succeeded',
  name: 'finished run',
  otherwise: (r) => `its newest run, ${r.run_id}, is ${runState(r)} (make status run=${r.run_id} says where it stands)`,
};

/** A search over shards: what merge, retry and fleet-pull act on. A new train of a spec without shards would not make one. */
export const SHARDED: Wanted = {
  fits: (r) => r.sharded,
  name: 'sharded search',
  otherwise: (r) => `its newest run, ${r.run_id}, is a run of one unit: a search over shards is declared with \`shards:\` in the experiment's spec (docs/experiment-contract.md#shards)`,
};

/** Any run at all. */
export const ANY: Wanted = { fits: () => true, name: 'run', otherwise: () => '' };

export async function findRun(project: Project, vars: { run?: string; experiment?: string }, verb: string, wanted: Wanted = FINISHED): Promise<RunRecord> {
  if (vars.run) {
    const run = await loadRun(project, vars.run);
    // Both given and not of one run: acting on either would be a guess (a stop, a submit).
    if (vars.experiment && experimentRef(vars.experiment) !== run.experiment) {
      throw new UserError(`make ${verb}: run ${run.run_id} is a run of ${run.experiment}, not of ${experimentRef(vars.experiment)}; give run= or experiment=, or both of one run`);
    }
    return run;
  }
  if (!vars.experiment) throw new UserError(`make ${verb}: give run=<id> or experiment=<slug>[/<name>]`);
  const ref = experimentRef(vars.experiment);
  const smoke = wanted.smoke ?? false;
  const runs = project.db.list(ref).filter((r) => (r.smoke === true) === smoke);
  const run = runs.find(wanted.fits);
  if (run) return run;
  const fix = runs[0] ? wanted.otherwise(runs[0]) : `run make ${smoke ? 'train-1' : 'train'} experiment=${ref}`;
  throw new UserError(`make ${verb}: experiment ${ref} has no ${wanted.name} yet; ${fix}`);
}

/** An experiment as runs record it: `<slug>`, or `<slug>/<name>` for a named variant. */
function experimentRef(given: string): string {
  const { slug, name } = parseExperimentRef(given);
  return name === 'default' ? slug : `${slug}/${name}`;
}
