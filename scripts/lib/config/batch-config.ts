// The `batch:` entries of cluster_fleet_config.ts: where and how a run's units become the tasks
// of a Google Cloud Batch job. Validated here once, with the rest of the config, so every
// mistake is one line before any API call; scripts/lib/batch/ renders the job from the result.
import { z } from 'zod';
import { DURATION, ENV_NAME } from '../spec/formats.js';
import { BATCH_REGIONS, regionFix } from './batch-regions.js';
import { STORE_CREDENTIALS } from './batch-store.js';

/** A Secret Manager secret version; a task gets its value in its environment, the job never holds it. */
const SECRET_VERSION = /^projects\/[A-Za-z0-9-]+\/secrets\/[A-Za-z0-9_-]+\/versions\/(latest|\d+)$/;
const SECRET_EXAMPLE = '"projects/my-project/secrets/hf-token/versions/latest"';

/** `<image>@sha256:<64 hex>`, a tag before the digest allowed (the digest decides). */
const PINNED_IMAGE = /^[a-z0-9][a-z0-9._\-/:]*@sha256:[0-9a-f]{64}$/;

const Accelerator = z.strictObject({
  type: z.string().regex(/^[a-z][a-z0-9-]*$/, 'a GPU type like "nvidia-l4"').meta({ example: '"nvidia-l4"' }),
  count: z.number().int().min(1).max(16).default(1),
});

export const BatchSchema = z
  .strictObject({
    project: z
      .string()
      .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'a Google Cloud project ID')
      .meta({ description: 'The Google Cloud project the jobs run in.', example: '"my-project"' }),
    region: z
      .string()
      .superRefine((r, ctx) => {
        if (!BATCH_REGIONS.includes(r)) {
          ctx.addIssue({ code: 'custom', message: `${JSON.stringify(r)} is not a Batch region; ${regionFix(r)}` });
        }
      })
      .meta({ description: "The job's location: where Batch keeps it and, by default, creates its VMs.", example: '"us-central1"' }),
    allowed_locations: z
      .array(z.string().regex(/^(regions\/[a-z0-9-]+|zones\/[a-z0-9-]+-[a-z])$/, 'regions/<region> or zones/<zone>'))
      .min(1)
      .optional()
      .meta({ description: 'Where its VMs may be created, inside the region (default: the whole region).', example: '["zones/us-central1-a", "zones/us-central1-c"]' }),
    machine_type: z
      .string()
      .regex(/^[a-z][a-z0-9]*-[a-z0-9-]+$/, 'a Compute Engine machine type')
      .meta({ description: "Each task's VM (one task per VM).", example: '"n2-standard-4"' }),
    accelerators: z.array(Accelerator).default([]).meta({ description: "GPUs on each VM; Batch installs the drivers.", example: '[{ type: "nvidia-l4", count: 1 }]' }),
    provisioning: z.enum(['spot', 'standard']).default('spot').meta({ description: 'Spot VMs (cheaper, preemptible) or standard ones.', example: '"standard"' }),
    service_account: z
      .string()
      .regex(/^[^@\s]+@[^@\s]+\.[a-z]+$/, 'a service account email')
      .optional()
      .meta({ description: "The VMs' service account (default: the project's Compute Engine one); it needs to read the job's secrets.", example: '"switchyard-batch@my-project.iam.gserviceaccount.com"' }),
    network: z
      .string()
      .regex(/^(projects\/[a-z0-9-]+\/)?global\/networks\/[a-z0-9-]+$/, 'projects/<project>/global/networks/<name>')
      .optional()
      .meta({ example: '"projects/my-project/global/networks/default"' }),
    subnetwork: z
      .string()
      .regex(/^(projects\/[a-z0-9-]+\/)?regions\/[a-z0-9-]+\/subnetworks\/[a-z0-9-]+$/, 'projects/<project>/regions/<region>/subnetworks/<name>')
      .optional()
      .meta({ example: '"projects/my-project/regions/us-central1/subnetworks/default"' }),
    /** tasks still reach the store through Cloud NAT or Private Google Access */
    no_external_ip: z.boolean().default(false),
    max_run_duration: z
      .string()
      .regex(DURATION, 'a duration like "90m", "12h" or "2d"')
      .default('24h')
      .meta({ description: 'Past it Batch stops a task, which ends `timeout` (resumed from its last checkpoint).', example: '"12h"' }),
    retries: z
      .number()
      .int()
      .min(0)
      .max(10)
      .default(3)
      .meta({
        description: 'How often Batch itself reruns a task whose VM failed or was preempted, as the same attempt resumed from its last checkpoint; past that the attempt ends preempted or lost and the next one is a new job. 0: every preemption is a new attempt.',
        example: '3',
      }),
    parallelism: z.number().int().min(1).optional().meta({ description: "Tasks of one job running at once (default: all of them).", example: '4' }),
    boot_disk_gb: z.number().int().min(30).max(65536).optional().meta({ description: "Each VM's boot disk (Batch's default: 30).", example: '100' }),
    image: z
      .string()
      .superRefine((image, ctx) => {
        if (!PINNED_IMAGE.test(image)) {
          const base = image.replace(/@.*$/, '').replace(/:[^/:]*$/, '');
          ctx.addIssue({
            code: 'custom',
            message: `${JSON.stringify(image)} is not pinned by digest: a tag can move, and the image is part of the env pin; use "${base}@sha256:<64 hex>" (docker buildx imagetools inspect ${image} prints it)`,
          });
        }
      })
      .optional()
      .meta({ description: "The container tasks run in, pinned by digest (default: a script on Batch's own VM image).", example: '"us-docker.pkg.dev/my-project/train/torch@sha256:<64 hex>"' }),
    store: z
      .string()
      .regex(/^s3:\/\/[A-Za-z0-9][A-Za-z0-9._-]*(\/.*)?$/, 'an s3://bucket/prefix URL')
      .optional()
      .meta({ description: 'The store tasks write to (default: defaults.store, which must then be s3://); defaults.s3 says how to reach it.', example: '"s3://my-bucket/switchyard"' }),
    secrets: z
      .record(
        z.string().regex(ENV_NAME, 'an environment variable name'),
        z.string().superRefine((v, ctx) => {
          // Never echo the value: it may be the secret itself.
          if (!SECRET_VERSION.test(v)) ctx.addIssue({ code: 'custom', message: `not a Secret Manager secret version (a job never holds a secret's value); store the value in Secret Manager and name its version, e.g. ${SECRET_EXAMPLE}` });
        }),
      )
      .meta({ description: "Environment variable → the Secret Manager version holding it: the store's credentials and the secrets experiments declare.", example: '{ AWS_ACCESS_KEY_ID: "projects/my-project/secrets/store-key-id/versions/latest" }' }),
  })
  .superRefine((b, ctx) => {
    for (const [i, loc] of (b.allowed_locations ?? []).entries()) {
      const region = loc.startsWith('zones/') ? loc.slice('zones/'.length, -2) : loc.slice('regions/'.length);
      if (region !== b.region) ctx.addIssue({ code: 'custom', path: ['allowed_locations', i], message: `${loc} is outside the job's region ${b.region}; name zones/${b.region}-<a|b|c|f> or regions/${b.region}` });
    }
    for (const key of STORE_CREDENTIALS) {
      if (!(key in (b.secrets ?? {}))) ctx.addIssue({ code: 'custom', path: ['secrets'], message: `${key} is missing: tasks reach the store with it; add ${key}: "projects/${b.project}/secrets/<name>/versions/latest"` });
    }
  });

export type BatchEntry = z.infer<typeof BatchSchema>;
