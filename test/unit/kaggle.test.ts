// The pure parts of the Kaggle room: the CSV shape check before upload, reading Kaggle's
// answers, matching and updating submission records, credentials and the endpoint.
import { describe, expect, it } from 'vitest';
import { kaggleEndpoint, openKaggle } from '../../scripts/lib/kaggle/api.js';
import { authorizationHeader, findKaggleAuth, kaggleJson } from '../../scripts/lib/kaggle/credentials.js';
import { csvShape, shapeMismatch } from '../../scripts/lib/kaggle/csv-shape.js';
import { parseCompetitions, parseCreated, parseDataFiles, parseScore, parseStatus, parseSubmissions, parseUploadStart } from '../../scripts/lib/kaggle/responses.js';
import { sampleAmong } from '../../scripts/lib/kaggle/sample-submission.js';
import { UserError } from '../../scripts/lib/ui/errors.js';
import { applyKaggle, bestPublicScore, lowerIsBetter, matchSubmissions, nextStamp, parseSubmissionRecord, type SubmissionRecord } from '../../scripts/lib/kaggle/submission-record.js';

describe('csvShape', () => {
  it('counts data rows, not the header, blank lines or a trailing newline; reads quoted fields and CRLF', () => {
    expect(csvShape('id,y\n1,2\n3,4\n')).toEqual({ columns: ['id', 'y'], rows: 2 });
    expect(csvShape('\ufeffid,y\r\n1,2\r\n\r\n3,4')).toEqual({ columns: ['id', 'y'], rows: 2 });
    expect(csvShape('"id","a ""b"", c"\n1,"two\nlines"\n2,x\n')).toEqual({ columns: ['id', 'a "b", c'], rows: 2 });
    expect(csvShape('')).toEqual({ columns: [], rows: 0 });
    expect(csvShape('id,y')).toEqual({ columns: ['id', 'y'], rows: 0 });
  });
});

describe('shapeMismatch', () => {
  const sample = { columns: ['PassengerId', 'Survived'], rows: 418 };
  it('names a missing column, an extra one, a repeated one, and both row counts', () => {
    expect(shapeMismatch('sub.csv', { columns: ['PassengerId'], rows: 418 }, sample, 'gender_submission.csv')).toBe(
      'sub.csv: column "Survived" is missing (gender_submission.csv has PassengerId,Survived); nothing was uploaded',
    );
    expect(shapeMismatch('sub.csv', { columns: ['PassengerId', 'Survived', 'p'], rows: 418 }, sample, 's.csv')).toBe(
      'sub.csv: column "p" is not in the sample submission (s.csv has PassengerId,Survived); nothing was uploaded',
    );
    expect(shapeMismatch('sub.csv', { columns: ['PassengerId', 'Survived', 'Survived'], rows: 418 }, sample, 's.csv')).toBe('sub.csv: column "Survived" appears twice; nothing was uploaded');
    expect(shapeMismatch('sub.csv', { columns: ['PassengerId', 'Survived'], rows: 417 }, sample, 's.csv')).toBe('sub.csv: 417 rows, but s.csv has 418; nothing was uploaded');
  });
  it('accepts the same columns in another order', () => {
    expect(shapeMismatch('sub.csv', { columns: ['Survived', 'PassengerId'], rows: 418 }, sample, 's.csv')).toBeNull();
  });
});

