// The doctor's rows: the runner's timeouts and table, and how each check reads what it found.
import { describe, expect, it } from 'vitest';
import { setupFinding } from '../../scripts/lib/doctor/batch.js';
import { envFileFinding } from '../../scripts/lib/doctor/env-file.js';
import { credentialsFinding } from '../../scripts/lib/doctor/kaggle.js';
import { broken, splitFix, type Check } from '../../scripts/lib/doctor/row.js';
import { renderRows, runChecks } from '../../scripts/lib/doctor/runner.js';
import { sbatchFinding } from '../../scripts/lib/doctor/slurm.js';

const check = (over: Partial<Check>): Check => ({ group: 'g', name: 'n', required: true, timeoutMs: 1000, run: async () => [], ...over });

describe('doctor runner', () => {
  it('a check past its limit is one ✗ row, and the others still report', async () => {
    const rows = await runChecks([
      check({ group: 'slow', name: 'probe', timeoutMs: 30, run: () => new Promise(() => {}) }),
      check({ group: 'fast', run: async () => [{ name: 'a', ok: true, detail: 'fine' }] }),
    ]);
    expect(rows).toMatchObject([
      { group: 'slow', name: 'probe', ok: false, detail: 'no answer within 30 ms', required: true },
      { group: 'fast', name: 'a', ok: true, detail: 'fine', fix: '' },
    ]);
    expect(rows[0]!.fix).toMatch(/make doctor/);
  });

  it('a check that throws is a ✗ row with the fix its message gives', async () => {
    const rows = await runChecks([check({ run: async () => { throw new Error('store s3://b: access denied; set AWS_ACCESS_KEY_ID in .env'); } })]);
    expect(rows).toMatchObject([{ ok: false, detail: 'store s3://b: access denied', fix: 'set AWS_ACCESS_KEY_ID in .env' }]);
  });

  it('marks ✗ only what is needed; an optional failure is ! and does not fail the doctor', async () => {
    const rows = await runChecks([
      check({ group: 'kaggle', name: 'cli', required: false, run: async () => [{ name: 'cli', ok: false, detail: 'not installed', fix: 'pip install kaggle' }] }),
      check({ group: 'host h2', run: async () => [{ name: 'reachable', ok: false, detail: 'refused', fix: 'start sshd' }, { name: 'tools', ok: 'skip', detail: 'not checked' }] }),
    ]);
    const lines = renderRows(rows).split('\n');
    expect(lines[0]).toMatch(/^\s+CHECK\s+RESULT\s+TIME\s+FIX$/);
    expect(lines[1]).toMatch(/^!\s+kaggle\s+cli\s+not installed\s+\d+ ms\s+pip install kaggle$/);
    expect(lines[2]).toMatch(/^✗\s+host h2\s+reachable\s+refused\s+\d+ ms\s+start sshd$/);
    expect(lines[3]).toMatch(/^-\s+host h2\s+tools\s+not checked\s+\d+ ms$/);
    expect(broken(rows).map((r) => r.name)).toEqual(['reachable']);
  });

  it('splits a one-line message at its first "; " into what happened and the fix', () => {
    expect(splitFix('a: b; c; d')).toEqual({ detail: 'a: b', fix: 'c; d' });
    expect(splitFix('no fix here')).toEqual({ detail: 'no fix here', fix: '' });
  });
});

