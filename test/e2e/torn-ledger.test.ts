// A ledger whose last line was cut off mid-way (a crash or a full disk during an append) never
// stops training: the next `make train` moves the torn bytes aside, records the repair, says so
// once, and trains; `make verify` accepts the repaired ledger.
//
// The test leaves exactly what a crash mid-append leaves: the store anchor already names the
// line (it is written first), the line is cut off, and the local head (written last) still
// names the line before it.
import { readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { hashLine } from '../../scripts/lib/ledger/format.js';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';

let sb: Sandbox;
beforeAll(() => {
  sb = createSandbox();
});
afterAll(() => sb?.cleanup());

it('the next make train repairs a torn last line, trains, and make verify passes', () => {
  const first = sb.make(['train', 'experiment=penguins/fast', 'seed=1']);
  expect(first.code, first.stdout + first.stderr).toBe(0);
  const ledger = path.join(sb.dir, '.switchyard/ledger.jsonl');
  const before = readFileSync(ledger);
  const lastStart = before.lastIndexOf(0x0a, before.length - 2) + 1;
  const cutAt = lastStart + Math.floor((before.length - 1 - lastStart) / 2);
  truncateSync(ledger, cutAt);
  const torn = before.subarray(lastStart, cutAt);
  const kept = before.subarray(0, lastStart - 1).toString().split('\n');
  writeFileSync(`${ledger}.head`, JSON.stringify({ seq: kept.length, sha256: hashLine(kept.at(-1)!) }) + '\n');

  const next = sb.make(['train', 'experiment=penguins/fast', 'seed=2']);
  const out = next.stdout + next.stderr;
  expect(next.code, out).toBe(0);
  expect(out).toMatch(/succeeded/);
  const announced = out.split('\n').filter((l) => l.includes('cut off'));
  expect(announced, out).toHaveLength(1);
  expect(announced[0]).toMatch(/^switchyard: ledger \.switchyard\/ledger\.jsonl: its last line was cut off \(\d+ bytes of an interrupted append\); moved them to ledger\.jsonl\.torn-\S+ and recorded the repair$/);

  const recovery = readdirSync(path.join(sb.dir, '.switchyard')).filter((f) => f.startsWith('ledger.jsonl.torn-'));
  expect(recovery).toHaveLength(1);
  expect(readFileSync(path.join(sb.dir, '.switchyard', recovery[0]!)).equals(torn)).toBe(true);
  const lines = readFileSync(ledger, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
  const repaired = lines.filter((e) => e.type === 'ledger.repaired');
  expect(repaired).toEqual([expect.objectContaining({ seq: before.subarray(0, lastStart).toString().split('\n').length, recovery: recovery[0], bytes: torn.length })]);
  expect(lines.at(-1)).toMatchObject({ type: 'attempt.ended', state: 'succeeded' });

  const verify = sb.make(['verify']);
  expect(verify.code, verify.stdout + verify.stderr).toBe(0);
});
