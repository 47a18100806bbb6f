import { mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadChallenge } from '../../scripts/lib/spec/challenge.js';
import { checkName, loadExperiment, MAX_SPEC_BYTES, setupOf } from '../../scripts/lib/spec/experiment.js';
import { makeCommandLineNames, readVars } from '../../scripts/lib/spec/make-vars.js';
import { parseYaml } from '../../scripts/lib/spec/yaml.js';
import { UserError } from '../../scripts/lib/ui/errors.js';
import { run } from '../../scripts/lib/proc.js';
import { z } from 'zod';

let root: string;

function competition(slug: string, yaml: string | Buffer, opts: { data?: boolean } = {}) {
  const dir = path.join(root, 'competitions', slug);
  mkdirSync(path.join(dir, 'experiments'), { recursive: true });
  if (opts.data !== false) mkdirSync(path.join(dir, 'data'), { recursive: true });
  writeFileSync(path.join(dir, 'experiment.yaml'), yaml);
}

async function errorOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    const message = (err as Error).message;
    expect(message.split('\n')).toHaveLength(1);
    return message;
  }
  throw new Error('expected a UserError');
}

beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'spec-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('experiment specs', () => {
  it('loads a minimal spec with every default filled in', async () => {
    competition('toy', 'train:\n  command: python3 train.py\ndata:\n  dir: data\n');
    const exp = await loadExperiment(root, 'toy');
    expect(exp).toMatchObject({ slug: 'toy', name: 'default', ref: 'toy', file: 'competitions/toy/experiment.yaml' });
    expect(exp.spec.train).toEqual({ command: 'python3 train.py', checkpoint_every_sec: 60, grace_sec: 60, env: {}, keep_checkpoints: 3 });
    expect(exp.spec.resources).toEqual({ cpus: 1, gpus: 0, spot: false });
    expect(exp.spec.shards).toEqual({ count: 1, merge: 'concat' });
    expect(exp.spec.seed).toBe(0);
    expect(exp.dataDir).toBe(path.join(root, 'competitions/toy/data'));
  });

  it('loads named experiments from experiments/<name>.yaml', async () => {
    competition('toy', 'train:\n  command: x\n');
    writeFileSync(path.join(root, 'competitions/toy/experiments/fast.yaml'), 'train:\n  command: [python3, train.py]\nseed: 7\n');
    const exp = await loadExperiment(root, 'toy/fast');
    expect(exp.ref).toBe('toy/fast');
    expect(exp.spec.train.command).toEqual(['python3', 'train.py']);
    expect(exp.spec.seed).toBe(7);
  });

  it('names file, field and fix for a missing train command', async () => {
    competition('toy', 'train:\n  checkpoint_every_sec: 2\n');
    expect(await errorOf(() => loadExperiment(root, 'toy'))).toBe(
      'competitions/toy/experiment.yaml: train.command: required, e.g. "python3 train.py"',
    );
  });

  it('rejects unknown keys and lists the valid ones', async () => {
    competition('toy', 'train:\n  command: x\n  comand: y\n');
    expect(await errorOf(() => loadExperiment(root, 'toy'))).toBe(
      'competitions/toy/experiment.yaml: train.comand: unknown key; valid keys here: command, cwd, checkpoint_every_sec, grace_sec, env, keep_checkpoints, metrics_from',
    );
    competition('top', 'trian:\n  command: x\n');
    expect(await errorOf(() => loadExperiment(root, 'top'))).toMatch(/experiment\.yaml: trian: unknown key; valid keys here: setup, train, predict/);
  });

  it('reports malformed YAML with its line', async () => {
    competition('toy', 'train:\n  command: [python3\n');
    expect(await errorOf(() => loadExperiment(root, 'toy'))).toMatch(/^competitions\/toy\/experiment\.yaml:\d+:\d+: malformed YAML: /);
  });

  it('asks for what a shard merge strategy needs', async () => {
    competition('toy', 'train:\n  command: x\nshards:\n  count: 4\n  merge: best-by-score\n');
    expect(await errorOf(() => loadExperiment(root, 'toy'))).toBe(
      'competitions/toy/experiment.yaml: shards.score_field: required with merge: best-by-score, e.g. "loo_accuracy"',
    );
    competition('tot', 'train:\n  command: x\nshards:\n  merge: command\n');
    expect(await errorOf(() => loadExperiment(root, 'tot'))).toBe(
      'competitions/tot/experiment.yaml: shards.merge_command: required with merge: command, e.g. "python3 merge.py"',
    );
  });

  it('rejects an unknown backend in the spec', async () => {
    competition('toy', 'train:\n  command: x\nbackends: [local, kubernetes]\n');
    expect(await errorOf(() => loadExperiment(root, 'toy'))).toBe(
      'competitions/toy/experiment.yaml: backends.1: must be one of "local", "ssh", "fleet", "gcp-batch", "slurm"',
    );
  });

  it('rejects a missing data dir', async () => {
    competition('toy', 'train:\n  command: x\ndata:\n  dir: nowhere\n', { data: false });
    expect(await errorOf(() => loadExperiment(root, 'toy'))).toBe(
      'competitions/toy/experiment.yaml: data.dir: competitions/toy/nowhere is not a directory; create it or fix the path',
    );
  });

  it('gives the fix for a wrong type, from the field\'s own example', async () => {
    const cases: [string, string][] = [
      ['train:\n  command: x\nseed: many\n', 'seed: expected a number, e.g. 42'],
      ['train:\n  command: 5\n', 'train.command: expected a string or a list of strings, e.g. "python3 train.py"'],
      ['train:\n  command: x\n  env: [A]\n', 'train.env: expected a mapping, e.g. { EPOCHS: "8000" }'],
      ['train:\n  command: x\ndata: data\n', 'data: expected a mapping, e.g. { dir: data }'],
      ['train:\n  command: x\nsetup: 3\n', 'setup: expected a string, a list of strings, or { command, cwd }, e.g. "pip install -r requirements.txt"'],
    ];
    for (const [yaml, message] of cases) {
      competition('toy', yaml);
      expect(await errorOf(() => loadExperiment(root, 'toy'))).toBe(`competitions/toy/experiment.yaml: ${message}`);
    }
  });

  it('takes working folders, a metrics pattern and code paths, and checks them before anything runs', async () => {
    mkdirSync(path.join(root, 'lib'));
    competition(
      'toy',
      "setup: { command: make, cwd: tools }\ntrain:\n  command: x\n  cwd: $data\n  metrics_from: 'loss (?P<loss>[\\d.]+)'\ndata:\n  dir: data\ncode: [lib/]\n",
    );
    mkdirSync(path.join(root, 'competitions/toy/tools'));
    const exp = await loadExperiment(root, 'toy');
    expect(exp.spec.train).toMatchObject({ cwd: '$data', metrics_from: 'loss (?P<loss>[\\d.]+)' });
    expect(exp.spec.code).toEqual(['lib/']);
    expect(setupOf(exp.spec)).toEqual({ command: 'make', cwd: 'tools' });

    const file = 'competitions/toy/experiment.yaml';
    const cases: [string, string][] = [
      ['train:\n  command: x\n  cwd: $data\n', `${file}: train.cwd: $data is the staged data, and there is no data: section; add data: { dir: data }`],
      ['train:\n  command: x\n  cwd: ../elsewhere\n', `${file}: train.cwd: a folder inside the competition folder, or $data (the staged data) or $data/<sub-folder>, e.g. $data`],
      ['train:\n  command: x\n  cwd: nowhere\n', `${file}: train.cwd: competitions/toy/nowhere is not a folder; create it or fix the path (relative to the competition folder, or $data)`],
      ["train:\n  command: x\n  metrics_from: 'loss (\\d+'\n", `${file}: train.metrics_from: not a regular expression (/loss (\\d+/: Unterminated group), e.g. 'step (?<step>\\d+) / \\d+ \\| loss (?<loss>[\\d.]+)'`],
      ["train:\n  command: x\n  metrics_from: 'loss ([\\d.]+)'\n", `${file}: train.metrics_from: has no named group like (?<loss>[\\d.]+) to take a metric from, e.g. 'step (?<step>\\d+) / \\d+ \\| loss (?<loss>[\\d.]+)'`],
      ['train:\n  command: x\ncode: [common/]\n', `${file}: code.0: common/ does not exist in the repository (paths under code are relative to its root); create it or fix the path`],
      ['train:\n  command: x\ncode: [./cluster_fleet_config.ts]\n', `${file}: code.0: cluster_fleet_config.ts is the inventory: where a run executes is never part of its code pin`],
    ];
    for (const [yaml, message] of cases) {
      competition('toy', yaml);
      expect(await errorOf(() => loadExperiment(root, 'toy'))).toBe(message);
    }
  });

  it('refuses a code path git ignores, which no pin could see, naming the ignore rule', async () => {
    await run(['git', 'init', '-q'], { cwd: root });
    writeFileSync(path.join(root, '.gitignore'), 'configs/local.yaml\nbuild/\n');
    mkdirSync(path.join(root, 'configs'));
    mkdirSync(path.join(root, 'build'));
    mkdirSync(path.join(root, 'lib'));
    writeFileSync(path.join(root, 'configs/local.yaml'), 'a: 1\n');
    writeFileSync(path.join(root, 'configs/shared.yaml'), 'a: 1\n');
    const file = 'competitions/toy/experiment.yaml';
    competition('toy', 'train:\n  command: x\ncode: [lib/, configs/shared.yaml]\n');
    expect((await loadExperiment(root, 'toy')).spec.code).toEqual(['lib/', 'configs/shared.yaml']);
    competition('toy', 'train:\n  command: x\ncode: [configs/local.yaml]\n');
    expect(await errorOf(() => loadExperiment(root, 'toy'))).toBe(
      `${file}: code.0: configs/local.yaml is ignored by git (.gitignore:1: configs/local.yaml), so no pin could see it; commit it (git add -f) or un-ignore it`,
    );
    competition('toy', 'train:\n  command: x\ncode: [lib/, build/]\n');
    expect(await errorOf(() => loadExperiment(root, 'toy'))).toMatch(/^competitions\/toy\/experiment.yaml: code.1: build\/ is ignored by git \(.gitignore:2: build\/\)/);
  });

  it('leaves fields a spec does not use out of it, so its config pin stays what it was', async () => {
    competition('toy', 'train:\n  command: python3 train.py\ndata:\n  dir: data\n');
    const { spec } = await loadExperiment(root, 'toy');
    expect(Object.keys(spec).sort()).toEqual(['data', 'resources', 'secrets', 'seed', 'shards', 'train']);
    expect(Object.keys(spec.train).sort()).toEqual(['checkpoint_every_sec', 'command', 'env', 'grace_sec', 'keep_checkpoints']);
  });

  it('says which experiments and competitions exist', async () => {
    competition('toy', 'train:\n  command: x\n');
    expect(await errorOf(() => loadExperiment(root, 'nope'))).toBe(
      'experiment: no competition "nope" (known: toy); create it with make competition-new competition=nope',
    );
    expect(await errorOf(() => loadExperiment(root, 'toy/slow'))).toBe('competitions/toy/experiments/slow.yaml: no such experiment (known for toy: default)');
    expect(await errorOf(() => loadExperiment(root, undefined))).toBe('experiment: required, e.g. make train experiment=penguins');
  });

  it.each(['../etc', 'a b', 'x;rm -rf ~', '$(id)', 'a/../b', 'toy/..', '.hidden', 'a`b`', 'UPPER', 'a/b/c'])(
    'rejects the hostile or malformed name %j before touching the disk',
    async (name) => {
      expect(await errorOf(() => loadExperiment(root, name))).toMatch(/^experiment: /);
    },
  );

  it('refuses an alias bomb in one line naming the file, without expanding it', async () => {
    const levels = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]'];
    for (let i = 1; i < 9; i++) levels.push(`l${i}: &l${i} [${Array(9).fill(i === 1 ? '*a' : `*l${i - 1}`).join(', ')}]`);
    competition('toy', `train:\n  command: x\n${levels.join('\n')}\n`);
    const t0 = performance.now();
    expect(await errorOf(() => loadExperiment(root, 'toy'))).toBe(
      'competitions/toy/experiment.yaml: YAML aliases expand too much (over 100 times); write the values out instead of nesting anchors',
    );
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('finds a duplicate key among 32k in linear time, naming its line and column', async () => {
    // 32k keys is over the size limit of a spec file, so the parser is asked directly (yaml's own check took 42 s).
    const keys = Array.from({ length: 32_000 }, (_, i) => `k${i}`);
    const t0 = performance.now();
    expect(await errorOf(() => parseYaml('big.yaml', `x:\n${keys.map((k) => `  ${k}: 1`).join('\n')}\n  k5: 2\n`))).toBe(
      `big.yaml:${32_000 + 2}:3: duplicate key "k5" (also on line 7); keep one`,
    );
    expect(performance.now() - t0).toBeLessThan(10_000);
    competition('tot', 'train:\n  command: x\n  env:\n    A: "1"\n    A: "2"\n');
    expect(await errorOf(() => loadExperiment(root, 'tot'))).toBe('competitions/tot/experiment.yaml:5:5: duplicate key "A" (also on line 4); keep one');
  });

  it('refuses a spec over the size limit before reading it', async () => {
    competition('toy', `train:\n  command: x\n# ${'x'.repeat(3 * 1024 * 1024)}\n`);
    const t0 = performance.now();
    expect(await errorOf(() => loadExperiment(root, 'toy'))).toBe(
      'competitions/toy/experiment.yaml: 3.0 MiB, over the 64 KiB a spec may be; a spec is configuration: keep data in data.dir and variants in experiments/<name>.yaml',
    );
    expect(performance.now() - t0).toBeLessThan(500);
    competition('tot', `train:\n  command: x\n# ${'x'.repeat(MAX_SPEC_BYTES - 40)}\n`);
    expect((await loadExperiment(root, 'tot')).spec.train.command).toBe('x');
  });

  it('refuses YAML nested deep enough to end the process (a few thousand levels) in one line', async () => {
    competition('toy', `train:\n  command: x\ndeep: ${'['.repeat(30_000)}${']'.repeat(30_000)}\n`);
    expect(await errorOf(() => loadExperiment(root, 'toy'))).toBe('competitions/toy/experiment.yaml: YAML nested more than 64 levels deep; flatten it');
    competition('tot', `train:\n  command: x\ndeep:\n  ${'- '.repeat(20_000)}x\n`);
    expect(await errorOf(() => loadExperiment(root, 'tot'))).toBe('competitions/tot/experiment.yaml: YAML nested more than 64 levels deep; flatten it');
  });

  it('keeps the parse cache working: a second load reads the cached document', async () => {
    competition('toy', 'train:\n  command: x\n');
    await loadExperiment(root, 'toy');
    const cache = path.join(root, '.switchyard/cache');
    const [entry] = readdirSync(cache);
    writeFileSync(path.join(cache, entry!), JSON.stringify({ train: { command: 'from-cache' } }));
    expect((await loadExperiment(root, 'toy')).spec.train.command).toBe('from-cache');
  });

  it('refuses a NUL byte in a train.env value or a command, naming the field', async () => {
    competition('toy', 'train:\n  command: x\n  env:\n    TOKEN: "a\\0b"\n');
    expect(await errorOf(() => loadExperiment(root, 'toy'))).toBe(
      'competitions/toy/experiment.yaml: train.env.TOKEN: contains a NUL byte, which no command or environment variable can hold; remove it',
    );
    competition('tot', 'train:\n  command: [python3, "a\\0"]\n');
    expect(await errorOf(() => loadExperiment(root, 'tot'))).toMatch(/^competitions\/tot\/experiment\.yaml: train\.command\.1: contains a NUL byte/);
  });

  it('refuses a NUL byte in a code path or a cwd in one line, naming the field', async () => {
    const cases: [string, string][] = [
      ['train:\n  command: x\ncode: ["lib\\0x"]\n', 'code.0'],
      ['train:\n  command: x\n  cwd: "a\\0b"\n', 'train.cwd'],
      ['train:\n  command: x\npredict:\n  command: y\n  output: out.csv\n  cwd: "\\0"\n', 'predict.cwd'],
      ['setup:\n  command: s\n  cwd: "a\\0"\ntrain:\n  command: x\n', 'setup.cwd'],
    ];
    for (const [i, [yaml, field]] of cases.entries()) {
      competition(`nul${i}`, yaml);
      expect(await errorOf(() => loadExperiment(root, `nul${i}`))).toBe(
        `competitions/nul${i}/experiment.yaml: ${field}: contains a NUL byte, which no path can hold; remove it`,
      );
    }
  });

  it('refuses a data.dir outside the repository, directly or through a symlink', async () => {
    const outside = mkdtempSync(path.join(os.tmpdir(), 'outside-'));
    try {
      competition('toy', `train:\n  command: x\ndata:\n  dir: ${outside}\n`);
      expect(await errorOf(() => loadExperiment(root, 'toy'))).toBe(
        `competitions/toy/experiment.yaml: data.dir: ${outside} resolves to ${realpathSync(outside)}, outside the repository; move or copy the data into competitions/toy/ and point data.dir there`,
      );
      competition('tot', 'train:\n  command: x\ndata:\n  dir: linked\n');
      symlinkSync(outside, path.join(root, 'competitions/tot/linked'));
      expect(await errorOf(() => loadExperiment(root, 'tot'))).toMatch(/^competitions\/tot\/experiment\.yaml: data\.dir: linked resolves to .*, outside the repository; /);
      competition('tou', 'train:\n  command: x\ndata:\n  dir: ../toy/data\n');
      expect((await loadExperiment(root, 'tou')).dataDir).toBe(path.join(root, 'competitions/toy/data'));
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('refuses a spec that is not UTF-8, naming its line, instead of running a command it never wrote', async () => {
    competition('toy', Buffer.concat([Buffer.from('train:\n  command: python3 "caf'), Buffer.from([0xe9]), Buffer.from('.py"\n')]));
    expect(await errorOf(() => loadExperiment(root, 'toy'))).toBe('competitions/toy/experiment.yaml:2: not UTF-8 text; save the file as UTF-8');
    competition('tot', '\uFEFFtrain:\r\n  command: python3 café.py\r\n');
    expect((await loadExperiment(root, 'tot')).spec.train.command).toBe('python3 café.py');
  });

  it('refuses a spec path that is a folder in one line', async () => {
    competition('toy', 'train:\n  command: x\n');
    mkdirSync(path.join(root, 'competitions/toy/experiments/fast.yaml'));
    expect(await errorOf(() => loadExperiment(root, 'toy/fast'))).toBe(
      'competitions/toy/experiments/fast.yaml: a folder, not a file; the spec is a YAML file of that name: remove the folder or move it aside',
    );
  });

  it('checkName accepts ordinary slugs', async () => {
    expect(checkName('competition', 'titanic-2', 'x')).toBe('titanic-2');
    expect(() => checkName('competition', 'ti tanic', 'x')).toThrow(UserError);
  });
});

describe('challenge.json', () => {
  it('reads one saved with a byte-order mark; malformed JSON is one line naming the file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'challenge-'));
    try {
      writeFileSync(path.join(dir, 'challenge.json'), '\uFEFF{"title": "Penguins", "kaggle": "palmer-penguins"}\n');
      expect(loadChallenge(dir, 'competitions/penguins')).toMatchObject({ title: 'Penguins', kaggle: 'palmer-penguins' });
      writeFileSync(path.join(dir, 'challenge.json'), '{"title": "Penguins",}\n');
      expect(() => loadChallenge(dir, 'competitions/penguins')).toThrow(/^competitions\/penguins\/challenge\.json: malformed JSON: /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('make variables', () => {
  const shape = { experiment: z.string().optional(), seed: z.coerce.number().int().optional() };

  it('reads variables from the environment make exports and from key=value arguments', async () => {
    expect(readVars('train', shape, ['seed=3'], { experiment: 'toy' })).toEqual({ experiment: 'toy', seed: 3 });
    expect(readVars('train', shape, [], { experiment: '' })).toEqual({});
  });

  it('rejects an unknown variable or a bad value in one line', async () => {
    expect(await errorOf(() => readVars('train', shape, ['expriment=toy'], {}))).toBe(
      'make train: unknown variable "expriment"; valid: experiment, seed',
    );
    expect(await errorOf(() => readVars('train', shape, ['seed=abc'], {}))).toMatch(/^make train: seed: "abc" is not valid/);
  });

  it("refuses a variable given to make that the verb does not take, as make lists them in MAKEFLAGS", async () => {
    // `make -s submit experiment=toy backnd=ssh 'message=a b backnd=x' NODE=node18`: backnd reaches the verb only as an environment variable.
    const env = { MAKELEVEL: '1', MAKEFLAGS: 's -- NODE=node18 message=a\\ b\\ backnd=x backnd=ssh experiment=toy', experiment: 'toy', backnd: 'ssh' };
    const submit = { ...shape, message: z.string().optional() };
    expect(await errorOf(() => readVars('submit', submit, [], env))).toBe('make submit: unknown variable "backnd"; valid: experiment, seed, message');
    expect(makeCommandLineNames(env)).toEqual(['message', 'backnd', 'experiment']);
    expect(makeCommandLineNames({ MAKELEVEL: '1', MAKEFLAGS: ' -- experiment=toy' })).toEqual(['experiment']);
    // Only make's command line counts: its own flags, an outer make's variables and the bare environment do not.
    expect(readVars('train', shape, [], { ...env, MAKELEVEL: '2' })).toEqual({ experiment: 'toy' });
    expect(readVars('train', shape, [], { MAKELEVEL: '1', MAKEFLAGS: 'rs -j2', experiment: 'toy', backnd: 'ssh' })).toEqual({ experiment: 'toy' });
  });
});

describe('experiment specs under a build', () => {
  const build = 'build-1';
  const kept = () => readdirSync(path.join(root, '.switchyard/cache')).filter((f) => f.startsWith('spec-valid-'));

  it('keeps the validated spec, and reads it back while the spec and the build are the same', async () => {
    competition('toy', 'train:\n  command: python3 train.py\n');
    const first = await loadExperiment(root, 'toy', { build });
    expect(first.spec).toEqual((await loadExperiment(root, 'toy', { build: null })).spec);
    expect(kept()).toHaveLength(1);
    const file = path.join(root, '.switchyard/cache', kept()[0]!);
    writeFileSync(file, JSON.stringify({ ...first.spec, seed: 99 }));
    expect((await loadExperiment(root, 'toy', { build })).spec.seed).toBe(99);
    expect((await loadExperiment(root, 'toy', { build: 'build-2' })).spec.seed).toBe(0);
    expect(kept()).toHaveLength(1);
  });

  it('validates an edited spec afresh, and refuses a bad one every time, keeping nothing for it', async () => {
    competition('toy', 'train:\n  command: x\nseed: 1\n');
    expect((await loadExperiment(root, 'toy', { build })).spec.seed).toBe(1);
    competition('toy', 'train:\n  command: x\nseed: 2\n');
    expect((await loadExperiment(root, 'toy', { build })).spec.seed).toBe(2);
    competition('toy', 'train:\n  command: x\nseed: two\n');
    const before = kept();
    for (let i = 0; i < 2; i++) expect(await errorOf(() => loadExperiment(root, 'toy', { build }))).toMatch(/^competitions\/toy\/experiment\.yaml: seed: /);
    expect(kept()).toEqual(before);
  });
});
