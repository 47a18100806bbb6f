// cluster_fleet_config.ts compiled once into .switchyard/cache: CommonJS unless it imports a package.
// What it exports is validated once per value and build, the result kept beside the copy.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../scripts/lib/config/load-config.js';
import { validatedOnce } from '../../scripts/lib/validation-cache.js';
import { REPO } from '../helpers/sandbox.js';

const require = createRequire(import.meta.url);

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'load-config-'));
  mkdirSync(path.join(root, 'scripts/lib/config'), { recursive: true });
  cpSync(path.join(REPO, 'scripts/lib/config/define-config.ts'), path.join(root, 'scripts/lib/config/define-config.ts'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function writeConfig(head: string, host: string): void {
  writeFileSync(
    path.join(root, 'cluster_fleet_config.ts'),
    `import { defineConfig } from './scripts/lib/config/define-config.js';\n${head}\nexport default defineConfig({ hosts: { a: { host: ${host} } } });\n`,
  );
}
const cached = () => readdirSync(path.join(root, '.switchyard/cache'));
const compiled = () => cached().filter((f) => /^config-[0-9a-f]{16}/.test(f));
const results = () => cached().filter((f) => f.startsWith('config-valid-'));

describe('loadConfig', () => {
  it('reads a config of plain values through a CommonJS copy, and reuses it', async () => {
    writeConfig('', `'a.lan'`);
    expect((await loadConfig(root)).hosts.a!.host).toBe('a.lan');
    expect(compiled()).toEqual([expect.stringMatching(/^config-[0-9a-f]{16}\.cjs$/)]);
    expect((await loadConfig(root)).hosts.a!.host).toBe('a.lan');
    expect(compiled()).toHaveLength(1);
  });

  it('imports a config that imports a package as an ES module', async () => {
    writeConfig(`import { format } from 'node:util';`, `format('%s.lan', 'a')`);
    expect((await loadConfig(root)).hosts.a!.host).toBe('a.lan');
    expect(compiled()).toEqual([expect.stringMatching(/^config-[0-9a-f]{16}\.mjs$/)]);
  });

  it('compiles again once the config changes', async () => {
    writeConfig('', `'a.lan'`);
    await loadConfig(root);
    writeConfig('', `'b.lan'`);
    expect((await loadConfig(root)).hosts.a!.host).toBe('b.lan');
    expect(compiled()).toHaveLength(2);
  });

  it('compiles again once a file the config imports changes, and reuses the copy while none does', async () => {
    const inventory = (host: string) => writeFileSync(path.join(root, 'inventory.ts'), `export const host = ${host};\n`);
    writeConfig(`import { host } from './inventory.js';`, 'host');
    inventory(`'a.lan'`);
    expect((await loadConfig(root)).hosts.a!.host).toBe('a.lan');
    inventory(`'b.lan'`);
    expect((await loadConfig(root)).hosts.a!.host).toBe('b.lan');
    const copies = compiled().filter((f) => f.endsWith('.cjs'));
    expect(copies).toHaveLength(2);
    expect((await loadConfig(root)).hosts.a!.host).toBe('b.lan');
    expect(compiled().filter((f) => f.endsWith('.cjs'))).toEqual(copies);
  });
});

describe('loadConfig under a build', () => {
  const build = 'build-1';
  /** Rewrites the one kept result, so that a read of it is seen in what loadConfig returns. */
  function tamperResult(host: string): void {
    const file = path.join(root, '.switchyard/cache', results()[0]!);
    const config = JSON.parse(readFileSync(file, 'utf8'));
    config.hosts.a.host = host;
    writeFileSync(file, JSON.stringify(config));
  }

  it('keeps what it validated, and reads it back while the value and the build are the same', async () => {
    writeConfig('', `'a.lan'`);
    const first = await loadConfig(root, build);
    expect(results()).toHaveLength(1);
    expect(first).toEqual(await loadConfig(root, null));
    tamperResult('kept.lan');
    expect((await loadConfig(root, build)).hosts.a!.host).toBe('kept.lan');
  });

  it('validates again under another build, and drops the results of other builds', async () => {
    writeConfig('', `'a.lan'`);
    await loadConfig(root, build);
    tamperResult('kept.lan');
    expect((await loadConfig(root, 'build-2')).hosts.a!.host).toBe('a.lan');
    expect(results()).toHaveLength(1);
  });

  it('validates again once the exported value changes, also when its source does not', async () => {
    writeConfig('', `process.env.SY_TEST_HOST ?? 'a.lan'`);
    await loadConfig(root, build);
    process.env.SY_TEST_HOST = 'b.lan';
    // as the next verb would: a new process evaluates the compiled copy afresh
    for (const loaded of Object.keys(require.cache)) if (loaded.startsWith(root)) delete require.cache[loaded];
    try {
      expect((await loadConfig(root, build)).hosts.a!.host).toBe('b.lan');
    } finally {
      delete process.env.SY_TEST_HOST;
    }
  });

  it('refuses a bad value every time, keeping nothing', async () => {
    writeConfig('', '42');
    for (let i = 0; i < 2; i++) await expect(loadConfig(root, build)).rejects.toThrow(/^cluster_fleet_config\.ts: hosts\.a\.host: /);
    expect(results()).toEqual([]);
  });

  it('keeps nothing for a value JSON cannot carry whole, and so still refuses a mistake in it', async () => {
    writeFileSync(
      path.join(root, 'cluster_fleet_config.ts'),
      `import { defineConfig } from './scripts/lib/config/define-config.js';\nexport default defineConfig({ hosts: { a: { host: 'a.lan', port: undefined } } });\n`,
    );
    expect((await loadConfig(root, build)).hosts.a!.port).toBe(22);
    expect(results()).toEqual([]);
    writeFileSync(
      path.join(root, 'cluster_fleet_config.ts'),
      `export default { hosts: { a: { host: 'a.lan', typo: undefined } } };\n`,
    );
    await expect(loadConfig(root, build)).rejects.toThrow(/unrecognized key|typo/i);
  });

  it('validates again when the kept result cannot be read', async () => {
    writeConfig('', `'a.lan'`);
    await loadConfig(root, build);
    writeFileSync(path.join(root, '.switchyard/cache', results()[0]!), '{"hosts": {"a": ');
    expect((await loadConfig(root, build)).hosts.a!.host).toBe('a.lan');
  });

  it('returns what it validated when the result cannot be kept', async () => {
    const notAFolder = path.join(root, 'cache-file');
    writeFileSync(notAFolder, '');
    const checks: unknown[] = [];
    const validate = async (raw: unknown) => (checks.push(raw), { checked: raw });
    for (let i = 0; i < 2; i++) expect(await validatedOnce({ dir: notAFolder, kind: 'config', build }, { a: 1 }, validate)).toEqual({ checked: { a: 1 } });
    expect(checks).toHaveLength(2);
  });

  it('run from source (no build), validates every time and keeps nothing', async () => {
    writeConfig('', `'a.lan'`);
    await loadConfig(root, null);
    expect(results()).toEqual([]);
  });
});
