// The gcp-batch backend's side that needs no API: which entry a run goes through, and what it
// offers (GPUs from the entry's accelerators, spot from its provisioning), checked before a run opens.
import { describe, expect, it } from 'vitest';
import { checkResources } from '../../scripts/lib/backends/index.js';
import { GcpBatchBackend } from '../../scripts/lib/backends/gcp-batch.js';
import { entryNamed } from '../../scripts/lib/config/entry-named.js';
import { ConfigSchema } from '../../scripts/lib/config/config-schema.js';
import { ExperimentSchema } from '../../scripts/lib/spec/experiment-schema.js';
import type { Store } from '../../scripts/lib/store/store.js';
import { UserError } from '../../scripts/lib/ui/errors.js';

const secrets = { AWS_ACCESS_KEY_ID: 'projects/my-project/secrets/id/versions/1', AWS_SECRET_ACCESS_KEY: 'projects/my-project/secrets/key/versions/1' };
const entry = (more: object = {}) => ({ project: 'my-project', region: 'us-central1', machine_type: 'g2-standard-8', secrets, ...more });
const config = (batch: Record<string, object>) => ConfigSchema.parse({ defaults: { store: 's3://bucket/team' }, batch });
const open = (c: ReturnType<typeof config>, name: string) =>
  new GcpBatchBackend({ entry: name, config: c, projectRoot: '/p', stateDir: '/p/.switchyard', store: {} as Store, runnerBundle: '/p/r.mjs', openClient: () => Promise.reject(new Error('no API here')) });
const spec = (resources: object) => ExperimentSchema.parse({ train: { command: 'true' }, resources });

describe('gcp-batch backend', () => {
  it('takes the entry named, or the only one; refuses in one line otherwise', () => {
    expect(entryNamed(config({ l4: entry() }), 'batch', undefined)).toBe('l4');
    expect(entryNamed(config({ l4: entry(), cpu: entry() }), 'batch', 'cpu')).toBe('cpu');
    expect(() => entryNamed(config({ l4: entry(), cpu: entry() }), 'batch', undefined)).toThrow('batch: required with backend=gcp-batch when several entries are configured, e.g. batch=l4 (known: l4, cpu)');
    expect(() => entryNamed(config({ l4: entry() }), 'batch', 'a100')).toThrow('batch: unknown entry "a100" (known: l4); add it under batch in cluster_fleet_config.ts');
    expect(() => entryNamed(config({}), 'batch', undefined)).toThrow(/^batch: no Batch entries configured; add one under batch in cluster_fleet_config\.ts/);
  });

  it('offers the entry GPUs, spot and shards; one slot, all units at once or parallelism', () => {
    const c = config({ l4: entry({ accelerators: [{ type: 'nvidia-l4', count: 2 }] }), cpu: entry({ machine_type: 'e2-standard-2', provisioning: 'standard', parallelism: 4 }) });
    const l4 = open(c, 'l4');
    expect(l4).toMatchObject({ kind: 'scheduler', workersReachStore: true, capabilities: { gpus: 2, spot: true, shards: true } });
    expect(l4.slots()).toEqual([{ name: 'l4', capacity: Number.MAX_SAFE_INTEGER }]);
    const cpu = open(c, 'cpu');
    expect(cpu.capabilities).toEqual({ gpus: 0, spot: false, shards: true });
    expect(cpu.slots()).toEqual([{ name: 'cpu', capacity: 4 }]);
    expect(() => checkResources('e.yaml', spec({ gpus: 1, spot: true }), l4, c)).not.toThrow();
    expect(() => checkResources('e.yaml', spec({ gpus: 1 }), cpu, c)).toThrow('e.yaml: resources.gpus: 1 asked, backend gcp-batch has 0; run it with backend=gcp-batch batch=l4');
  });

  it('refuses more tasks at once than the run has, before a run opens, in one line', () => {
    const c = config({ cpu: entry({ parallelism: 4 }) });
    const sharded = (count: number) => ExperimentSchema.parse({ train: { command: 'true' }, shards: { count } });
    expect(() => checkResources('competitions/knn/experiments/batch.yaml', sharded(4), open(c, 'cpu'), c)).not.toThrow();
    expect(() => checkResources('competitions/knn/experiments/batch.yaml', sharded(3), open(c, 'cpu'), c)).toThrow(
      new UserError('cluster_fleet_config.ts: batch.cpu.parallelism: 4 tasks at once, but competitions/knn/experiments/batch.yaml runs 3 (shards.count); lower parallelism to 3 or leave it out (all tasks at once)'),
    );
  });

  it('without credentials, fails its preparation in one line before anything is packed or uploaded', async () => {
    let refuse: (err: Error) => void = () => {};
    const c = config({ cpu: entry() });
    const touched: string[] = [];
    const store = new Proxy({} as Store, { get: (_, key) => (touched.push(String(key)), () => Promise.reject(new Error('the store was used'))) });
    const backend = new GcpBatchBackend({ entry: 'cpu', config: c, projectRoot: '/p', stateDir: '/p/.switchyard', store, runnerBundle: '/p/r.mjs', openClient: () => new Promise((_, reject) => (refuse = reject)) });
    const packing = () => (backend as unknown as { artifacts: unknown }).artifacts;
    const prepared = backend.prepare(['cpu']);
    expect(packing()).toBeNull(); // the credentials come first
    const noCredentials = new UserError('no Google Cloud credentials found; run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS=<service-account key file> in .env');
    refuse(noCredentials);
    expect((await prepared).get('cpu')).toBe(noCredentials);
    expect(packing()).toBeNull();
    expect(touched).toEqual([]);
  });

  it('parses its handles: a handle of another shape is refused', () => {
    const b = open(config({ l4: entry() }), 'l4');
    expect(b.slotOf({ backend: 'gcp-batch', entry: 'l4', job: 'projects/my-project/locations/us-central1/jobs/sy-x', task: 3, unit: 'r/shards/3', attempt: 1 })).toBe('l4');
    expect(() => b.slotOf({ backend: 'gcp-batch', host: 'h1' })).toThrow();
  });
});