describe("Kaggle's answers", () => {
  it('reads competitions from kagglesdk objects or a bare list, the slug from a URL ref', () => {
    const c = { ref: 'https://www.kaggle.com/competitions/titanic', title: 'Titanic', evaluationMetric: 'Categorization Accuracy', deadline: '2030-01-07T23:59:00Z', maxDailySubmissions: 10 };
    const parsed = parseCompetitions({ competitions: [c] });
    expect(parsed).toEqual([
      { slug: 'titanic', title: 'Titanic', url: 'https://www.kaggle.com/competitions/titanic', deadline: '2030-01-07T23:59:00Z', metric: 'Categorization Accuracy', category: null, reward: null, maxDailySubmissions: 10, submissionsDisabled: false },
    ]);
    expect(parseCompetitions([{ ...c, ref: 'titanic' }])[0]!.slug).toBe('titanic');
    expect(parseCompetitions({})).toEqual([]);
    expect(() => parseCompetitions({ competitions: 'x' })).toThrow("Kaggle's answer has no competitions list");
  });
  it('reads data files and the next page token', () => {
    expect(parseDataFiles({ files: [{ ref: 'a.csv', name: 'a.csv', totalBytes: 12 }], nextPageToken: 'p2' })).toEqual({ files: [{ name: 'a.csv', size: 12 }], nextPageToken: 'p2' });
    expect(parseDataFiles({ files: [], nextPageToken: '' }).nextPageToken).toBeNull();
  });
  it('reads scores given as strings and statuses in every spelling', () => {
    expect(parseScore('0.77511')).toBe(0.77511);
    expect(parseScore('')).toBeNull();
    expect(parseScore(null)).toBeNull();
    expect(parseScore('None')).toBeNull();
    expect(['COMPLETE', 'complete', 'SUBMISSION_STATUS_COMPLETE', 1].map(parseStatus)).toEqual(['complete', 'complete', 'complete', 'complete']);
    expect(['ERROR', 2, 'PENDING', 0, undefined, 'weird'].map(parseStatus)).toEqual(['error', 'error', 'pending', 'pending', 'pending', 'pending']);
    expect(parseSubmissions({ submissions: [{ ref: 41, status: 'ERROR', publicScore: '', errorDescription: 'bad header', fileName: 's.csv' }] })).toEqual([
      { ref: '41', date: null, description: null, fileName: 's.csv', status: 'error', publicScore: null, privateScore: null, error: 'bad header' },
    ]);
  });
  it('an answer of another shape is a one-line UserError naming what was expected and what came, never its values', () => {
    const thrown = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as Error;
      }
      throw new Error('nothing thrown');
    };
    const list = thrown(() => parseSubmissions('secret-looking text'));
    expect(list).toBeInstanceOf(UserError);
    expect(list.message).toBe("Kaggle's answer has no submissions list: expected { submissions: [...] }, got a string");
    expect(thrown(() => parseUploadStart({ token: 'tok-123' })).message).toBe('Kaggle gave no upload URL for the submission: expected { token, createUrl }, got an object without createUrl');
    expect(thrown(() => parseUploadStart([])).message).toBe('Kaggle gave no upload URL for the submission: expected { token, createUrl }, got a list');
  });
  it('a created submission without a ref (or ref 0) has none', () => {
    expect(parseCreated({ message: 'Successfully submitted', ref: 0 })).toEqual({ ref: null, message: 'Successfully submitted' });
    expect(parseCreated({ ref: 7 })).toEqual({ ref: '7', message: '' });
  });
  it('finds the sample submission among the data files', () => {
    expect(sampleAmong([{ name: 'train.csv', size: 1 }, { name: 'gender_submission.csv', size: 1 }])?.name).toBe('gender_submission.csv');
    expect(sampleAmong([{ name: 'sample_submission.csv.zip', size: 1 }, { name: 'train.csv', size: 1 }])).toBeNull();
  });
});

const record = (over: Partial<SubmissionRecord> = {}): SubmissionRecord =>
  parseSubmissionRecord(JSON.stringify({ run_id: 'r1', file: 'submission.csv', sha256: 'x', message: 'm', dry: false, competition: 't', at: '2025-01-01T00:00:00.000Z', kaggle_status: 'pending', ...over }));

