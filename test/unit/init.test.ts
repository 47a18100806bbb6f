// make init's pure parts: the rendered config (the committed one is the fresh render), answers
// read from variables, and the diff shown before anything is replaced.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../scripts/lib/config/config-schema.js';
import { QUESTIONS, type RawConfig } from '../../scripts/lib/init/answers.js';
import { init } from '../../scripts/lib/init/init.js';
import { lineDiff } from '../../scripts/lib/init/line-diff.js';
import { explicitConfig, FRESH_CONFIG, literal, renderConfig } from '../../scripts/lib/init/render-config.js';
import { UserError } from '../../scripts/lib/ui/errors.js';
import { REPO } from '../helpers/sandbox.js';

const answer = (c: RawConfig, key: string, a: string) => QUESTIONS.find((q) => q.key === key)!.apply(c, a);

describe('make init: the rendered config', () => {
  it('renders the defaults as the committed cluster_fleet_config.ts', () => {
    expect(renderConfig(FRESH_CONFIG)).toBe(readFileSync(path.join(REPO, 'cluster_fleet_config.ts'), 'utf8'));
  });

  it('writes only what differs from the defaults, and reads back as the same config', () => {
    const raw: RawConfig = {
      defaults: { store: 's3://bucket/runs', s3: { endpoint: 'http://127.0.0.1:9000', force_path_style: true } },
      hosts: { h1: { host: '10.0.0.5', port: 2222, user: 'root', labels: { gpu: 'a100' } }, 'box-2': { host: 'example.org' } },
      fleets: { lab: ['h1', 'box-2'], big: { hosts: ['h1'], per_host: 2 } },
      clusters: { hpc: { login: 'h1', partition: 'gpu' } },
      batch: {
        gpu: { project: 'my-project', region: 'us-central1', machine_type: 'n2-standard-4', secrets: { AWS_ACCESS_KEY_ID: 'projects/my-project/secrets/a/versions/latest', AWS_SECRET_ACCESS_KEY: 'projects/my-project/secrets/b/versions/1' } },
      },
    };
    const parsed = ConfigSchema.parse(raw);
    const text = renderConfig(explicitConfig(parsed));
    expect(text).toContain(`    h1: { host: '10.0.0.5', port: 2222, user: 'root', labels: { gpu: 'a100' } },`);
    expect(text).toContain(`    'box-2': { host: 'example.org' },`);
    expect(text).toContain(`    lab: ['h1', 'box-2'],`);
    expect(text).toContain(`    big: { hosts: ['h1'], per_host: 2 },`);
    expect(text).toContain(`    hpc: { login: 'h1', partition: 'gpu' },`);
    expect(text).toContain(`    s3: { endpoint: 'http://127.0.0.1:9000', force_path_style: true },`);
    // the entries between `export default defineConfig(` and `);` are a literal the schema reads back as the same config
    const body = text.slice(text.indexOf('defineConfig(') + 'defineConfig('.length, text.lastIndexOf(');'));
    const reread = new Function(`return (${body});`)() as unknown;
    expect(ConfigSchema.parse(reread)).toEqual(parsed);
    expect(renderConfig(explicitConfig(ConfigSchema.parse(reread)))).toBe(text);
  });

  it('quotes strings so any value survives', () => {
    expect(literal({ 'a-b': "it's \\ \"x\"\n" })).toBe(`{ 'a-b': 'it\\'s \\\\ "x"\\n' }`);
  });
});

