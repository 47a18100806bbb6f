// make fleet-retry run=<id> shard=<i>[,<j>...] [host=<name>]: runs those shards again (from their
// last committed checkpoint) on another host of the fleet, or on host=, follows them, and merges
// once every shard has succeeded.
import { z } from 'zod';
import { openProject } from './lib/project.js';
import { openFleetRun, searchOnFleet } from './lib/runs/fleet-search.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain, UserError } from './lib/ui/errors.js';

await runMain(async () => {
  const vars = readVars('fleet-retry', {
    run: z.string().optional(),
    experiment: z.string().optional(),
    shard: z.string().regex(/^\d+(,\d+)*$/, 'shard numbers, e.g. shard=3 or shard=1,4'),
    host: z.string().optional(),
  });
  const project = await openProject();
  const { run, fleet } = await openFleetRun(project, vars, 'fleet-retry');
  const only = [...new Set(vars.shard.split(',').map(Number))];
  const count = run.shards!.length;
  const bad = only.find((i) => i >= count);
  if (bad !== undefined) throw new UserError(`shard: ${bad} is not a shard of run ${run.run_id} (it has shards 0-${count - 1})`);
  if (vars.host && !fleet.hosts.includes(vars.host)) {
    throw new UserError(`host: ${vars.host} is not in fleet ${fleet.fleet} (its hosts: ${fleet.hosts.join(', ')})`);
  }
  const busy = only.filter((i) => run.shards![i]!.attempts.at(-1)?.state === 'running');
  if (busy.length) throw new UserError(`shard ${busy.join(',')} of run ${run.run_id} is still running; make fleet-stop run=${run.run_id} first, or wait`);
  // Another host than the one it last ran on, unless host= says where.
  const host = vars.host ?? otherHost(fleet.hosts, only.map((i) => run.shards![i]!.attempts.at(-1)?.handle?.host));
  return searchOnFleet(project, run, fleet, { only, host });
});

function otherHost(hosts: readonly string[], last: unknown[]): string | undefined {
  return hosts.find((h) => !last.includes(h)) ?? hosts[0];
}
