// What make replay runs on: the variables given, else the recorded run's backend and the place
// its newest attempt ran (ssh host, SLURM cluster, Batch entry) or the fleet it was launched on.
import { describe, expect, it } from 'vitest';
import { replayTarget, type RecordedPlace } from '../../scripts/lib/cli/replay-target.js';

const recorded = (backend: RecordedPlace['backends'][number], handle: Record<string, unknown>, fleet?: string): RecordedPlace => ({
  backends: [backend],
  fleet,
  units: [{ attempts: [{ handle: { backend, host: 'old' } }, { handle: { backend, ...handle } }] }],
});

describe('replayTarget', () => {
  it('defaults a SLURM cluster and a Batch entry to the last attempt, as an ssh host', () => {
    expect(replayTarget({}, recorded('slurm', { cluster: 'hpc', job_id: '7' }))).toEqual({ backend: 'slurm', cluster: 'hpc' });
    expect(replayTarget({}, recorded('gcp-batch', { entry: 'a100', job: 'j' }))).toEqual({ backend: 'gcp-batch', batch: 'a100' });
    expect(replayTarget({}, recorded('ssh', { host: 'gpu1' }))).toEqual({ backend: 'ssh', host: 'gpu1' });
    expect(replayTarget({}, recorded('fleet', { host: 'gpu2' }, 'lab'))).toEqual({ backend: 'fleet', fleet: 'lab' });
  });

  it('takes cluster= and batch= over the recorded place, and the backend given over the recorded one', () => {
    expect(replayTarget({ cluster: 'other' }, recorded('slurm', { cluster: 'hpc' }))).toEqual({ backend: 'slurm', cluster: 'other' });
    expect(replayTarget({ batch: 'l4' }, recorded('gcp-batch', { entry: 'a100' }))).toEqual({ backend: 'gcp-batch', batch: 'l4' });
    expect(replayTarget({ backend: 'slurm', cluster: 'hpc' }, recorded('ssh', { host: 'gpu1' }))).toEqual({ backend: 'slurm', cluster: 'hpc' });
    expect(replayTarget({ backend: 'local', cluster: 'hpc' }, recorded('slurm', { cluster: 'hpc' }))).toEqual({ backend: 'local' });
    expect(replayTarget({}, { backends: [], units: [] })).toEqual({ backend: 'local' });
  });

  it('takes a place given without backend= as its backend, never replaying silently where the run last ran', () => {
    expect(replayTarget({ host: 'vast' }, recorded('local', {}))).toEqual({ backend: 'ssh', host: 'vast' });
    expect(replayTarget({ cluster: 'hpc' }, recorded('ssh', { host: 'gpu1' }))).toEqual({ backend: 'slurm', cluster: 'hpc' });
    expect(replayTarget({ fleet: 'lab' }, recorded('local', {}))).toEqual({ backend: 'fleet', fleet: 'lab' });
    expect(replayTarget({ host: 'gpu2' }, recorded('ssh', { host: 'gpu1' }))).toEqual({ backend: 'ssh', host: 'gpu2' });
  });
});