describe('doctor findings', () => {
  it('sbatch: missing, controller silent, unknown partition, fine', () => {
    const local = { login: 'local', partition: 'gpu' };
    expect(sbatchFinding('hpc', local, { code: 127, stdout: '' })).toMatchObject({ ok: false, detail: 'not on the PATH of this machine', fix: expect.stringMatching(/apt-get install -y slurm-client/) });
    expect(sbatchFinding('hpc', { login: 'h1' }, { code: 3, stdout: '/usr/bin/sbatch\nsinfo: error: Unable to contact slurm controller (connect failure)\n' })).toMatchObject({
      ok: false,
      detail: '/usr/bin/sbatch found, but the controller does not answer: sinfo: error: Unable to contact slurm controller (connect failure)',
      fix: 'check slurmctld and SLURM_CONF on h1 (sinfo there says why)',
    });
    expect(sbatchFinding('hpc', local, { code: 0, stdout: '/usr/bin/sbatch\ndebug\n' })).toMatchObject({ ok: false, detail: 'partition gpu not found (the cluster has debug)', fix: expect.stringContaining('clusters.hpc.partition') });
    expect(sbatchFinding('hpc', local, { code: 0, stdout: '/usr/bin/sbatch\ndebug\ngpu\n' })).toMatchObject({ ok: true, detail: '/usr/bin/sbatch; partitions debug, gpu' });
  });

  it('sbatch: how many units a job array takes, as MaxArraySize says', () => {
    const local = { login: 'local', partition: 'gpu' };
    const said = (line: string) => sbatchFinding('hpc', local, { code: 0, stdout: `/usr/bin/sbatch\ngpu\n${line}\n` });
    expect(said('MaxArraySize            = 1001')).toMatchObject({ ok: true, detail: '/usr/bin/sbatch; partitions gpu; job arrays of at most 1001 units (MaxArraySize)' });
    expect(said('MaxArraySize = 0')).toMatchObject({ ok: true, detail: '/usr/bin/sbatch; partitions gpu; job arrays off (MaxArraySize): a job a unit' });
    expect(sbatchFinding('hpc', { login: 'local', partition: 'debug' }, { code: 0, stdout: '/usr/bin/sbatch\ngpu\nMaxArraySize = 8\n' })).toMatchObject({ ok: false, detail: 'partition debug not found (the cluster has gpu)' });
  });

  it('kaggle: where the credentials come from, or the fix, and whether a competition needs them', () => {
    expect(credentialsFinding(null, [])).toEqual({ name: 'credentials', ok: false, detail: 'none found; no competition names one', fix: expect.stringMatching(/^set KAGGLE_USERNAME and KAGGLE_KEY in \.env .*make kaggle-auth$/) });
    expect(credentialsFinding({ kind: 'basic', username: 'ada', key: 'k' }, ['titanic'])).toEqual({ name: 'credentials', ok: true, detail: 'user ada; competitions titanic submit there' });
    expect(credentialsFinding({ kind: 'token', token: 't' }, [])).toMatchObject({ ok: true, detail: 'KAGGLE_API_TOKEN; no competition names one' });
  });

  it('.env: absent, tracked, readable by others, a line that does not parse, private', () => {
    expect(envFileFinding(null, false).ok).toBe('skip');
    expect(envFileFinding(0o100600, true)).toMatchObject({ ok: false, fix: expect.stringMatching(/^git rm --cached \.env/) });
    expect(envFileFinding(0o100644, false)).toMatchObject({ ok: false, detail: 'mode 0644: others can read the secrets', fix: 'chmod 600 .env' });
    expect(envFileFinding(0o40755, false, '.env: a folder, not the secrets file; move it aside')).toEqual({ name: '.env', ok: false, detail: 'a folder, not the secrets file', fix: 'move it aside' });
    expect(envFileFinding(0o100600, false, '.env:3: not a KEY=value line; write it as KEY=value')).toEqual({ name: '.env', ok: false, detail: 'line 3: not a KEY=value line', fix: 'write it as KEY=value' });
    expect(envFileFinding(0o100600, false)).toMatchObject({ ok: true, detail: 'mode 0600' });
  });

  it("batch: gcp-setup's lines as rows", () => {
    expect(setupFinding({ ok: true, line: 'credentials: service-account key (sa@p.iam.gserviceaccount.com)' })).toEqual({ name: 'credentials', ok: true, detail: 'service-account key (sa@p.iam.gserviceaccount.com)' });
    expect(setupFinding({ ok: false, line: 'Batch API (batch.googleapis.com) not enabled in p; gcloud services enable batch.googleapis.com --project p' })).toEqual({
      name: 'Batch API',
      ok: false,
      detail: 'batch.googleapis.com not enabled in p',
      fix: 'gcloud services enable batch.googleapis.com --project p',
    });
  });
});
