// The `clusters:` entries of cluster_fleet_config.ts: SLURM clusters a run's units go to as
// sbatch jobs. Validated here once, with the rest of the config: a value sbatch would read as
// something else (a partition with a space, an account with a newline) is one line before any
// job is rendered, and the renderer (scripts/lib/slurm/render-sbatch.ts) checks them again.
import { z } from 'zod';
import { checkRemotePath } from '../quote.js';
import { slurmValueProblem } from './slurm-word.js';
import { DURATION } from '../spec/formats.js';

/** A value that goes into an `#SBATCH` line as one word. */
const SlurmWord = (what: string, example: string) =>
  z
    .string()
    .superRefine((v, ctx) => {
      const problem = slurmValueProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: `${problem}; ${what} is one word of letters, digits, "_", "-", "." (and ":" "," "=" "+" for resources)` });
    })
    .meta({ example });

export const ClusterSchema = z.strictObject({
  /** `local` (sbatch on this machine's PATH, the project on a filesystem the nodes see) or a host under `hosts` */
  login: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, '"local" or a host name under hosts').default('local'),
  /** the project's folder on the login node's shared filesystem, relative to the login directory (default: the host's root) */
  root: z
    .string()
    .superRefine((p, ctx) => {
      try {
        checkRemotePath(p);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    })
    .optional(),
  partition: SlurmWord('a partition', '"gpu"').optional(),
  account: SlurmWord('an account', '"lab-a"').optional(),
  qos: SlurmWord('a QOS', '"normal"').optional(),
  constraint: SlurmWord('a constraint', '"a100"').optional(),
  /** `--gres` as the cluster spells it (`gpu:a100:1`); default `gpu:<resources.gpus>` when the experiment asks for GPUs */
  gres: SlurmWord('a gres', '"gpu:a100:1"').optional(),
  /** GPUs one job can have: a spec asking for more is refused before anything is submitted */
  gpus: z.number().int().min(0).max(64).default(0),
  /** `--time` of every job (e.g. `4h`); default: the experiment's resources.time plus its grace, else the partition's */
  time: z.string().regex(DURATION, 'a duration like "90m" or "4h"').optional(),
  /** `--cpus-per-task` */
  cpus: z.number().int().min(1).max(1024).default(1),
  /** `--mem` per job, as sbatch spells it (`4G`, `500M`) */
  mem: z.string().regex(/^\d+[KMGT]?$/, 'a size like "4G" or "500M"').optional(),
  /** jobs may be preempted and requeued by SLURM (`--requeue`) */
  preemptible: z.boolean().default(false),
  /** requeues SLURM may do of one attempt; past them the job is cancelled and the unit's next attempt resumes it */
  max_requeues: z.number().int().min(0).max(100).default(3),
  /** units of a run in flight at once (an array's `%P`); default all */
  max_jobs: z.number().int().min(1).max(10_000).optional(),
  /** seconds the cluster may stay unanswered before its jobs count as lost (default 300) */
  lost_after_sec: z.number().positive().max(86_400).default(300),
});

export type ClusterEntry = z.infer<typeof ClusterSchema>;