describe('make init: answers', () => {
  it('reads hosts, fleets, clusters and batch as name=value items, keeping the other fields of an entry', () => {
    let c: RawConfig = { ...FRESH_CONFIG, hosts: { h1: { host: 'old', identity_file: '~/.ssh/k' } } };
    c = answer(c, 'hosts', 'h1=root@10.0.0.5:2222 h2=example.org:22');
    expect(c.hosts).toEqual({ h1: { host: '10.0.0.5', port: 2222, user: 'root', identity_file: '~/.ssh/k' }, h2: { host: 'example.org' } });
    c = answer(c, 'identity_file', '~/.ssh/id_ed25519');
    expect(c.hosts!.h2!.identity_file).toBe('~/.ssh/id_ed25519');
    expect(c.hosts!.h1!.identity_file).toBe('~/.ssh/k');
    c = answer(c, 'fleets', 'lab=h1,h2');
    c = answer(c, 'clusters', 'hpc=h1:gpu local=local');
    c = answer(c, 'batch', 'gpu=my-project/us-central1/n2-standard-4');
    expect(c.fleets).toEqual({ lab: ['h1', 'h2'] });
    expect(c.clusters).toEqual({ hpc: { login: 'h1', partition: 'gpu' }, local: {} });
    expect(c.batch!.gpu).toMatchObject({ project: 'my-project', region: 'us-central1', machine_type: 'n2-standard-4', secrets: { AWS_ACCESS_KEY_ID: 'projects/my-project/secrets/store-key-id/versions/latest' } });
    expect(answer(c, 'hosts', '-').hosts).toEqual({});
    const q = QUESTIONS.find((x) => x.key === 'hosts')!;
    expect(q.current(c)).toBe('h1=root@10.0.0.5:2222 h2=example.org');
  });

  it('a malformed item is one line naming the variable and an example', () => {
    expect(() => answer(FRESH_CONFIG, 'hosts', 'h1')).toThrow('hosts: "h1" is not name=value; e.g. hosts="h1=root@10.0.0.5:2222"');
    expect(() => answer(FRESH_CONFIG, 'hosts', 'h1=a@@b')).toThrow(/is not \[user@\]host\[:port\]/);
    expect(() => answer(FRESH_CONFIG, 'batch', 'gpu=p/r')).toThrow(/is not <project>\/<region>\/<machine type>/);
    expect(() => answer(FRESH_CONFIG, 'clusters', 'hpc=local:gpu:x')).toThrow('clusters: hpc=local:gpu:x is not <login host or local>[:partition]; e.g. clusters="hpc=local:gpu"');
    expect(() => answer(FRESH_CONFIG, 'clusters', 'hpc=:gpu')).toThrow(/is not <login host or local>\[:partition\]/);
    expect(() => answer(FRESH_CONFIG, 'hosts', 'h1=10.0.0.5 h1=10.0.0.6')).toThrow('hosts: h1 is given twice; give each name once, e.g. hosts="h1=root@10.0.0.5:2222"');
  });

  it('asks for an S3 endpoint only with an s3:// store; - means AWS', () => {
    const q = QUESTIONS.find((x) => x.key === 's3_endpoint')!;
    expect(q.applies!.when(FRESH_CONFIG)).toBe(false);
    const s3 = answer(FRESH_CONFIG, 'store', 's3://b/p');
    expect(q.applies!.when(s3)).toBe(true);
    const withEndpoint = q.apply(s3, 'http://127.0.0.1:9000');
    expect(withEndpoint.defaults!.s3).toEqual({ endpoint: 'http://127.0.0.1:9000', force_path_style: true });
    expect(q.apply(withEndpoint, '-').defaults!.s3).toEqual({ force_path_style: true });
  });
});

describe('make init: the diff shown before a replace', () => {
  it('shows removed then added lines with one line of context, and elides the rest', () => {
    expect(lineDiff('a\nb\nc\nd\ne\nf\ng', 'a\nb\nX\nd\ne\nf\ng\nh')).toEqual(['  b', '- c', '+ X', '  d', '  ...', '  g', '+ h']);
    expect(lineDiff('same\n', 'same\n')).toEqual([]);
  });
});

describe('make init: an answer that does not apply', () => {
  it('is refused in one line saying why, before anything is written, rather than dropped', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'init-'));
    try {
      const io = { ask: async () => '', confirm: async () => true, say: () => {} };
      const tried = (vars: Record<string, string>) => init({ root, vars, yes: true, force: true, io }).catch((e: unknown) => e);
      expect(await tried({ store: 'file://runs', fleets: 'lab=h1,h2' })).toEqual(new UserError('make init: fleets=lab=h1,h2 does not apply: there are no hosts to group; give hosts= too, e.g. hosts="h1=root@10.0.0.5 h2=10.0.0.6"'));
      expect(await tried({ store: 'file://runs', s3_endpoint: 'http://127.0.0.1:9000' })).toEqual(new UserError('make init: s3_endpoint=http://127.0.0.1:9000 does not apply: the store is not s3://; give store=s3://<bucket>/<prefix> too'));
      expect(existsSync(path.join(root, 'cluster_fleet_config.ts'))).toBe(false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('make init: .env', () => {
  it('refuses a folder named .env (a virtualenv) before writing anything, leaving its mode alone', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'init-'));
    try {
      mkdirSync(path.join(root, '.env', 'bin'), { recursive: true, mode: 0o755 });
      writeFileSync(path.join(root, '.env.example'), '# KAGGLE_KEY=\n');
      symlinkSync(path.join(REPO, 'scripts'), path.join(root, 'scripts')); // what the written config imports
      const said: string[] = [];
      const io = { ask: async () => '', confirm: async () => true, say: (l: string) => void said.push(l) };
      const err = await init({ root, vars: { store: 'file://runs' }, yes: true, force: true, io }).catch((e: unknown) => e);
      expect(statSync(path.join(root, '.env')).mode & 0o777).toBe(0o755);
      expect(existsSync(path.join(root, 'cluster_fleet_config.ts'))).toBe(false);
      expect(said).toEqual([]);
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toBe('.env: a folder, not the secrets file (a virtualenv named .env?); move it aside (mv .env .venv) and put the KEY=value lines in a file .env');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
