// The Kaggle verbs end to end in a sandbox, with KAGGLE_API_ENDPOINT pointing at the local
// stand-in of Kaggle's competition API and the credentials in the sandbox's .env:
// kaggle-auth, competition-inspect, competition-new from Kaggle's metadata (and without it),
// submit with the sample-submission check, submissions polling scores into the run and the
// ledger, and status showing the best public score. The key never appears in any output.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashScore, startKaggleStandin, type KaggleStandin } from '../helpers/kaggle-standin/index.js';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';

const KEY = 'e2e-key-7f3a9c-never-printed';
let sb: Sandbox;
let standin: KaggleStandin;
let sample: string;
const outputs: string[] = [];

beforeAll(async () => {
  sb = createSandbox();
  const ids = readFileSync(path.join(sb.dir, 'competitions/penguins/data/test.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',')[0]);
  sample = `id,species\n${ids.map((id) => `${id},Adelie`).join('\n')}\n`;
  standin = await startKaggleStandin({
    username: 'e2e-user',
    key: KEY,
    competitions: {
      'palmer-penguins': {
        title: 'Palmer Penguins Playground',
        metric: 'Categorization Accuracy',
        deadline: '2031-06-30T23:59:00Z',
        files: { 'sample_submission.csv': sample, 'train.csv': readFileSync(path.join(sb.dir, 'competitions/penguins/data/train.csv')) },
      },
    },
  });
  const challenge = path.join(sb.dir, 'competitions/penguins/challenge.json');
  writeFileSync(challenge, JSON.stringify({ ...JSON.parse(readFileSync(challenge, 'utf8')), kaggle: 'palmer-penguins' }, null, 2));
  writeFileSync(path.join(sb.dir, '.env'), `KAGGLE_USERNAME=e2e-user\nKAGGLE_KEY=${KEY}\n`);
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', 'penguins on kaggle']);
}, 120_000);

afterAll(async () => {
  await standin?.close();
  sb?.cleanup();
  for (const o of outputs) expect(o).not.toContain(KEY);
});

const env = () => ({ KAGGLE_API_ENDPOINT: standin.url, KAGGLE_CONFIG_DIR: path.join(sb.dir, '.kaggle-config'), KAGGLE_API_TOKEN: '' });

/** `make <args>` without blocking this process: the stand-in answers from it. */
async function make(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string }> {
  const child = sb.spawnMake(args, { ...env(), ...extra });
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  outputs.push(child.output());
  return { code, out: child.output() };
}

const uploads = () => standin.requests.filter((r) => r.includes('/submission-url') || r.startsWith('PUT '));
const ledgerTypes = () =>
  readFileSync(path.join(sb.dir, '.switchyard/ledger.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; [k: string]: unknown })
    .filter((e) => e.type.startsWith('submission.'));

describe('kaggle verbs', () => {
  it('kaggle-auth writes kaggle.json 0600 from .env, and says so without the key', async () => {
    const r = await make(['kaggle-auth']);
    expect(r.code, r.out).toBe(0);
    const file = path.join(sb.dir, '.kaggle-config/kaggle.json');
    expect(r.out).toContain(`wrote ${file} (0600) for e2e-user`);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ username: 'e2e-user', key: KEY });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    writeFileSync(file, JSON.stringify({ username: 'someone-else', key: 'x' }));
    const refused = await make(['kaggle-auth']);
    expect(refused.code).not.toBe(0);
    expect(refused.out).toContain(`switchyard: ${file}: holds the key of someone-else; make kaggle-auth force=1 replaces it with e2e-user's`);
    expect((await make(['kaggle-auth', 'force=1'])).code).toBe(0);
  });

  it('competition-inspect prints the title, metric, deadline, files with sizes and the sample columns', async () => {
    const r = await make(['competition-inspect', 'competition=palmer-penguins']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('Palmer Penguins Playground (palmer-penguins)');
    expect(r.out).toMatch(/metric: +Categorization Accuracy/);
    expect(r.out).toMatch(/deadline: +2031-06-30T23:59:00Z/);
    expect(r.out).toMatch(/ {2}sample_submission\.csv +\d/);
    expect(r.out).toMatch(/ {2}train\.csv +\d/);
    expect(r.out).toContain(`sample submission: sample_submission.csv: columns id, species; ${sample.trim().split('\n').length - 1} rows`);
  });

  it('competition-new fills challenge.json from Kaggle when it answers, and is the scaffold when it does not', async () => {
    const r = await make(['competition-new', 'competition=pp2', 'kaggle=palmer-penguins']);
    expect(r.code, r.out).toBe(0);
    expect(JSON.parse(readFileSync(path.join(sb.dir, 'competitions/pp2/challenge.json'), 'utf8'))).toMatchObject({
      title: 'Palmer Penguins Playground',
      kaggle: 'palmer-penguins',
      metric: 'Categorization Accuracy',
      deadline: '2031-06-30T23:59:00Z',
    });
    const offline = await make(['competition-new', 'competition=pp3', 'kaggle=palmer-penguins'], { KAGGLE_API_ENDPOINT: 'http://127.0.0.1:9' });
    expect(offline.code, offline.out).toBe(0);
    expect(offline.out).toMatch(/challenge\.json is the scaffold's: Kaggle gave nothing for palmer-penguins \(Kaggle is unreachable at http:\/\/127\.0\.0\.1:9/);
    expect(JSON.parse(readFileSync(path.join(sb.dir, 'competitions/pp3/challenge.json'), 'utf8'))).toMatchObject({ title: 'pp3', kaggle: 'palmer-penguins', metric: null });
  });

  it('submit uploads a checked file; submissions polls pending → complete; status shows the public score', async () => {
    const t = await make(['train', 'experiment=penguins/fast']);
    expect(t.code, t.out).toBe(0);
    expect((await make(['predict', 'experiment=penguins/fast'])).code).toBe(0);
    const s = await make(['submit', 'experiment=penguins/fast', 'message=e2e upload']);
    expect(s.code, s.out).toBe(0);
    expect(s.out).toContain('matches the sample submission palmer-penguins/sample_submission.csv on Kaggle (2 columns, 67 rows)');
    expect(s.out).toMatch(/local score: \{.*"metric":"accuracy"/);
    const ref = standin.submissions.at(-1)!.ref;
    expect(s.out).toContain(`uploaded to Kaggle (palmer-penguins, submission ${ref}): Successfully submitted to Palmer Penguins Playground`);
    const sent = standin.submissions.at(-1)!;
    expect(sent.description).toBe('e2e upload');
    const runId = /runs\/(\S+?)\/submissions\//.exec(s.out)![1]!;
    expect(sent.bytes.equals(readFileSync(path.join(sb.dir, '.switchyard/store/runs', runId, 'outputs/submission.csv')))).toBe(true);

    const pending = await make(['submissions']);
    expect(pending.code, pending.out).toBe(0);
    expect(pending.out).toMatch(new RegExp(`${runId} +\\S+ +palmer-penguins +pending`));
    const scored = await make(['submissions', 'competition=palmer-penguins']);
    const score = hashScore(sent.bytes);
    expect(scored.out).toMatch(new RegExp(`${runId} +\\S+ +palmer-penguins +complete +${score}`));
    expect(scored.out).toContain('asked Kaggle about palmer-penguins: 1 newly scored');
    expect((await make(['submissions'])).out).toContain('0 newly scored');
    expect(ledgerTypes().filter((e) => e.type === 'submission.scored')).toMatchObject([{ run_id: runId, status: 'complete', public_score: score }]);

    const status = await make(['status']);
    expect(status.out).toMatch(/PUBLIC/);
    expect(status.out.split('\n').find((l) => l.startsWith(runId))).toContain(String(score));
    expect((await make(['verify'])).code).toBe(0);
  });

  it('submit refuses a file whose row count differs from the sample, before any upload', async () => {
    standin.competitions['palmer-penguins']!.files!['sample_submission.csv'] = sample + '999,Adelie\n';
    const before = uploads().length;
    const r = await make(['submit', 'experiment=penguins/fast']);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/switchyard: submission\.csv of run \S+: 67 rows, but palmer-penguins\/sample_submission\.csv on Kaggle has 68; nothing was uploaded/);
    expect(uploads().length).toBe(before);
  });

  it('an answer of another shape from Kaggle is one line: the request, what was expected and what came, no stack', async () => {
    standin.replies.set('/api/v1/competitions/submissions/list/palmer-penguins', { submissions: { page: 1 } });
    try {
      const r = await make(['submissions']);
      expect(r.code).toBe(2); // make's own code for a failed recipe
      expect(r.out.trim().split('\n').filter((l) => !l.startsWith('make: ***'))).toEqual([
        "switchyard: GET /api/v1/competitions/submissions/list/palmer-penguins: Kaggle's answer has no submissions list: expected { submissions: [...] }, got an object whose submissions is an object",
      ]);
    } finally {
      standin.replies.clear();
    }
  });

  it('a submit cut off before Kaggle had the file lists as unconfirmed; the next submit says so and uploads it once', async () => {
    standin.competitions['palmer-penguins']!.files!['sample_submission.csv'] = sample;
    standin.replies.set('/api/v1/competitions/submission-url', { upload: 'later' });
    const cut = await make(['submit', 'experiment=penguins/fast', 'message=cut off']);
    standin.replies.clear();
    expect(cut.code).not.toBe(0);
    expect(cut.out).toContain(
      "switchyard: POST /api/v1/competitions/submission-url: Kaggle gave no upload URL for the submission: expected { token, createUrl }, got an object without either\n",
    );
    const listed = await make(['submissions']);
    const runId = /unconfirmed: .*: (\S+)$/m.exec(listed.out)?.[1];
    expect(listed.out).toMatch(new RegExp(`${runId} +\\S+ +palmer-penguins +unconfirmed +- +- +\\S+ +cut off`));

    const before = standin.submissions.length;
    const again = await make(['submit', `run=${runId}`, 'message=cut off']);
    expect(again.code, again.out).toBe(0);
    expect(again.out).toContain('an earlier make submit of this file was cut off before Kaggle had it\nuploaded to Kaggle (palmer-penguins, submission ');
    expect(standin.submissions.length).toBe(before + 1);
    expect((await make(['submissions'])).out).not.toContain('unconfirmed');
  });
});
