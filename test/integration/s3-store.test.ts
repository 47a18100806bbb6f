// S3Store against a real S3-compatible server (s3rver on loopback, a child process).
import { randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveCheckpoint, verifyStep } from '../../scripts/lib/ckpt/checkpoint.js';
import { hashFile, sha256Hex } from '../../scripts/lib/hash.js';
import { pruneStoredSteps, restoreLatest, storedSteps, uploadStep } from '../../scripts/lib/runner/store-checkpoints.js';
import { openStore } from '../../scripts/lib/store/open-store.js';
import { configProblem } from '../../scripts/lib/store/s3-client.js';
import type { BufferPool } from '../../scripts/lib/store/s3-multipart.js';
import { S3Store, type S3StoreOptions } from '../../scripts/lib/store/s3-store.js';
import { UserError } from '../../scripts/lib/ui/errors.js';
import { startCountingProxy } from '../helpers/counting-proxy.js';
import { S3RVER_KEYS, s3rverObjectPath, startS3rver, type S3rver } from '../helpers/s3rver.js';
import { readAll } from '../helpers/read-all.js';

let server: S3rver;
let tmp: string;
const stores: S3Store[] = [];
let prefixes = 0;

beforeAll(async () => {
  server = await startS3rver();
  tmp = mkdtempSync(path.join(os.tmpdir(), 's3-store-'));
});
afterAll(async () => {
  for (const s of stores) s.close();
  await server?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** A store on its own prefix of the test bucket. */
function s3Store(opts: Partial<S3StoreOptions> & { url?: string } = {}): S3Store {
  const url = opts.url ?? `s3://${server.bucket}/t${++prefixes}`;
  const store = new S3Store(url, { endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_KEYS, ...opts });
  stores.push(store);
  return store;
}

/** Flips one byte of an object where s3rver keeps it, as bit rot or a bad disk would. */
function tamperOnDisk(store: S3Store, key: string, at = 0): void {
  const file = s3rverObjectPath(server, store.locate(key).slice(`s3://${server.bucket}/`.length));
  const bytes = readFileSync(file);
  bytes[at] = bytes[at]! ^ 0xff;
  writeFileSync(file, bytes);
}

/** Overwrites a few bytes of `src` inside its third 5 MiB part: one not read yet when the first part is reported. */
function changeInPartThree(src: string): void {
  const fd = openSync(src, 'r+');
  writeSync(fd, Buffer.from('changed'), 0, 7, 11 * 1024 * 1024);
  closeSync(fd);
}

async function userError(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  const line = (err as Error).message;
  expect(line).not.toContain('\n');
  return line;
}

describe('S3Store on s3rver', () => {
  it('puts, gets, lists, stats and deletes objects with verified hashes', async () => {
    const store = s3Store();
    const src = path.join(tmp, 'a.txt');
    writeFileSync(src, 'hello');
    expect(await store.put('runs/x/a.txt', src)).toEqual({ size: 5, sha256: sha256Hex('hello') });
    expect(await store.putBytes('runs/x/b/c.txt', 'world')).toEqual({ size: 5, sha256: sha256Hex('world') });
    expect(await store.putBytes('runs/y.txt', '')).toEqual({ size: 0, sha256: sha256Hex('') });
    expect(await store.list('runs/x/')).toEqual(['runs/x/a.txt', 'runs/x/b/c.txt']);
    expect(await store.list('')).toEqual(['runs/x/a.txt', 'runs/x/b/c.txt', 'runs/y.txt']);
    expect((await store.getBytes('runs/x/b/c.txt'))!.toString()).toBe('world');
    const dest = path.join(tmp, 'back', 'a.txt');
    expect(await store.get('runs/x/a.txt', dest)).toEqual({ size: 5, sha256: sha256Hex('hello') });
    expect(readFileSync(dest, 'utf8')).toBe('hello');
    expect(readdirSync(path.dirname(dest))).toEqual(['a.txt']);
    expect(await store.stat('runs/x/b/c.txt')).toEqual({ size: 5, sha256: sha256Hex('world') });
    expect(await store.getBytes('runs/x/missing')).toBeNull();
    expect(await store.stat('runs/x/missing')).toBeNull();
    await expect(store.get('runs/x/missing', path.join(tmp, 'nope'))).rejects.toThrow(/runs\/x\/missing: no such object/);
    await store.delete('runs/x/a.txt');
    await store.delete('runs/x/never-there');
    expect(await store.list('runs/x/')).toEqual(['runs/x/b/c.txt']);
    expect(store.locate('runs/x/b/c.txt')).toBe(`s3://${server.bucket}/t${prefixes}/runs/x/b/c.txt`);
  });

  it('gets into a folder removed since an earlier get made it (a discarded work folder)', async () => {
    const store = s3Store();
    await store.putBytes('ckpt/3/opt/state.json', randomBytes(300_000));
    const dest = path.join(tmp, 'again', '3.partial', 'opt', 'state.json');
    const first = await store.get('ckpt/3/opt/state.json', dest);
    rmSync(path.join(tmp, 'again'), { recursive: true });
    expect(await store.get('ckpt/3/opt/state.json', dest)).toEqual(first);
    expect(readdirSync(path.dirname(dest))).toEqual(['state.json']);
  });

  it('lists no folder markers (keys ending in /, as a console makes for a folder): they are no objects', async () => {
    const store = s3Store();
    await store.putBytes('runs/x/a.txt', 'a');
    const raw = rawClient();
    for (const marker of ['runs/', 'runs/x/']) await raw.send(new PutObjectCommand({ Bucket: server.bucket, Key: `t${prefixes}/${marker}`, Body: '' }));
    raw.destroy();
    expect(await store.list('runs/')).toEqual(['runs/x/a.txt']);
    expect(await store.list('')).toEqual(['runs/x/a.txt']);
  });

  it('stats objects written without sha256 metadata by hashing them', async () => {
    const store = s3Store();
    const raw = rawClient();
    await raw.send(new PutObjectCommand({ Bucket: server.bucket, Key: `t${prefixes}/plain.txt`, Body: 'by another tool' }));
    raw.destroy();
    expect(await store.stat('plain.txt')).toEqual({ size: 15, sha256: sha256Hex('by another tool') });
    expect((await store.getBytes('plain.txt'))!.toString()).toBe('by another tool');
  });

  it('reads an object from a byte on, transferring only those bytes (a log read, unverified); a missing one is null', async () => {
    const proxy = await startCountingProxy(server.endpoint);
    try {
      const store = s3Store({ endpoint: proxy.endpoint });
      const bytes = randomBytes(300_000); // several HTTP chunks
      await store.putBytes('logs/stdout.log', bytes);
      const served = () => proxy.served(`/${server.bucket}/t${prefixes}/logs/stdout.log`);
      const before = served();
      expect(await readAll(store.read('logs/stdout.log', { start: 123_457 }))).toEqual(bytes.subarray(123_457));
      expect(served() - before).toBe(bytes.length - 123_457);
      expect(await readAll(store.read('logs/stdout.log'))).toEqual(bytes);
      expect(await readAll(store.read('logs/stdout.log', { start: bytes.length }))).toEqual(Buffer.alloc(0));
      expect(await readAll(store.read('logs/stdout.log', { start: bytes.length + 7 }))).toEqual(Buffer.alloc(0));
      await store.putBytes('logs/stderr.log', '');
      expect(await readAll(store.read('logs/stderr.log'))).toEqual(Buffer.alloc(0));
      expect(await store.read('logs/missing.log')).toBeNull();
      expect(await store.read('logs/missing.log', { start: 10 })).toBeNull();
    } finally {
      await proxy.close();
    }
  });

  it('reads an object from a byte on from a server that ignores Range, its earlier bytes left out', async () => {
    const proxy = await startCountingProxy(server.endpoint, { ignoreRange: true });
    try {
      const store = s3Store({ endpoint: proxy.endpoint });
      const bytes = randomBytes(300_000);
      await store.putBytes('logs/stdout.log', bytes);
      const served = () => proxy.served(`/${server.bucket}/t${prefixes}/logs/stdout.log`);
      const before = served();
      expect(await readAll(store.read('logs/stdout.log', { start: 123_457 }))).toEqual(bytes.subarray(123_457));
      expect(served() - before).toBe(bytes.length); // the server sent it all: the proxy is such a server
      expect(await readAll(store.read('logs/stdout.log', { start: bytes.length + 7 }))).toEqual(Buffer.alloc(0));
    } finally {
      await proxy.close();
    }
  });

  it('lists more than 1,000 keys across pages', async () => {
    // s3rver pages with DES continuation tokens: the helper runs it with --openssl-legacy-provider.
    const store = s3Store();
    const keys = Array.from({ length: 1005 }, (_, i) => `many/k${String(i).padStart(4, '0')}`);
    for (let i = 0; i < keys.length; i += 25) await Promise.all(keys.slice(i, i + 25).map((k) => store.putBytes(k, k)));
    expect(await store.list('many/')).toEqual(keys);
  });

  it('round-trips a multipart object with matching SHA-256 and reports progress', async () => {
    const seen: { label: string; done: number; total: number; stopped: boolean }[] = [];
    const store = s3Store({
      progress: (label) => {
        const p = { label, done: 0, total: 0, stopped: false };
        seen.push(p);
        return { update: (d, t) => Object.assign(p, { done: d, total: t }), stop: () => void (p.stopped = true) };
      },
    });
    const src = path.join(tmp, 'big.bin');
    writeFileSync(src, randomBytes(40 * 1024 * 1024 + 12_345)); // 6 parts, the last one short
    const local = await hashFile(src);
    expect(await store.put('ckpt/big.bin', src)).toEqual(local);
    expect(await store.stat('ckpt/big.bin')).toEqual(local);
    const dest = path.join(tmp, 'big-back.bin');
    expect(await store.get('ckpt/big.bin', dest)).toEqual(local);
    expect(await hashFile(dest)).toEqual(local);
    expect(seen.map((p) => p.label)).toEqual([`upload ${store.locate('ckpt/big.bin')}`, `download ${store.locate('ckpt/big.bin')}`]);
    expect(seen.every((p) => p.stopped && p.done === local.size && p.total === local.size)).toBe(true);
    rmSync(dest);
    const bytes = randomBytes(20 * 1024 * 1024 + 1);
    expect(await store.putBytes('ckpt/bytes.bin', bytes)).toEqual({ size: bytes.length, sha256: sha256Hex(bytes) });
    expect((await store.getBytes('ckpt/bytes.bin'))!.equals(bytes)).toBe(true);
  });

  it('detects bytes damaged on the way up and deletes the object', async () => {
    const store = s3Store();
    // Flips a byte of every request body after S3Store computed its digests, as a bad link would.
    const client = (store as unknown as { client: S3Client }).client;
    client.middlewareStack.add(
      (next) => async (args) => {
        const req = args.request as { body?: unknown };
        if (Buffer.isBuffer(req.body) && req.body.length > 100) {
          const damaged = Buffer.from(req.body);
          damaged[50] = damaged[50]! ^ 0xff; // always a change (a fill could write the byte already there)
          req.body = damaged;
        }
        return next(args);
      },
      { step: 'build', name: 'damage' },
    );
    const src = path.join(tmp, 'damaged.bin');
    writeFileSync(src, randomBytes(20 * 1024 * 1024));
    await expect(store.put('ckpt/damaged.bin', src)).rejects.toThrow(new RegExp(`^${store.locate('ckpt/damaged.bin')}: part \\d reached the server damaged`));
    await expect(store.putBytes('small.bin', randomBytes(1000))).rejects.toThrow(`${store.locate('small.bin')}: stored bytes do not match the source`);
    expect(await store.list('')).toEqual([]);
  });

  it('leaves an object another writer put after its own: overwritten, not damaged', async () => {
    const store = s3Store();
    const other = s3Store({ url: store.locate('') });
    const theirs = Buffer.from('{"closed": {"state": "succeeded", "at": "2026-12-01T17:37:02.000Z"}}\n');
    // The other writer's put lands between this store's put and its check of what it put.
    let raced = false;
    const client = (store as unknown as { client: S3Client }).client;
    client.middlewareStack.add(
      (next) => async (args) => {
        if ((args.request as { method?: string }).method === 'HEAD' && !raced) {
          raced = true;
          await other.putBytes('agent/runs/r.json', theirs);
        }
        return next(args);
      },
      { step: 'build', name: 'other-writer' },
    );
    const mine = Buffer.from('{"closed": {"state": "succeeded", "at": "2026-12-01T17:37:01.000Z"}}\n');
    expect(await store.putBytes('agent/runs/r.json', mine)).toEqual({ size: mine.length, sha256: sha256Hex(mine) });
    expect(raced).toBe(true);
    expect((await store.getBytes('agent/runs/r.json'))!.equals(theirs)).toBe(true);
  });

  it('uploads files of more parts than the store has buffers, several at once, byte for byte', async () => {
    const MIB = 1024 * 1024;
    const store = s3Store({ partSize: 5 * MIB, partBuffers: 2, queueSize: 4 });
    const pool = (store as unknown as { pool: BufferPool }).pool;
    let held = 0;
    let mostHeld = 0;
    const take = pool.take.bind(pool);
    const give = pool.give.bind(pool);
    pool.take = async () => {
      const buf = await take();
      mostHeld = Math.max(mostHeld, ++held);
      return buf;
    };
    pool.give = (buf) => {
      held--;
      give(buf);
    };
    const files = [31 * MIB + 7, 26 * MIB].map((size, i) => {
      const src = path.join(tmp, `pooled-${i}.bin`);
      writeFileSync(src, randomBytes(size)); // 7 and 6 parts through 2 buffers
      return src;
    });
    const put = await Promise.all(files.map((src, i) => store.put(`pooled/${i}.bin`, src)));
    expect(put).toEqual(await Promise.all(files.map((src) => hashFile(src))));
    expect(mostHeld).toBe(2);
    expect(held).toBe(0);
    for (const [i, src] of files.entries()) {
      const dest = path.join(tmp, `pooled-back-${i}.bin`);
      await store.get(`pooled/${i}.bin`, dest);
      expect(readFileSync(dest).equals(readFileSync(src))).toBe(true);
    }
  });

  it('refuses a file that changes while its parts go up, completing no object', async () => {
    const MIB = 1024 * 1024;
    let onPart = (): void => {};
    // One buffer, one part in flight: part 2 is read only after part 1 is sent and reported.
    const store = s3Store({
      partSize: 5 * MIB,
      partBuffers: 1,
      queueSize: 1,
      progress: () => ({ update: () => onPart(), stop: () => {} }),
    });
    const src = path.join(tmp, 'changing.bin');
    writeFileSync(src, randomBytes(12 * MIB));
    onPart = () => {
      onPart = () => {};
      changeInPartThree(src);
    };
    await expect(store.put('ckpt/changing.bin', src)).rejects.toThrow(new Error(`${src} changed while it was uploaded to ${store.locate('ckpt/changing.bin')}`));
    expect(await store.list('')).toEqual([]);

    writeFileSync(src, randomBytes(12 * MIB));
    onPart = () => {
      onPart = () => {};
      truncateSync(src, 7 * MIB); // ends inside part 2, before it is read
    };
    await expect(store.put('ckpt/changing.bin', src)).rejects.toThrow(
      new Error(`${src} changed while it was uploaded to ${store.locate('ckpt/changing.bin')} (it ended at ${7 * MIB} bytes)`),
    );
    expect(await store.list('')).toEqual([]);

    // Both failures handed the one buffer back: the next upload goes through.
    writeFileSync(src, randomBytes(12 * MIB));
    expect(await store.put('ckpt/changing.bin', src)).toEqual(await hashFile(src));
  });

  it('a file that changes while its parts go up leaves the object already at its key', async () => {
    const MIB = 1024 * 1024;
    let onPart = (): void => {};
    const store = s3Store({ partSize: 5 * MIB, partBuffers: 1, queueSize: 1, progress: () => ({ update: () => onPart(), stop: () => {} }) });
    const src = path.join(tmp, 'replaced.bin');
    writeFileSync(src, randomBytes(12 * MIB));
    const before = await store.put('outputs/model.bin', src);
    writeFileSync(src, randomBytes(12 * MIB));
    onPart = () => {
      onPart = () => {};
      changeInPartThree(src);
    };
    await expect(store.put('outputs/model.bin', src)).rejects.toThrow(`${src} changed while it was uploaded`);
    expect(await store.stat('outputs/model.bin')).toEqual(before);
  });

  it('refuses a file unlike what its caller expected before sending it, leaving the object at its key', async () => {
    const MIB = 1024 * 1024;
    const store = s3Store({ partSize: 5 * MIB });
    const unexpected = (key: string) => `${store.locate(key)}: the file does not match its expected SHA-256 (changed since it was hashed)`;
    // A file of several parts that grew since its manifest recorded it.
    const big = path.join(tmp, 'resized.bin');
    writeFileSync(big, randomBytes(12 * MIB));
    const bigBefore = await store.put('ckpt/7/model.bin', big);
    appendFileSync(big, 'more');
    await expect(store.put('ckpt/7/model.bin', big, bigBefore)).rejects.toThrow(unexpected('ckpt/7/model.bin'));
    expect(await store.stat('ckpt/7/model.bin')).toEqual(bigBefore);
    // A file of one part rewritten in place, its size unchanged.
    const small = path.join(tmp, 'rewritten.json');
    writeFileSync(small, '{"lr": 0.1}');
    const smallBefore = await store.put('ckpt/7/opt.json', small);
    writeFileSync(small, '{"lr": 0.2}');
    await expect(store.put('ckpt/7/opt.json', small, smallBefore)).rejects.toThrow(unexpected('ckpt/7/opt.json'));
    expect(await store.stat('ckpt/7/opt.json')).toEqual(smallBefore);
  });

  it('puts a file that grows while it goes up (a log) as it was when the put began', async () => {
    const MIB = 1024 * 1024;
    const store = s3Store({ partSize: 5 * MIB });
    const src = path.join(tmp, 'growing.log');
    writeFileSync(src, randomBytes(12 * MIB));
    // The experiment keeps writing its log on every turn of the event loop while the put runs.
    let putting = true;
    const write = (): void => {
      if (!putting) return;
      appendFileSync(src, 'step 12 loss 0.25\n');
      setImmediate(write);
    };
    setImmediate(write);
    const put = await store.put('attempts/1/stdout.log', src).finally(() => (putting = false));
    const now = readFileSync(src);
    expect(now.length).toBeGreaterThan(put.size);
    expect(put).toEqual({ size: put.size, sha256: sha256Hex(now.subarray(0, put.size)) });
    expect(await store.stat('attempts/1/stdout.log')).toEqual(put);
  });

  it('aborts a multipart upload whose completion fails, so no parts are left behind', async () => {
    const MIB = 1024 * 1024;
    const store = s3Store({ partSize: 5 * MIB });
    const sent: string[] = [];
    const client = (store as unknown as { client: S3Client }).client;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        sent.push(context.commandName!);
        if (context.commandName === 'CompleteMultipartUploadCommand') throw new Error('InternalError: we encountered an internal error');
        return next(args);
      },
      { step: 'initialize', name: 'failing-complete' },
    );
    const src = path.join(tmp, 'incomplete.bin');
    writeFileSync(src, randomBytes(12 * MIB));
    await expect(store.put('ckpt/incomplete.bin', src)).rejects.toThrow('InternalError');
    expect(sent.slice(-2)).toEqual(['CompleteMultipartUploadCommand', 'AbortMultipartUploadCommand']);
    expect(await store.list('')).toEqual([]);
  });

  it('refuses tampered objects, naming the key', async () => {
    const store = s3Store();
    const src = path.join(tmp, 'mid.bin');
    writeFileSync(src, randomBytes(12 * 1024 * 1024));
    await store.put('ckpt/mid.bin', src);
    tamperOnDisk(store, 'ckpt/mid.bin', 9 * 1024 * 1024);
    const dest = path.join(tmp, 'tampered', 'mid.bin');
    await expect(store.get('ckpt/mid.bin', dest)).rejects.toThrow(`${store.locate('ckpt/mid.bin')}: corrupt`);
    expect(readdirSync(path.dirname(dest))).toEqual([]); // neither the file nor a temp file

    // different bytes re-put with the old metadata
    const old = await store.putBytes('small.txt', 'original');
    const raw = rawClient();
    await raw.send(new PutObjectCommand({ Bucket: server.bucket, Key: `t${prefixes}/small.txt`, Body: 'forged!!', Metadata: { sha256: old.sha256 } }));
    raw.destroy();
    await expect(store.getBytes('small.txt')).rejects.toThrow(`${store.locate('small.txt')}: corrupt`);
  });

  it('explains bad credentials, a missing bucket and an unreachable endpoint in one line', async () => {
    const badKey = s3Store({ credentials: { accessKeyId: 'NOT-S3RVER', secretAccessKey: 'x' } });
    expect(await userError(badKey.list(''))).toMatch(
      /^store s3:\/\/switchyard-test\/t\d+: access denied \(InvalidAccessKeyId\); check AWS_ACCESS_KEY_ID\/AWS_SECRET_ACCESS_KEY in \.env$/,
    );
    // A wrong secret (SignatureDoesNotMatch) cannot be tested here: s3rver checks only the key id of SigV4 requests.

    const noBucket = s3Store({ url: 's3://no-such-bucket/p' });
    expect(await userError(noBucket.stat('k'))).toBe(
      'store s3://no-such-bucket/p: bucket "no-such-bucket" does not exist; create it or fix defaults.store in cluster_fleet_config.ts',
    );

    const t0 = Date.now();
    const down = s3Store({ endpoint: 'http://127.0.0.1:9' });
    expect(await userError(down.getBytes('k'))).toMatch(
      /^store s3:\/\/switchyard-test\/t\d+: cannot reach http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\); check defaults\.s3\.endpoint$/,
    );
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('opens through openStore with keys from .env and config.defaults.s3', async () => {
    const root = mkdtempSync(path.join(tmp, 'root-'));
    writeFileSync(path.join(root, '.env'), 'AWS_ACCESS_KEY_ID=S3RVER\nAWS_SECRET_ACCESS_KEY=S3RVER\n');
    const store = await openStore(`s3://${server.bucket}/opened`, root, { endpoint: server.endpoint, region: 'us-east-1', force_path_style: true });
    stores.push(store as S3Store);
    expect(await store.putBytes('x.txt', 'via openStore')).toEqual({ size: 13, sha256: sha256Hex('via openStore') });
    expect(await store.list('')).toEqual(['x.txt']);
  });
});

describe('checkpoint sync against S3Store', () => {
  const RUN = 'toy-default-20260101T0000-00000000';

  it('uploads, prunes and restores steps, falling back past a corrupt blob', async () => {
    const store = s3Store();
    const local = path.join(tmp, 'ckpt-local');
    for (const step of [1, 2, 3]) {
      const files = { 'model.bin': randomBytes(9 * 1024 * 1024 + step), 'opt/state.json': `{"step":${step}}` };
      const dir = await saveCheckpoint(local, step, files, { keep: 10 });
      const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
      const up = await uploadStep(store, RUN, dir, manifest);
      expect(up.key).toBe(`runs/${RUN}/ckpt/${step}/manifest.json`);
    }
    expect(await storedSteps(store, RUN)).toEqual([1, 2, 3].map((step) => ({ step, hasManifest: true })));
    expect(await pruneStoredSteps(store, RUN, 2)).toEqual([1]);
    expect((await storedSteps(store, RUN)).map((s) => s.step)).toEqual([2, 3]);

    const corrupt = `runs/${RUN}/ckpt/3/model.bin`;
    tamperOnDisk(store, corrupt, 100);
    const lines: string[] = [];
    const restoreDir = path.join(tmp, 'restored');
    expect(await restoreLatest(store, RUN, restoreDir, (l) => lines.push(l))).toBe(2);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^skipping stored step 3: /);
    expect(lines[0]).toContain(corrupt);
    expect(readdirSync(restoreDir)).toEqual(['2']);
    expect((await verifyStep(path.join(restoreDir, '2'))).ok).toBe(true);
  });
});

