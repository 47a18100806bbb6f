// cluster_fleet_config.ts compiled once into .switchyard/cache: CommonJS unless it imports a package.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../scripts/lib/config/load-config.js';
import { REPO } from '../helpers/sandbox.js';

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
const compiled = () => readdirSync(path.join(root, '.switchyard/cache')).filter((f) => f.startsWith('config-'));

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