describe('submission records', () => {
  it('an old record reads with the Kaggle fields null', () => {
    const old = parseSubmissionRecord(JSON.stringify({ run_id: 'r', file: 'f', sha256: 's', message: 'm', dry: true, reason: 'dry=1 was given', score: null, kaggle_output: null, at: 'now' }));
    expect(old).toMatchObject({ kaggle_ref: null, kaggle_status: null, public_score: null, private_score: null, competition: null, scored_at: null });
  });
  it('applies a score once: changed and finished the first time, neither when nothing is new', () => {
    const k = { ref: '9', status: 'complete' as const, publicScore: 0.8, privateScore: null, error: null };
    const first = applyKaggle(record({ kaggle_ref: '9' }), k, '2025-01-02T00:00:00Z');
    expect(first).toMatchObject({ changed: true, finished: true, record: { kaggle_status: 'complete', public_score: 0.8, scored_at: '2025-01-02T00:00:00Z' } });
    const again = applyKaggle(first.record, k, 'later');
    expect(again).toMatchObject({ changed: false, finished: false, record: { scored_at: '2025-01-02T00:00:00Z' } });
    const privateLater = applyKaggle(first.record, { ...k, privateScore: 0.79 }, 'later');
    expect(privateLater).toMatchObject({ changed: true, finished: false, record: { private_score: 0.79 } });
    expect(applyKaggle(record(), { ...k, status: 'pending', publicScore: null }, 'x')).toMatchObject({ finished: false, changed: true });
    expect(applyKaggle(record(), { ...k, status: 'error', publicScore: null, error: null }, 'x').record.kaggle_error).toBe('Kaggle could not score it');
  });
  it('matches by ref, else by file name and message made after the record, each once', () => {
    const kaggle = [
      { ref: '3', fileName: 'submission.csv', description: 'm', date: '2025-01-01T00:00:30Z' },
      { ref: '2', fileName: 'submission.csv', description: 'm', date: '2024-12-01T00:00:00Z' },
      { ref: '1', fileName: 'submission.csv', description: 'm', date: '2025-01-01T00:00:10Z' },
    ];
    expect(matchSubmissions([record({ kaggle_ref: '3' }), record(), record(), record({ message: 'other' })], kaggle)).toEqual([0, 2, -1, -1]);
  });
  it('stamps a new submission to the millisecond, after every folder taken, in an order that sorts by time', () => {
    const now = new Date('2025-06-01T12:00:00.250Z');
    expect(nextStamp([], now)).toBe('20250601T120000.250Z');
    expect(nextStamp(['20250601T120000.250Z'], now)).toBe('20250601T120000.251Z');
    expect(nextStamp(['20250601T120000.900Z', 'notes'], now)).toBe('20250601T120000.901Z');
    expect(nextStamp(['20250601T115959Z'], now)).toBe('20250601T120000.250Z');
    expect(nextStamp(['20250601T120001Z'], now)).toBe('20250601T120001.001Z');
  });
  it('picks the best public score by the metric’s direction', () => {
    const rs = [record({ public_score: 0.5 }), record({ public_score: 0.7 }), record()];
    expect(bestPublicScore(rs)).toBe(0.7);
    expect(bestPublicScore(rs, false)).toBe(0.5);
    expect(bestPublicScore([record()])).toBeNull();
    expect([lowerIsBetter('RMSE'), lowerIsBetter('Log Loss'), lowerIsBetter('Mean Absolute Error'), lowerIsBetter('Categorization Accuracy'), lowerIsBetter(null)]).toEqual([true, true, true, false, false]);
  });
});

describe('credentials and endpoint', () => {
  it('a token wins over a username and key; both are needed for basic auth', () => {
    const none = { KAGGLE_CONFIG_DIR: '/nonexistent-kaggle-dir' };
    expect(findKaggleAuth({ ...none, KAGGLE_API_TOKEN: 't', KAGGLE_USERNAME: 'u', KAGGLE_KEY: 'k' })).toEqual({ kind: 'token', token: 't' });
    expect(findKaggleAuth({ ...none, KAGGLE_USERNAME: 'u', KAGGLE_KEY: 'k' })).toEqual({ kind: 'basic', username: 'u', key: 'k' });
    expect(findKaggleAuth({ ...none, KAGGLE_USERNAME: 'u' })).toBeNull();
    expect(authorizationHeader({ kind: 'basic', username: 'u', key: 'k' })).toBe(`Basic ${Buffer.from('u:k').toString('base64')}`);
    expect(authorizationHeader({ kind: 'token', token: 't' })).toBe('Bearer t');
    expect(JSON.parse(kaggleJson('u', 'k"\\'))).toEqual({ username: 'u', key: 'k"\\' });
  });
  it('KAGGLE_API_ENDPOINT replaces Kaggle, with or without its /api/v1', () => {
    expect(kaggleEndpoint({})).toBe('https://www.kaggle.com');
    expect(kaggleEndpoint({ KAGGLE_API_ENDPOINT: 'http://127.0.0.1:7777/' })).toBe('http://127.0.0.1:7777');
    expect(kaggleEndpoint({ KAGGLE_API_ENDPOINT: 'http://localhost:7777/api/v1' })).toBe('http://localhost:7777');
  });
  it('a KAGGLE_API_ENDPOINT without its http:// is one line naming it and the fix, before any request', async () => {
    for (const endpoint of ['127.0.0.1:7777', 'localhost:7777', 'kaggle.internal']) {
      const env = { KAGGLE_API_ENDPOINT: endpoint, KAGGLE_USERNAME: 'u', KAGGLE_KEY: 'k' };
      const err = await (async () => openKaggle(env, 'submit').competition('titanic'))().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toBe(`KAGGLE_API_ENDPOINT: ${endpoint} is not an http:// or https:// URL; write it with its scheme (e.g. http://localhost:8080), or leave it unset for Kaggle itself`);
    }
  });
});
