// The experiment spec's schema: every field of experiment.yaml, its default, its meaning and an
// example. Building it costs a verb's start a few ms, so loadExperiment (experiment.ts) imports
// this module only when it has to validate: a spec unchanged since its last check by the same
// build is read from .switchyard/cache instead (validation-cache.ts).
import path from 'node:path';
import { z } from 'zod';
import { BACKENDS, CONFIG_FILE } from '../config/load-config.js';
import { DURATION, ENV_NAME } from './formats.js';
import { compileMetricsPattern } from './metrics-pattern.js';

// Every field carries its meaning and an example in its metadata: error messages quote the
// example as the fix, and docs/experiment-spec.md is generated from them (spec-doc.ts).
/** Text a process can be given: argv and environment strings end at a NUL byte, the one byte they cannot hold. */
const ProcessText = z.string().refine((s) => !s.includes('\0'), 'contains a NUL byte, which no command or environment variable can hold; remove it');
const Command = z.union([ProcessText.trim().min(1), z.array(ProcessText.min(1)).min(1)]);
/** A command field: a string runs with `bash -c`, a list runs as argv (see the reference page). */
const command = (description: string, example: string) => Command.meta({ expects: 'a string or a list of strings', description, example });
/** A file name: paths end at a NUL byte too, so one in a spec is refused here, not met by the filesystem calls. */
const PathText = z.string().refine((s) => !s.includes('\0'), 'contains a NUL byte, which no path can hold; remove it');
const isInside = (p: string) => !path.isAbsolute(p) && !p.split(/[\\/]/).includes('..');
const RelPath = PathText.min(1).refine(isInside, 'a path inside the run folder');
/** `$data` is the staged data view; anything else is relative to the competition folder. */
const Cwd = PathText.min(1)
  .refine((p) => isInside(p.replace(/^\$data(?=\/|$)/, '.')), 'a folder inside the competition folder, or $data (the staged data) or $data/<sub-folder>')
  .meta({
    expects: 'a folder',
    description: 'The working folder: relative to the competition folder, or `$data` (or `$data/<sub-folder>`) for the staged data view. Default: the competition folder.',
    example: '$data',
  });