describe('configProblem', () => {
  const settings = { endpoint: 'http://10.255.255.1:9000', region: 'eu-west-1', forcePathStyle: true };
  const line = (err: object) => configProblem(err, 's3://b/p', 'b', settings)?.message;

  it('turns failures s3rver cannot produce into one-line fixes', () => {
    expect(line({ name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } })).toBe(
      'store s3://b/p: access denied (SignatureDoesNotMatch); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in .env',
    );
    const connect = '@smithy/node-http-handler - the request socket did not establish a connection with the server within the configured timeout of 3000 ms.';
    expect(line({ name: 'TimeoutError', message: connect })).toBe(
      'store s3://b/p: cannot reach http://10.255.255.1:9000 (connect timeout); check defaults.s3.endpoint',
    );
    const idle = '@smithy/node-http-handler - the request socket timed out after 10000 ms of inactivity (configured by client requestHandler).';
    expect(line({ name: 'TimeoutError', message: idle })).toBe('store s3://b/p: http://10.255.255.1:9000 stopped answering (10000 ms without data); try again, or check the server');
    expect(line({ name: 'CredentialsProviderError' })).toMatch(/^store s3:\/\/b\/p: no AWS credentials; /);
    expect(line({ name: 'PermanentRedirect', $metadata: { httpStatusCode: 301 } })).toMatch(/^store s3:\/\/b\/p: bucket "b" is not in region eu-west-1; /);
    expect(line({ name: 'InternalError', $metadata: { httpStatusCode: 500 } })).toBeUndefined();
  });
});

function rawClient(): S3Client {
  return new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_KEYS });
}
