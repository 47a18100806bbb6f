// Files a prepare puts on a host, against what a user's own machine does to it: a push cut off
// midway (the local process killed) and resumed, and two prepares of one host at once.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullUnit, pushCheckpoints } from '../../scripts/lib/remote/host-store.js';
import { RemoteHost, writeFileScript } from '../../scripts/lib/remote/remote-host.js';
import { SshPool } from '../../scripts/lib/ssh/pool.js';
import { targetFromConfig } from '../../scripts/lib/ssh/target.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';
import { waitFor } from '../helpers/sandbox.js';
import { startTestHosts, type TestHost, type TestHosts } from '../helpers/ssh-hosts.js';

let hosts: TestHosts;
let h: TestHost;
let pool: SshPool;
let host: RemoteHost;
let tmp: string;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sy-remote-files-'));
  hosts = await startTestHosts(1, { prefix: 'rfiles' });
  h = hosts.hosts[0]!;
  pool = new SshPool();
  const target = targetFromConfig(h.name, { host: h.host, port: h.port, user: h.user, identity_file: h.identityFile, known_hosts: h.knownHosts }, { connectTimeoutSec: 5 });
  host = new RemoteHost(target, 'switchyard', pool);
}, 60_000);

afterAll(async () => {
  await pool?.close();
  await hosts?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * Runs `transfer` with a slow rsync first on PATH (a wrapper that leaves its pid and becomes the
 * real one at 128 KiB/s) from its `from`th call on, the calls before it at full speed, after
 * running `before` (shell) there; `kill` SIGKILLs that rsync and the process it forked (a
 * pull's receiver), as a closed laptop would, and waits for the transfer to fail.
 */
function slowRsync<T>(transfer: () => Promise<T>, { from = 1, before = '' } = {}): { kill: () => Promise<void> } {
  const bin = mkdtempSync(path.join(tmp, 'bin-'));
  const pidFile = path.join(bin, 'rsync.pid');
  const real = spawnSync('sh', ['-c', 'command -v rsync'], { encoding: 'utf8' }).stdout.trim();
  const count = path.join(bin, 'calls');
  writeFileSync(
    path.join(bin, 'rsync'),
    `#!/bin/sh\nn=$(($(cat '${count}' 2>/dev/null || echo 0) + 1)); echo $n > '${count}'\n[ $n -lt ${from} ] && exec '${real}' "$@"\n${before}\necho $$ > '${pidFile}'\nexec '${real}' --bwlimit=128 "$@"\n`,
  );
  chmodSync(path.join(bin, 'rsync'), 0o755);
  const oldPath = process.env.PATH;
  process.env.PATH = `${bin}:${oldPath}`;
  const done = transfer();
  done.catch(() => {});
  return {
    kill: async () => {
      await waitFor(() => existsSync(pidFile), 30_000, 'the slow rsync to start');
      process.env.PATH = oldPath;
      const pid = Number(readFileSync(pidFile, 'utf8'));
      const forked = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.trim());
      process.kill(pid, 'SIGKILL');
      for (const child of forked) process.kill(Number(child), 'SIGKILL');
      await expect(done).rejects.toThrow();
    },
  };
}

describe('RemoteHost.pushFileOnce', () => {
  it('sends again a file whose push was cut off (its rsync killed), never trusting a partial copy by its name', async () => {
    const src = path.join(tmp, 'node-v1-x64.tgz');
    writeFileSync(src, randomBytes(2 << 20));
    const dest = 'switchyard/runtime/node-v1-x64.tgz';
    const destDir = path.join(h.home, 'switchyard/runtime');
    const inFlight = () => (existsSync(destDir) ? readdirSync(destDir).filter((f) => f.startsWith('.node-v1-x64.tgz')) : []);
    const push = slowRsync(() => host.pushFileOnce(src, dest));
    // Bytes have reached the host: then the local rsync is killed, as a closed laptop or kill -9 would.
    await waitFor(() => inFlight().some((f) => statSync(path.join(destDir, f)).size > 64 << 10), 60_000, () => `a partial copy on the host (${inFlight().join(', ') || 'none'})`);
    await push.kill();
    // The host's rsync sees its connection close and keeps what it got (--partial).
    await waitFor(() => inFlight().length === 0, 30_000, () => `the host's rsync to end (${inFlight().join(', ')})`);

    await host.pushFileOnce(src, dest);
    expect(sha(readFileSync(path.join(h.home, dest)))).toBe(sha(readFileSync(src)));
    expect(await host.pushFileOnce(src, dest)).toBe(false); // a whole copy is not sent again
  }, 120_000);
});

describe('pullUnit', () => {
  it('a pull cut off midway leaves no outputs manifest home before the outputs it names', async () => {
    const unit = 'run-cut';
    const remote = path.join(h.home, 'switchyard/store/runs', unit);
    const model = randomBytes(2 << 20);
    mkdirSync(path.join(remote, 'outputs'), { recursive: true });
    writeFileSync(path.join(remote, 'outputs/model.bin'), model);
    writeFileSync(path.join(remote, 'outputs.manifest.json'), JSON.stringify({ files: [{ path: 'model.bin', sha256: sha(model) }] }));
    const storeDir = path.join(tmp, 'store');
    const store = new FileStore('file://store', storeDir);
    const home = path.join(storeDir, 'runs', unit);
    const inFlight = () => (existsSync(path.join(home, 'outputs')) ? readdirSync(path.join(home, 'outputs')) : []);
    const pull = slowRsync(() => pullUnit(host, store, unit));
    await waitFor(() => inFlight().some((f) => statSync(path.join(home, 'outputs', f)).size > 64 << 10), 60_000, 'part of the outputs home');
    await pull.kill();
    const whole = existsSync(path.join(home, 'outputs/model.bin')) && sha(readFileSync(path.join(home, 'outputs/model.bin'))) === sha(model);
    expect({ manifestHome: existsSync(path.join(home, 'outputs.manifest.json')), whole }).toEqual({ manifestHome: false, whole: false });

    await pullUnit(host, store, unit);
    expect(sha(readFileSync(path.join(home, 'outputs/model.bin')))).toBe(sha(model));
    expect(existsSync(path.join(home, 'outputs.manifest.json'))).toBe(true);
  }, 120_000);

  it('lands a step committed or pruned on the host during a pull only once its files are home', async () => {
    const unit = 'run-moving';
    const hostCkpt = path.join(h.home, 'switchyard/store/runs', unit, 'ckpt');
    const homeCkpt = path.join(tmp, 'moving-store/runs', unit, 'ckpt');
    const commit = (root: string, step: number, blob: Buffer) => {
      mkdirSync(path.join(root, String(step)), { recursive: true });
      writeFileSync(path.join(root, String(step), 'model.bin'), blob);
      const manifest = { format: 'switchyard-ckpt/1', step, run_id: unit, attempt: 1, created_at: new Date().toISOString(), files: [{ path: 'model.bin', size: blob.length, sha256: sha(blob) }] };
      writeFileSync(path.join(root, String(step), 'manifest.json'), JSON.stringify(manifest));
    };
    const store = new FileStore('file://moving-store', path.join(tmp, 'moving-store'));
    commit(hostCkpt, 40, randomBytes(1024));
    await pullUnit(host, store, unit);
    commit(hostCkpt, 50, randomBytes(1024));
    // Step 60, whose manifest sorts before its blob, is committed as the files' pass begins;
    // step 50 is pruned then (manifest, then blob), after the host's manifests were read.
    const staged = path.join(tmp, 'moving-60');
    commit(staged, 60, randomBytes(2 << 20));
    const before = `rm -rf '${hostCkpt}/50'; cp -r '${staged}/60' '${hostCkpt}/60.tmp' && mv '${hostCkpt}/60.tmp' '${hostCkpt}/60'`;
    const pull = slowRsync(() => pullUnit(host, store, unit), { from: 2, before });
    const blob60 = path.join(homeCkpt, '60/model.bin');
    const partial = () => readdirSync(path.join(homeCkpt, '60')).map((f) => path.join(homeCkpt, '60', f));
    await waitFor(() => existsSync(path.join(homeCkpt, '60')) && partial().some((f) => statSync(f).size > 64 << 10), 60_000, 'part of step 60 home');
    await pull.kill();
    const manifests = () => readdirSync(homeCkpt).filter((s) => existsSync(path.join(homeCkpt, s, 'manifest.json'))).sort();
    expect({ manifests: manifests(), whole60: existsSync(blob60) && statSync(blob60).size === 2 << 20 }).toEqual({ manifests: ['40'], whole60: false });

    await pullUnit(host, store, unit);
    expect(manifests()).toEqual(['40', '60']);
    expect(sha(readFileSync(blob60))).toBe(sha(readFileSync(path.join(staged, '60/model.bin'))));
    expect(readFileSync(path.join(homeCkpt, '60/manifest.json'))).toEqual(readFileSync(path.join(hostCkpt, '60/manifest.json')));
  }, 120_000);
});

describe('pushCheckpoints', () => {
  it("leaves the host holding home's steps only: a step an abandoned attempt left there is not restored over them", async () => {
    const unit = 'run-back';
    const stepFiles = (root: string, step: number) => path.join(root, 'runs', unit, 'ckpt', String(step));
    const hostStore = path.join(h.home, 'switchyard/store');
    const storeDir = path.join(tmp, 'push-store');
    // Home has steps 30 and 45 (45 from another host); this host still has its own 50 (recorded lost when it went away).
    for (const [root, step] of [[storeDir, 30], [storeDir, 45], [hostStore, 30], [hostStore, 50]] as const) {
      mkdirSync(stepFiles(root, step), { recursive: true });
      writeFileSync(path.join(stepFiles(root, step), 'manifest.json'), `{"step":${step}}\n`);
    }
    await pushCheckpoints(host, new FileStore('file://store', storeDir), unit);
    expect(readdirSync(path.join(hostStore, 'runs', unit, 'ckpt')).sort()).toEqual(['30', '45']);
  });
});

describe('RemoteHost.writeFile', () => {
  it('lets two writers of one file (two prepares of one host) both succeed, the file whole', async () => {
    const dir = path.join(tmp, 'two-writers');
    const file = path.join(dir, 'run-attempt.mjs');
    const content = Buffer.from(`${'x'.repeat(100_000)}\n`);
    const script = writeFileScript({});
    // The first writer's content is half sent and its stdin still open when the second writes the file whole.
    const first = spawn('sh', ['-c', script, 'sh', file, dir], { stdio: ['pipe', 'ignore', 'pipe'] });
    let firstErr = '';
    first.stderr.setEncoding('utf8').on('data', (c: string) => (firstErr += c));
    const firstExit = new Promise<number | null>((resolve) => first.on('close', resolve));
    first.stdin.write(content.subarray(0, 50_000));
    await waitFor(() => existsSync(dir) && readdirSync(dir).some((f) => f !== 'run-attempt.mjs' && statSync(path.join(dir, f)).size >= 50_000), 30_000, 'the first writer to have written half');
    const second = spawnSync('sh', ['-c', script, 'sh', file, dir], { input: content, encoding: 'utf8' });
    expect(second.status, second.stderr).toBe(0);
    expect(sha(readFileSync(file))).toBe(sha(content));
    first.stdin.end(content.subarray(50_000));
    expect(await firstExit, firstErr).toBe(0);
    expect(sha(readFileSync(file))).toBe(sha(content));
  });
});