const MetricsFrom = z
  .string()
  .min(1)
  .superRefine((p, ctx) => {
    try {
      compileMetricsPattern(p);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });
const CodePath = PathText.min(1)
  .refine(isInside, 'a path inside the repository, relative to its root')
  .refine((p) => p.replace(/^\.\/|\/+$/g, '') !== CONFIG_FILE, `${CONFIG_FILE} is the inventory: where a run executes is never part of its code pin`);

export const ExperimentSchema = z
  .strictObject({
    setup: z
      .union([Command, z.strictObject({ command: command('The setup program.', '"pip install -r requirements.txt"'), cwd: Cwd.optional() })])
      .optional()
      .meta({
        expects: 'a string, a list of strings, or { command, cwd }',
        description: 'Runs before the command in every attempt (and before predict), with the same environment; make it idempotent. A failure fails the attempt.',
        example: '"pip install -r requirements.txt"',
      }),
    train: z
      .strictObject({
        command: command('The training program.', '"python3 train.py"'),
        cwd: Cwd.optional(),
        checkpoint_every_sec: z.number().positive().default(60).meta({ description: 'How often to checkpoint, passed as `$SWITCHYARD_CKPT_EVERY_SEC`.', example: '2' }),
        grace_sec: z
          .number()
          .positive()
          .max(3600)
          .default(60)
          .meta({ description: 'Time between SIGTERM and SIGKILL for the experiment to save a checkpoint and exit.', example: '30' }),
        env: z
          .record(z.string().regex(ENV_NAME, 'an environment variable name'), ProcessText)
          .default({})
          .meta({ description: 'Environment variables set for setup, train and predict, as given (values are strings: quote numbers).', example: '{ EPOCHS: "8000" }' }),
        keep_checkpoints: z.number().int().min(1).default(3).meta({ description: 'How many committed steps are kept, locally and in the store.', example: '5' }),
        metrics_from: MetricsFrom.optional().meta({
          description:
            'A regular expression with named groups: each line of output (stdout or stderr) it matches becomes a metrics line of those groups (numbers where they read as numbers), for programs that print their progress and never write `$SWITCHYARD_METRICS`. `(?P<name>...)` works too.',
          example: "'step (?<step>\\d+) / \\d+ \\| loss (?<loss>[\\d.]+)'",
        }),
      })
      .meta({ description: 'How the experiment trains.', example: '{ command: python3 train.py }' }),
    predict: z
      .strictObject({
        command: command('Writes predictions from the latest committed checkpoint (restored into `$SWITCHYARD_CKPT_DIR`).', '"python3 predict.py"'),
        output: RelPath.meta({ description: 'The file the command writes in `$SWITCHYARD_OUTPUT_DIR`.', example: '"submission.csv"' }),
        cwd: Cwd.optional(),
      })
      .optional()
      .meta({ description: '`make predict`: predictions from a finished run.', example: '{ command: python3 predict.py, output: submission.csv }' }),
    submit: z
      .strictObject({
        file: RelPath.meta({ description: "The run's output file to submit.", example: '"submission.csv"' }),
        message: z.string().default('').meta({ description: 'The Kaggle submission message.', example: '"softmax baseline"' }),
      })
      .optional()
      .meta({ description: '`make submit`: what to upload.', example: '{ file: submission.csv }' }),
    data: z
      .strictObject({
        dir: PathText.min(1).meta({ description: 'The data folder, relative to the competition folder.', example: '"data"' }),
        include: z
          .array(z.string().min(1))
          .default(['**'])
          .meta({ description: 'Globs of the files to pin (POSIX paths relative to `dir`, dot files match); each must match a file.', example: '["*.csv", "images/**"]' }),
        exclude: z
          .array(z.string().min(1))
          .default([])
          .meta({ description: 'Globs left out of the pin; a matching folder is left out whole.', example: '["*.tmp", "cache"]' }),
      })
      .optional()
      .meta({
        description: 'The data pin. The experiment sees exactly the pinned files, read-only, in `$SWITCHYARD_DATA_DIR`.',
        example: '{ dir: data }',
      }),
    code: z
      .array(CodePath)
      .optional()
      .meta({
        description: `Folders or files outside the competition folder that the code reads, relative to the repository root: their uncommitted changes join the code pin. Never \`${CONFIG_FILE}\`.`,
        example: '[lib/, common/]',
      }),
    secrets: z
      .array(z.string().regex(ENV_NAME, 'an environment variable name'))
      .default([])
      .meta({ description: 'Names of `.env` keys the experiment needs (API tokens), set in its environment and pushed to hosts as a 0600 file; never logged.', example: '[KAGGLE_KEY]' }),
    seed: z.number().int().min(0).default(0).meta({ description: 'The pinned seed, `$SWITCHYARD_SEED`; `make train seed=N` overrides it.', example: '42' }),
    backends: z
      .array(z.enum(BACKENDS))
      .min(1)
      .optional()
      .meta({
        description: 'Where attempts run, in order: the first by default; after a preemption, a lost worker or a timeout, the next attempt goes to the first entry from the current one on that can take it (its resources fit, it answers now).',
        example: '[slurm, ssh, local]',
      }),
    retry_on_error: z
      .number()
      .int()
      .min(0)
      .max(100)
      .optional()
      .meta({ description: "How many times an attempt that failed (the program's own error, not a preemption) starts again by itself; none by default.", example: '2' }),
    resources: z
      .strictObject({
        cpus: z.number().int().min(1).default(1).meta({ description: 'CPU cores an attempt needs.', example: '4' }),
        gpus: z.number().int().min(0).default(0).meta({ description: 'GPUs an attempt needs.', example: '1' }),
        gpu_type: z.string().min(1).optional().meta({ description: 'The GPU model, where the backend can choose.', example: '"a100"' }),
        memory: z
          .string()
          .regex(/^\d+(\.\d+)?[KMGT]i?B?$/, 'a size like "4G" or "512M"')
          .optional()
          .meta({ description: 'Memory an attempt needs.', example: '"16G"' }),
        time: z
          .string()
          .regex(DURATION, 'a duration like "90m", "2h" or "1d"')
          .optional()
          .meta({ description: "Each attempt's time limit: past it the runner asks the experiment to checkpoint and stop, and the attempt ends `timeout` (resumed when it committed a checkpoint).", example: '"2h"' }),
        spot: z
          .boolean()
          .default(false)
          .meta({ description: 'Run on spot (preemptible) capacity; refused on backends that have none.', example: 'true' }),
      })
      .prefault({})
      .meta({ description: 'What an attempt needs from its backend.', example: '{ cpus: 4 }' }),
    shards: z
      .strictObject({
        count: z.number().int().min(1).default(1).meta({ description: 'How many shards a fleet search cuts the work into (one elsewhere).', example: '6' }),
        merge: z
          .enum(['concat', 'best-by-score', 'command'])
          .default('concat')
          .meta({ description: 'How the shard files are merged (see experiment-contract.md#shards).', example: 'best-by-score' }),
        score_field: z.string().min(1).optional().meta({ description: 'best-by-score: the numeric record field that ranks records of one key.', example: '"loo_accuracy"' }),
        higher_is_better: z.boolean().optional().meta({ description: 'best-by-score: whether higher scores win (default true).', example: 'false' }),
        merge_command: command(
          'merge: command: runs with the verified shard files as arguments and writes `$SWITCHYARD_MERGED_FILE`.',
          '"python3 merge.py"',
        ).optional(),
      })
      .prefault({})
      .superRefine((s, ctx) => {
        if (s.merge === 'best-by-score' && !s.score_field) {
          ctx.addIssue({ code: 'custom', path: ['score_field'], message: 'required with merge: best-by-score' });
        }
        if (s.merge === 'command' && !s.merge_command) {
          ctx.addIssue({ code: 'custom', path: ['merge_command'], message: 'required with merge: command' });
        }
      })
      .meta({ description: 'How a fleet search splits the work and merges the results.', example: '{ count: 6, merge: concat }' }),
    smoke: z
      .strictObject({
        train: z
          .strictObject({
            command: command('The training program of a smoke run.', '"python3 train.py --quick"').optional(),
            env: z
              .record(z.string().regex(ENV_NAME, 'an environment variable name'), ProcessText)
              .optional()
              .meta({ description: 'Environment variables set over `train.env`.', example: '{ EPOCHS: "1" }' }),
            checkpoint_every_sec: z.number().positive().optional().meta({ description: 'Replaces `train.checkpoint_every_sec`.', example: '0.5' }),
          })
          .optional()
          .meta({ description: 'Replaces parts of `train`.', example: '{ env: { EPOCHS: "1" } }' }),
        shards: z.strictObject({ count: z.number().int().min(1) }).optional().meta({ description: 'Replaces `shards.count`.', example: '{ count: 2 }' }),
        resources: z
          .strictObject({ time: z.string().regex(DURATION, 'a duration like "5m"') })
          .optional()
          .meta({ description: 'Replaces `resources.time`.', example: '{ time: "5m" }' }),
      })
      .refine((s) => Object.keys(s).length > 0, 'sets nothing; give what a short run changes, e.g. smoke: { train: { env: { EPOCHS: "1" } } }')
      .optional()
      .meta({
        description:
          '`make train-1`: what a short run of the experiment changes (one epoch, a few keys), to check a route end to end in seconds. A smoke run is a run of its own: the overrides are part of its config pin, so it never stands in for the full run, and `make predict-smoke` predicts from it.',
        example: '{ train: { env: { EPOCHS: "1" } } }',
      }),
  })
  .superRefine((s, ctx) => {
    // $data is the staged data view: there is none without a data pin.
    const cwds: [PropertyKey[], string | undefined][] = [
      [['train', 'cwd'], s.train.cwd],
      [['predict', 'cwd'], s.predict?.cwd],
      [['setup', 'cwd'], typeof s.setup === 'object' && !Array.isArray(s.setup) ? s.setup.cwd : undefined],
    ];
    for (const [where, cwd] of cwds) {
      if (cwd?.startsWith('$data') && !s.data) {
        ctx.addIssue({ code: 'custom', path: where, message: `${cwd} is the staged data, and there is no data: section; add data: { dir: data }` });
      }
    }
  });

export type ExperimentSpec = z.infer<typeof ExperimentSchema>;
export type CommandSpec = z.infer<typeof Command>;
