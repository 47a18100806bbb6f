// An attempt's files in the store and the manifest written after them: a runner killed between
// a file and its manifest leaves the manifest behind, and sealing records the store as it is.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { AttemptFilesMirror, parseAttemptManifest, sealAttemptFiles } from '../../scripts/lib/runner/attempt-files.js';
import { runKeys } from '../../scripts/lib/store/run-keys.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';
import { sha256Hex } from '../../scripts/lib/pins/canonical-json.js';

let tmp: string;
let store: FileStore;
const UNIT = 'toy-default-20260101T0000-00000000';

beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'attempt-files-'));
  store = new FileStore('file://store', path.join(tmp, 'store'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const manifest = async () => parseAttemptManifest(await store.getBytes(runKeys.attemptManifest(UNIT, 1)));

it('a file copied after the last manifest (the runner killed in between) is recorded as the store holds it', async () => {
  const dir = path.join(tmp, 'attempt');
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'metrics.jsonl'), '{"step":1}\n');
  writeFileSync(path.join(dir, 'stdout.log'), 'one\n');
  await new AttemptFilesMirror(store, UNIT, 1, dir).copy(['metrics.jsonl', 'stdout.log']);
  // The runner's next copy: the metrics file lands, the manifest after it never does.
  appendFileSync(path.join(dir, 'metrics.jsonl'), '{"step":2}\n');
  await store.put(runKeys.attemptFile(UNIT, 1, 'metrics.jsonl'), path.join(dir, 'metrics.jsonl'));
  await store.putBytes(runKeys.attemptFile(UNIT, 1, 'status.json'), '{"state":"running"}\n');
  expect((await manifest())!.get('metrics.jsonl')!.sha256).toBe(sha256Hex('{"step":1}\n'));

  await sealAttemptFiles(store, UNIT, 1);
  const sealed = (await manifest())!;
  expect(sealed.get('metrics.jsonl')).toEqual({ size: 22, sha256: sha256Hex('{"step":1}\n{"step":2}\n') });
  expect(sealed.get('stdout.log')).toEqual({ size: 4, sha256: sha256Hex('one\n') });
  expect(sealed.get('status.json')!.sha256).toBe(sha256Hex('{"state":"running"}\n'));
});

it('an attempt whose manifest already covers its files, or that stored none, is left as it is', async () => {
  await sealAttemptFiles(store, UNIT, 1);
  expect(await store.list('runs/')).toEqual([]);
  const dir = path.join(tmp, 'attempt');
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'stdout.log'), 'done\n');
  await new AttemptFilesMirror(store, UNIT, 1, dir).copy(['stdout.log']);
  const before = await store.getBytes(runKeys.attemptManifest(UNIT, 1));
  await sealAttemptFiles(store, UNIT, 1);
  expect((await store.getBytes(runKeys.attemptManifest(UNIT, 1)))!.equals(before!)).toBe(true);
});
