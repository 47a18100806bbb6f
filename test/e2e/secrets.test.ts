// Secrets on the laptop, end to end: an experiment that prints its secret everywhere it can
// (stdout, stderr, metrics) leaves it in no file under .switchyard/ and on no screen; a
// declared secret missing from .env stops make train before any run exists.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesUnder, LEAK_PY } from '../helpers/leaky-experiment.js';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';

// Quotes, $, a backslash, a space and a newline; the distinctive head is what must never show.
const HEAD = 'sy-canary-5e1f0b7a';
const DOTENV = `SY_CANARY=\`${HEAD}'q"$HOME \\x y\nsecond line\`\n`;
const CANARY = parseEnv(DOTENV).SY_CANARY!;

let sb: Sandbox;
const shown: string[] = []; // everything the verbs printed

beforeAll(() => {
  sb = createSandbox();
  const comp = path.join(sb.dir, 'competitions/penguins');
  writeFileSync(path.join(comp, 'leak.py'), LEAK_PY);
  const fast = readFileSync(path.join(comp, 'experiments/fast.yaml'), 'utf8');
  writeFileSync(path.join(comp, 'experiments/leak.yaml'), `${fast}setup: [python3, leak.py, SY_CANARY]\nsecrets: [SY_CANARY]\n`);
  writeFileSync(path.join(comp, 'experiments/missing.yaml'), `${fast}secrets: [SY_CANARY, SY_ABSENT]\n`);
  writeFileSync(path.join(sb.dir, '.env'), DOTENV);
  sb.git(['add', '-A']);
  sb.git(['commit', '-qm', 'secret experiments']);
});
afterAll(() => sb?.cleanup());

function make(args: string[]) {
  const r = sb.make(args);
  shown.push(r.stdout, r.stderr);
  return { ...r, out: r.stdout + r.stderr };
}
const runIdIn = (text: string) => /run (\S+-\d{8}T\d{4}-[0-9a-f]{8}(?:-\d+)?)/.exec(text)?.[1];
const runsDir = () => path.join(sb.dir, '.switchyard/store/runs');
const ownLines = (stderr: string) => stderr.split('\n').filter((l) => l && !l.startsWith('make: ***'));

describe('secrets on the local backend', () => {
  it('an experiment printing its secret to stdout, stderr and metrics leaves it in no file and on no screen', () => {
    expect(CANARY).toContain('\n');
    const train = make(['train', 'experiment=penguins/leak']);
    expect(train.code, train.out).toBe(0);
    const id = runIdIn(train.out)!;
    // The experiment saw exactly the bytes of .env, and the console shows the masked lines.
    expect(train.stdout).toContain(`secret sha256 ${createHash('sha256').update(CANARY).digest('hex')}`);
    expect(train.stdout).toContain('[redacted SY_CANARY]');
    const logs = make(['logs', `run=${id}`]);
    expect(logs.stdout).toMatch(/^\[redacted SY_CANARY\]\nsecret sha256 /);
    expect(make(['logs', `run=${id}`, 'stream=stderr']).stdout).toContain('stderr: [redacted SY_CANARY]\n');
    const metrics = readFileSync(path.join(runsDir(), id, 'attempts/1/metrics.jsonl'), 'utf8').split('\n');
    expect(metrics[0]).toBe('{"step": 0, "note": "[redacted SY_CANARY]"}');
    expect(metrics.length).toBeGreaterThan(5); // the training's own metrics follow
    expect(make(['status']).code).toBe(0);
    expect(make(['pull', `run=${id}`]).code).toBe(0);

    const files = [...filesUnder(path.join(sb.dir, '.switchyard')), ...filesUnder(path.join(sb.dir, 'outputs'))];
    expect(files.length).toBeGreaterThan(20);
    for (const f of files) expect(readFileSync(f).includes(HEAD), f).toBe(false);
    for (const text of shown) expect(text).not.toContain(HEAD);
  });

  it('a declared secret missing from .env is one line naming it, the spec and the fix, before any run', () => {
    const before = existsSync(runsDir()) ? readdirSync(runsDir()) : [];
    const r = make(['train', 'experiment=penguins/missing']);
    expect(r.code).not.toBe(0);
    expect(ownLines(r.stderr)).toEqual([
      'switchyard: competitions/penguins/experiments/missing.yaml: secrets: SY_ABSENT is declared but not in .env; add SY_ABSENT=<value> to .env, or remove it from secrets:',
    ]);
    expect(existsSync(runsDir()) ? readdirSync(runsDir()) : []).toEqual(before);
  });
});
