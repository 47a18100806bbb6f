// make init on a fresh clone: yes=1 keeps the committed inventory, writes .env (0600) from
// .env.example and ends with a passing doctor; make doctor and make train then work; running it
// again changes nothing, and a change it would make is shown and not made without force=1. make
// train-1 and make predict-smoke then run the smoke run beside the full one.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';

let sb: Sandbox;
beforeAll(() => {
  sb = createSandbox();
});
afterAll(() => sb?.cleanup());

const file = (name: string) => path.join(sb.dir, name);
const snapshot = () => ['cluster_fleet_config.ts', '.env'].map((f) => ({ f, text: readFileSync(file(f), 'utf8'), mtime: statSync(file(f)).mtimeMs, mode: statSync(file(f)).mode & 0o777 }));

describe('make init', () => {
  it('on a fresh clone: writes .env 0600 from .env.example, keeps the inventory, ends with the doctor', () => {
    const r = sb.make(['init', 'yes=1']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('cluster_fleet_config.ts: nothing to change');
    expect(r.stdout).toContain('.env: written from .env.example (0600)');
    expect(r.stdout).toMatch(/✓\s+secrets\s+\.env\s+mode 0600/);
    expect(r.stdout).toMatch(/^doctor: \d+ checks passed/m);
    expect(statSync(file('.env')).mode & 0o777).toBe(0o600);
    expect(readFileSync(file('.env'), 'utf8')).toBe(readFileSync(file('.env.example'), 'utf8'));
    expect(sb.git(['status', '--porcelain'])).toBe(''); // .env is ignored, nothing tracked changed
  }, 180_000);

  it('then make doctor passes and make train experiment=penguins trains', () => {
    const d = sb.make(['doctor']);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    const t = sb.make(['train', 'experiment=penguins'], { timeoutMs: 300_000 });
    expect(t.code, t.stdout + t.stderr).toBe(0);
    expect(t.stdout + t.stderr).toMatch(/run penguins-default-\S+ succeeded/);
  }, 330_000);

  it('make train-1 is a short run of its own, and make predict-smoke predicts from it, not from the full run', () => {
    const t = sb.make(['train-1', 'experiment=penguins']);
    expect(t.code, t.stdout + t.stderr).toBe(0);
    const smoke = /run (penguins-default-smoke-\S+) succeeded in [\d.]+s · last checkpoint step 1 /.exec(t.stdout + t.stderr)?.[1];
    expect(smoke, t.stdout + t.stderr).toBeDefined();
    expect(t.stdout + t.stderr).toContain('next: make predict-smoke experiment=penguins');
    // the full run stays the full run's cache hit; the smoke run is its own
    const again = sb.make(['train-1', 'experiment=penguins']);
    expect(again.stdout + again.stderr).toContain(`run ${smoke} already finished`);
    const p = sb.make(['predict-smoke', 'experiment=penguins']);
    expect(p.code, p.stdout + p.stderr).toBe(0);
    expect(p.stdout + p.stderr).toContain(`predicting with run ${smoke}`);
    const q = sb.make(['predict', 'experiment=penguins']);
    expect(q.code, q.stdout + q.stderr).toBe(0);
    expect(q.stdout + q.stderr).toMatch(/predicting with run penguins-default-2/);
  }, 120_000);

  it('again: nothing to change, nothing touched', () => {
    const before = snapshot();
    const r = sb.make(['init', 'yes=1']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('cluster_fleet_config.ts: nothing to change');
    expect(r.stdout).toContain('.env: kept');
    expect(snapshot()).toEqual(before);
  }, 120_000);

  it('shows a change and makes it only when agreed to (force=1 with yes=1)', () => {
    const before = snapshot();
    const refused = sb.make(['init', 'yes=1', 'store=file://.switchyard/other-store']);
    expect(refused.code).toBe(2); // make reports the verb's exit 1 as its own 2
    expect(refused.stdout).toContain("-     store: 'file://.switchyard/store',\n+     store: 'file://.switchyard/other-store',");
    expect(refused.stdout).toContain('cluster_fleet_config.ts: kept as it is (yes=1 never replaces an edited file; add force=1 to)');
    expect(snapshot()).toEqual(before);

    const agreed = sb.make(['init', 'yes=1', 'force=1', 'store=file://.switchyard/other-store']);
    expect(agreed.code, agreed.stdout + agreed.stderr).toBe(0);
    expect(agreed.stdout).toContain('cluster_fleet_config.ts: replaced');
    expect(agreed.stdout).toMatch(/✓\s+store\s+reachable\s+\S*other-store/);
    expect(readFileSync(file('cluster_fleet_config.ts'), 'utf8')).toContain("store: 'file://.switchyard/other-store',");
  }, 120_000);

  it('without a terminal and without yes=1 it says how to answer, in one line', () => {
    const r = sb.make(['init']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^switchyard: init: no terminal to ask on; pass yes=1 .* \(store= s3_endpoint= hosts= /m);
  });
});
