// One test sshd host ready for SshBackend tests that run the real runner: this process's node
// as the host's runtime, and beside it here a project folder and a file store, as a bootstrapped
// host and a project would have them.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SshBackendOptions } from '../../scripts/lib/backends/ssh.js';
import { RemoteHost } from '../../scripts/lib/remote/remote-host.js';
import type { SshPool } from '../../scripts/lib/ssh/pool.js';
import { targetFromConfig, type SshTarget } from '../../scripts/lib/ssh/target.js';
import { FileStore } from '../../scripts/lib/store/file-store.js';
import { REPO } from './sandbox.js';
import { startTestHosts, type TestHosts } from './ssh-hosts.js';

export const RUNNER = path.join(REPO, 'dist/runner/run-attempt.mjs');

export interface RunnerHost {
  hosts: TestHosts;
  /** the host's name in every handle: h1 */
  name: string;
  target: SshTarget;
  /** a folder of the test's own, removed by cleanup */
  tmp: string;
  /** the host over a pool's connections */
  over(pool: SshPool): RemoteHost;
  /** SshBackend options for this host alone (one slot), its project and store here */
  backendOptions(openHost: () => Promise<RemoteHost>): SshBackendOptions;
  cleanup(): Promise<void>;
}

export async function startRunnerHost(prefix: string, pool: SshPool): Promise<RunnerHost> {
  if (!existsSync(RUNNER)) throw new Error(`${RUNNER} is missing: run make build`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  const hosts = await startTestHosts(1, { prefix });
  const h = hosts.hosts[0]!;
  const target = targetFromConfig(h.name, { host: h.host, port: h.port, user: h.user, identity_file: h.identityFile, known_hosts: h.knownHosts }, { connectTimeoutSec: 3 });
  const over = (p: SshPool) => new RemoteHost(target, 'switchyard', p);
  const host = over(pool);
  await host.run(['mkdir', '-p', host.layout.runtime]);
  await host.run(['ln', '-sf', process.execPath, host.layout.node]);
  mkdirSync(path.join(tmp, 'project'));
  writeFileSync(path.join(tmp, 'project', 'README'), 'a project\n');
  return {
    hosts,
    name: h.name,
    target,
    tmp,
    over,
    backendOptions: (openHost) => ({
      name: 'ssh',
      hosts: [h.name],
      openHost,
      perHost: 1,
      lostAfterMs: 3000,
      gpus: 0,
      syncParallel: 1,
      projectRoot: path.join(tmp, 'project'),
      store: new FileStore('file://store', path.join(tmp, 'store')),
      runnerBundle: RUNNER,
    }),
    cleanup: async () => {
      await hosts.cleanup();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}
