// Switchyard's Kaggle client (the requests the kaggle CLI makes through kagglesdk) against the
// local stand-in of Kaggle's competition API over HTTP: inspect, download, submit with the
// sample-submission check, and the scores poll, through the same actions the verbs call.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { listSubmissions as submissionRows, pollSubmissions } from '../../scripts/lib/actions/submissions.js';
import { submitRun } from '../../scripts/lib/actions/submit.js';
import type { Config } from '../../scripts/lib/config/load-config.js';
import { KaggleApi, KaggleError, openKaggle } from '../../scripts/lib/kaggle/api.js';
import { inspectCompetition } from '../../scripts/lib/kaggle/inspect.js';
import { listSubmissions } from '../../scripts/lib/kaggle/submission-record.js';
import type { Project } from '../../scripts/lib/project.js';
import { runKeys, type RunRecord } from '../../scripts/lib/runs/run-record.js';
import { StateDb } from '../../scripts/lib/runs/state-db.js';
import { openStore } from '../../scripts/lib/store/open-store.js';
import type { Store } from '../../scripts/lib/store/store.js';
import { UserError } from '../../scripts/lib/ui/errors.js';
import { hashScore, startKaggleStandin, type KaggleStandin } from '../helpers/kaggle-standin/index.js';

const SAMPLE = 'PassengerId,Survived\n' + Array.from({ length: 5 }, (_, i) => `${892 + i},0`).join('\n') + '\n';
const GOOD = 'PassengerId,Survived\n892,0\n893,1\n894,0\n895,0\n896,1\n';
const TRAIN = Buffer.from(Array.from({ length: 3000 }, (_, i) => `${i},${(i * 7919) % 2},"name, ${i}"`).join('\n'));

let standin: KaggleStandin;
let tmp: string;
let project: Project;
let api: KaggleApi;
let runs = 0;

beforeAll(async () => {
  standin = await startKaggleStandin({
    competitions: {
      titanic: {
        title: 'Titanic - Machine Learning from Disaster',
        metric: 'Categorization Accuracy',
        deadline: '2030-01-01T00:00:00Z',
        files: { 'gender_submission.csv': SAMPLE, 'test.csv': 'PassengerId\n892\n', 'train.csv': TRAIN },
      },
    },
    pageSize: 2, // three files: the listing takes two pages
  });
  api = new KaggleApi({ endpoint: standin.url, auth: { kind: 'basic', username: standin.username, key: standin.key } });
});
afterAll(() => standin?.close());

