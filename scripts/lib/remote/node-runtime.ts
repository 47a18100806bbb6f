// The Node runtime the runner uses on a host: the host's own when it is >= NODE_MIN, else the
// official binary for this Node version from the npm registry (node-linux-<arch>), cached
// here by npm's integrity check and kept on the host under a versioned folder.
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { NODE_MIN, nodeFits } from '../node-version.js';
import { run } from '../proc.js';
import { UserError } from '../ui/errors.js';
import type { RemoteHost } from './remote-host.js';

const ARCH: Record<string, string> = { x86_64: 'x64', amd64: 'x64', aarch64: 'arm64', arm64: 'arm64' };

/** `node --version` of a command on the host, or null. */
async function remoteNodeVersion(host: RemoteHost, node: string): Promise<string | null> {
  const r = await host.sh('"$1" --version 2>/dev/null', [node], { allowFail: true });
  return r.code === 0 ? r.stdout.trim() : null;
}

/**
 * npm's package of this Node version's official binary for `arch` (node-linux-<arch>), fetched
 * once into this machine's cache (`<state>/cache/node-runtime/`); its path.
 */
export async function nodeRuntimeTarball(stateDir: string, arch: 'x64' | 'arm64'): Promise<string> {
  return packRuntime(stateDir, `node-linux-${arch}@${process.versions.node}`);
}

async function packRuntime(stateDir: string, pkg: string): Promise<string> {
  const dir = path.join(stateDir, 'cache', 'node-runtime');
  mkdirSync(dir, { recursive: true });
  const name = `${pkg.replace('@', '-')}.tgz`;
  if (!existsSync(path.join(dir, name))) {
    await run(['npm', 'pack', pkg, '--pack-destination', dir, '--silent'], { cwd: dir });
  }
  const file = readdirSync(dir).find((f) => f === name);
  if (!file) throw new UserError(`node runtime: npm pack ${pkg} produced no ${name}`);
  return path.join(dir, file);
}

/**
 * Makes <root>/runtime/node a Node >= NODE_MIN on the host; returns what it did, for the step line.
 * `mode: ship` skips the host's own Node (for hosts whose Node is broken or managed elsewhere).
 */
export async function ensureNodeRuntime(host: RemoteHost, stateDir: string, mode: 'auto' | 'ship'): Promise<string> {
  const { layout } = host;
  const current = await remoteNodeVersion(host, layout.node);
  const shipped = (await host.sh('readlink "$1" 2>/dev/null', [layout.node], { allowFail: true })).stdout.includes('/runtime/node-v');
  if (nodeFits(current) && (mode === 'auto' || shipped)) return `node ${current} (already set up)`;

  if (mode === 'auto') {
    const found = (await host.sh('command -v node', [], { allowFail: true })).stdout.trim();
    const version = found ? await remoteNodeVersion(host, found) : null;
    if (found && nodeFits(version)) {
      await host.run(['mkdir', '-p', layout.runtime]);
      await host.run(['ln', '-sfn', found, layout.node]);
      return `node ${version} (the host's own, ${found})`;
    }
  }
  const machine = (await host.run(['uname', '-m'])).stdout.trim();
  const arch = ARCH[machine];
  if (!arch) throw new UserError(`ssh ${host.name}: no Node runtime for machine type ${machine}; install Node >= ${NODE_MIN} there`);
  const pkg = `node-linux-${arch}@${process.versions.node}`;
  const tarball = await packRuntime(stateDir, pkg);
  const dest = `${layout.runtime}/node-v${process.versions.node}-${arch}`;
  await host.pushFileOnce(tarball, `${dest}.tgz`);
  await host.sh('mkdir -p "$1" && tar -xzf "$1.tgz" -C "$1" --strip-components=1 && ln -sfn "node-v$2-$3/bin/node" "$4"', [dest, process.versions.node, arch, layout.node]);
  const version = await remoteNodeVersion(host, layout.node);
  if (!nodeFits(version)) throw new UserError(`ssh ${host.name}: the shipped Node ${pkg} does not run there`);
  return `node ${version} (shipped ${pkg})`;
}
