// Which run a verb acts on: `run=<id>`, or the newest run of `experiment=` that fits (a smoke
// run of make train-1 only where the verb asks for one: it never stands in for the full run).
import type { Project } from '../project.js';
import { UserError } from '../ui/errors.js';
import { parseExperimentRef } from '../spec/experiment.js';
import { runState, type RunRecord } from './run-record.js';
import { loadRun } from './run-store.js';

export async function findRun(
  project: Project,
  vars: { run?: string; experiment?: string },
  verb: string,
  fits: (run: RunRecord) => boolean = (r) => runState(r) === 'succeeded',
  wanted = 'finished run',
  smoke = false,
): Promise<RunRecord> {
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
  const run = project.db.list(ref).find((r) => (r.smoke === true) === smoke && fits(r));
  if (!run) throw new UserError(`make ${verb}: experiment ${ref} has no ${wanted} yet; run make ${smoke ? 'train-1' : 'train'} experiment=${ref}`);
  return run;
}

/** An experiment as runs record it: `<slug>`, or `<slug>/<name>` for a named variant. */
function experimentRef(given: string): string {
  const { slug, name } = parseExperimentRef(given);
  return name === 'default' ? slug : `${slug}/${name}`;
}
