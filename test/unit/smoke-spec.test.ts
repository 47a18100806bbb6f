// The `smoke:` block of an experiment spec: what make train-1 changes, applied over the spec.
import { describe, expect, it } from 'vitest';
import { applySmoke } from '../../scripts/lib/spec/experiment.js';
import { ExperimentSchema } from '../../scripts/lib/spec/experiment-schema.js';

const base = { train: { command: 'python3 train.py', env: { EPOCHS: '8000', LR: '0.1' } }, shards: { count: 6 } };

describe('smoke:', () => {
  it('sets train env over the spec, and replaces the command, checkpoint interval, shard count and time it names', () => {
    const spec = ExperimentSchema.parse({
      ...base,
      smoke: { train: { env: { EPOCHS: '1' }, checkpoint_every_sec: 0.5, command: 'python3 train.py --quick' }, shards: { count: 2 }, resources: { time: '5m' } },
    });
    const smoke = applySmoke(spec);
    expect(smoke.train).toMatchObject({ command: 'python3 train.py --quick', checkpoint_every_sec: 0.5, env: { EPOCHS: '1', LR: '0.1' } });
    expect(smoke.shards.count).toBe(2);
    expect(smoke.resources.time).toBe('5m');
    expect(spec.train.env.EPOCHS).toBe('8000'); // the full spec is untouched
  });

  it('leaves what it does not name as the spec says', () => {
    const spec = ExperimentSchema.parse({ ...base, smoke: { train: { env: { EPOCHS: '1' } } } });
    const smoke = applySmoke(spec);
    expect(smoke.train.command).toBe('python3 train.py');
    expect(smoke.train.checkpoint_every_sec).toBe(60);
    expect(smoke.shards.count).toBe(6);
  });

  it('refuses an empty block and unknown keys, naming the fix', () => {
    const empty = ExperimentSchema.safeParse({ ...base, smoke: {} });
    expect(empty.success).toBe(false);
    expect(empty.error!.issues[0]!.message).toMatch(/sets nothing; give what a short run changes/);
    expect(ExperimentSchema.safeParse({ ...base, smoke: { seed: 1 } }).success).toBe(false);
  });
});