beforeEach(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'kaggle-test-'));
  mkdirSync(path.join(tmp, 'competitions/titanic'), { recursive: true });
  writeFileSync(path.join(tmp, 'competitions/titanic/challenge.json'), JSON.stringify({ title: 'Titanic', kaggle: 'titanic' }));
  const stateDir = path.join(tmp, '.switchyard');
  mkdirSync(stateDir);
  project = {
    root: tmp,
    stateDir,
    config: {} as Config,
    store: await openStore('file://.switchyard/store', tmp),
    db: new StateDb(path.join(stateDir, 'state.db')),
    ledgerPath: path.join(stateDir, 'ledger.jsonl'),
    workDir: (id) => path.join(stateDir, 'work', id),
  };
  vi.stubEnv('KAGGLE_API_ENDPOINT', standin.url);
  vi.stubEnv('KAGGLE_USERNAME', standin.username);
  vi.stubEnv('KAGGLE_KEY', standin.key);
  vi.stubEnv('KAGGLE_API_TOKEN', '');
  vi.stubEnv('KAGGLE_CONFIG_DIR', path.join(tmp, 'no-kaggle-dir'));
});
afterEach(() => {
  vi.unstubAllEnvs();
  project.db.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** A finished run of titanic whose output submission.csv is `csv`. */
async function finishedRun(csv: string): Promise<RunRecord> {
  const run = {
    run_id: `titanic-default-20250101T0000-0000000${runs++}`,
    experiment: 'titanic',
    created_at: new Date().toISOString(),
    pins: { digest: 'd'.repeat(64) },
    spec: { submit: { file: 'submission.csv', message: '' } },
    command: { train: ['true'], predict: null },
    backends: ['local'],
    replay_of: null,
    units: [{ index: 0, attempts: [{ n: 1, backend: 'local', handle: null, state: 'succeeded', reason: null, exit_code: 0, started_at: new Date().toISOString(), ended_at: new Date().toISOString(), restored_step: null, last_step: null, events_seen: 0 }] }],
    sharded: false,
  } as unknown as RunRecord;
  project.db.upsert(run);
  await project.store.putBytes(runKeys.output(run.run_id, 'submission.csv'), csv);
  return run;
}

const ledger = () =>
  readFileSync(project.ledgerPath, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** `store`, except that the first submission.json written after Kaggle has a new upload fails, as an S3 503 would. */
function failingRecordAfterUpload(store: Store, uploadsBefore: number): Store {
  let failed = false;
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'putBytes')
        return (key: string, data: Buffer | string) => {
          if (failed || !key.endsWith('/submission.json') || standin.submissions.length === uploadsBefore) return target.putBytes(key, data);
          failed = true;
          return Promise.reject(new Error('store: HTTP 503 Service Unavailable'));
        };
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** challenge.json naming a local sample submission, so a submit asks Kaggle nothing before its upload. */
function localSample(): void {
  writeFileSync(path.join(tmp, 'competitions/titanic/challenge.json'), JSON.stringify({ title: 'Titanic', kaggle: 'titanic', sample_submission: 'sample.csv' }));
  writeFileSync(path.join(tmp, 'competitions/titanic/sample.csv'), SAMPLE);
}

const uploadRequests = () => standin.requests.filter((r) => r.includes('/submission-url') || r.startsWith('PUT ') || r.includes('/submissions/submit/'));

describe('inspect and download', () => {
  it('inspects a competition: title, metric, deadline, every file with its size, the sample submission columns', async () => {
    const facts = await inspectCompetition(api, 'titanic');
    expect(facts.competition).toMatchObject({ slug: 'titanic', title: 'Titanic - Machine Learning from Disaster', metric: 'Categorization Accuracy', deadline: '2030-01-01T00:00:00Z' });
    expect(facts.files).toEqual([
      { name: 'gender_submission.csv', size: SAMPLE.length },
      { name: 'test.csv', size: 'PassengerId\n892\n'.length },
      { name: 'train.csv', size: TRAIN.length },
    ]);
    expect(facts.sample).toEqual({ name: 'gender_submission.csv', shape: { columns: ['PassengerId', 'Survived'], rows: 5 }, zipped: false });
  });

  it('downloads a data file through Kaggle’s redirect, byte for byte, and names a missing one', async () => {
    const dest = path.join(tmp, 'train.csv');
    await api.downloadFile('titanic', 'train.csv', dest);
    expect(readFileSync(dest).equals(TRAIN)).toBe(true);
    const missing = await api.downloadFile('titanic', 'nope.csv', path.join(tmp, 'nope.csv')).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(KaggleError);
    expect((missing as KaggleError).kind).toBe('not-found');
    expect((missing as Error).message).toBe('GET /api/v1/competitions/data/download/titanic/nope.csv: not found on Kaggle (HTTP 404: File nope.csv not found)');
  });

  it('a wrong key is refused in one line that never shows the key; a closed port is unreachable', async () => {
    const wrong = new KaggleApi({ endpoint: standin.url, auth: { kind: 'basic', username: standin.username, key: 'wrong-key-zzz' } });
    const err = (await wrong.competition('titanic').catch((e: unknown) => e)) as KaggleError;
    expect(err.kind).toBe('auth');
    expect(err.message).toMatch(/^GET \/api\/v1\/competitions\/list: Kaggle refused the credentials \(HTTP 401: Unauthenticated\)/);
    expect(err.message).not.toContain('wrong-key-zzz');
    const port = await closedPort();
    const closed = new KaggleApi({ endpoint: `http://127.0.0.1:${port}`, auth: null });
    const gone = (await closed.competition('titanic').catch((e: unknown) => e)) as KaggleError;
    expect(gone.kind).toBe('unreachable');
    expect(gone.message).toBe(`Kaggle is unreachable at http://127.0.0.1:${port} (ECONNREFUSED)`);
  });

  it('an answer of another shape is one line naming the request, what was expected and what came', async () => {
    standin.replies.set('/api/v1/competitions/submissions/list/titanic', { submissions: 'soon' });
    try {
      const err = await api.submissions('titanic').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toBe("GET /api/v1/competitions/submissions/list/titanic: Kaggle's answer has no submissions list: expected { submissions: [...] }, got an object whose submissions is a string");
    } finally {
      standin.replies.clear();
    }
  });

  it('a token with a line break in it (a quoted .env value over two lines) is refused in one line that never shows it, before any request', async () => {
    const before = standin.requests.length;
    const env = { KAGGLE_API_ENDPOINT: standin.url, KAGGLE_API_TOKEN: 'KGAT_first-half\nsecond-half' };
    const err = (await (async () => openKaggle(env, 'competition-inspect').competition('titanic'))().catch((e: unknown) => e)) as KaggleError;
    expect(err).toBeInstanceOf(KaggleError);
    expect(err.kind).toBe('auth');
    expect(err.message).toBe('KAGGLE_API_TOKEN has a line break, a space or a character outside ASCII, which no Kaggle token has; copy it again into .env, on one line');
    expect(standin.requests.length).toBe(before);
  });
});

describe('submit and scores', () => {
  it('uploads the bytes intact with the message, records the Kaggle ref, then polls pending → complete with one ledger entry', async () => {
    const run = await finishedRun(GOOD);
    const before = standin.submissions.length;
    const result = await submitRun(project, run, { message: 'baseline, all zeros' });
    expect(result.checkedAgainst).toBe('titanic/gender_submission.csv on Kaggle (2 columns, 5 rows)');
    const sent = standin.submissions.slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.bytes.equals(Buffer.from(GOOD))).toBe(true);
    expect(sent[0]!).toMatchObject({ fileName: 'submission.csv', description: 'baseline, all zeros' });
    expect(result.record).toMatchObject({
      dry: false,
      competition: 'titanic',
      kaggle_ref: String(sent[0]!.ref),
      kaggle_status: 'pending',
      public_score: null,
      private_score: null,
      message: 'baseline, all zeros',
    });
    expect(ledger().filter((e) => e.type === 'submission.made')).toMatchObject([{ run_id: run.run_id, dry: false, competition: 'titanic', kaggle_ref: String(sent[0]!.ref) }]);

    const first = await pollSubmissions(project);
    expect(first.newlyScored).toBe(0);
    expect(first.submissions[0]!.record.kaggle_status).toBe('pending');
    expect(ledger().some((e) => e.type === 'submission.scored')).toBe(false);

    const second = await pollSubmissions(project, { competition: 'titanic' });
    expect(second.newlyScored).toBe(1);
    const stored = (await listSubmissions(project.store, run.run_id))[0]!.record;
    expect(stored).toMatchObject({ kaggle_status: 'complete', public_score: hashScore(Buffer.from(GOOD)), private_score: null, kaggle_error: null });
    expect(stored.scored_at).not.toBeNull();
    const scored = ledger().filter((e) => e.type === 'submission.scored');
    expect(scored).toMatchObject([{ run_id: run.run_id, competition: 'titanic', kaggle_ref: String(sent[0]!.ref), status: 'complete', public_score: stored.public_score }]);

    const lines = readFileSync(project.ledgerPath);
    const recordBytes = readFileSync(path.join(tmp, '.switchyard/store', runKeys.submission(run.run_id, result.stamp, 'submission.json')));
    const third = await pollSubmissions(project);
    expect(third.newlyScored).toBe(0);
    expect(readFileSync(project.ledgerPath).equals(lines)).toBe(true);
    expect(readFileSync(path.join(tmp, '.switchyard/store', runKeys.submission(run.run_id, result.stamp, 'submission.json'))).equals(recordBytes)).toBe(true);
  });

  it('refuses a file missing a column before any upload request, naming the column', async () => {
    const run = await finishedRun('PassengerId,Survive\n892,0\n893,1\n894,0\n895,0\n896,1\n');
    const before = uploadRequests().length;
    await expect(submitRun(project, run)).rejects.toThrow(
      `submission.csv of run ${run.run_id}: column "Survived" is missing (titanic/gender_submission.csv on Kaggle has PassengerId,Survived); nothing was uploaded`,
    );
    expect(uploadRequests().length).toBe(before);
    expect(await listSubmissions(project.store, run.run_id)).toEqual([]);
  });

  it('refuses a wrong row count before any upload request, naming both counts', async () => {
    const run = await finishedRun('PassengerId,Survived\n892,0\n893,1\n');
    const before = uploadRequests().length;
    await expect(submitRun(project, run)).rejects.toThrow(`submission.csv of run ${run.run_id}: 2 rows, but titanic/gender_submission.csv on Kaggle has 5; nothing was uploaded`);
    expect(uploadRequests().length).toBe(before);
  });

  it('a dry run asks Kaggle nothing and checks against the sample named in challenge.json', async () => {
    writeFileSync(path.join(tmp, 'competitions/titanic/challenge.json'), JSON.stringify({ title: 'Titanic', kaggle: 'titanic', sample_submission: 'sample.csv' }));
    writeFileSync(path.join(tmp, 'competitions/titanic/sample.csv'), SAMPLE);
    const count = standin.requests.length;
    const ok = await submitRun(project, await finishedRun(GOOD), { dry: true });
    expect(ok.record).toMatchObject({ dry: true, reason: 'dry=1 was given', competition: null, kaggle_status: null });
    expect(ok.checkedAgainst).toBe('competitions/titanic/sample.csv (2 columns, 5 rows)');
    const extra = await finishedRun('PassengerId,Survived,Extra\n892,0,1\n893,1,1\n894,0,1\n895,0,1\n896,1,1\n');
    await expect(submitRun(project, extra, { dry: true })).rejects.toThrow(/column "Extra" is not in the sample submission/);
    expect(standin.requests.length).toBe(count);
  });

  it('a record write that fails after Kaggle took the upload: make submit again finds it at Kaggle and completes the record without uploading', async () => {
    const run = await finishedRun(GOOD);
    const before = standin.submissions.length;
    await expect(submitRun({ ...project, store: failingRecordAfterUpload(project.store, before) }, run, { message: 'cut off' })).rejects.toThrow('HTTP 503');
    expect(standin.submissions.length - before).toBe(1);

    const again = await submitRun(project, run, { message: 'cut off' });
    const sent = standin.submissions.slice(before);
    expect(sent).toHaveLength(1);
    expect(again.upload).toBe('found');
    const records = await listSubmissions(project.store, run.run_id);
    expect(records.map((r) => r.stamp)).toEqual([again.stamp]);
    expect(records[0]!.record).toMatchObject({ dry: false, competition: 'titanic', kaggle_ref: String(sent[0]!.ref), kaggle_status: 'pending', message: 'cut off' });
    expect(ledger().filter((e) => e.type === 'submission.made')).toMatchObject([{ run_id: run.run_id, kaggle_ref: String(sent[0]!.ref) }]);
  });

  it('a submit cut off before its upload reached Kaggle leaves an unconfirmed record that lists sensibly; make submit again uploads once', async () => {
    localSample();
    const run = await finishedRun(GOOD);
    const before = standin.submissions.length;
    vi.stubEnv('KAGGLE_API_ENDPOINT', `http://127.0.0.1:${await closedPort()}`);
    await expect(submitRun(project, run)).rejects.toThrow(/Kaggle is unreachable/);
    const [cut, ...none] = await listSubmissions(project.store, run.run_id);
    expect(none).toEqual([]);
    expect(cut!.record).toMatchObject({ dry: false, competition: 'titanic', kaggle_ref: null, kaggle_status: 'unconfirmed', public_score: null });
    expect(await submissionRows(project)).toMatchObject([{ run_id: run.run_id, kaggle_status: 'unconfirmed', public_score: null }]);

    vi.stubEnv('KAGGLE_API_ENDPOINT', standin.url);
    expect((await pollSubmissions(project)).submissions.map((s) => s.record.kaggle_status)).toEqual(['unconfirmed']);
    const again = await submitRun(project, run);
    const sent = standin.submissions.slice(before);
    expect(sent).toHaveLength(1);
    expect(again.upload).toBe('again');
    expect(again.stamp).toBe(cut!.stamp);
    const records = await listSubmissions(project.store, run.run_id);
    expect(records).toHaveLength(1);
    expect(records[0]!.record).toMatchObject({ kaggle_ref: String(sent[0]!.ref), kaggle_status: 'pending' });
  });

  it('two submits of one run at the same moment get two folders, in the order they were made', async () => {
    localSample();
    const run = await finishedRun(GOOD);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2025-06-01T12:00:00.250Z'));
    try {
      const first = await submitRun(project, run, { dry: true, message: 'first' });
      const second = await submitRun(project, run, { dry: true, message: 'second' });
      expect(first.stamp < second.stamp).toBe(true);
    } finally {
      vi.useRealTimers();
    }
    expect((await listSubmissions(project.store, run.run_id)).map((s) => s.record.message)).toEqual(['first', 'second']);
  });
});
