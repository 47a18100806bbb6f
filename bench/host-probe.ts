// Host probes: one probe round of 8 hosts through the warm connection pool (as the dashboard's
// timer has it), against the same probe command run host after host by a fresh `ssh host cmd`
// each (target >= 5x faster). Runs against real sshd in network namespaces
// (test/helpers/ssh-hosts.ts), as root.
import { spawnSync } from 'node:child_process';
import { ConfigSchema } from '../scripts/lib/config/config-schema.js';
import { closeProbeConnections, probeHosts } from '../scripts/lib/probe/index.js';
import { gpuTimeoutSec, probeArgv } from '../scripts/lib/probe/probe-script.js';
import { sshArgv, targetFromConfig } from '../scripts/lib/ssh/target.js';
import { startTestHosts } from '../test/helpers/ssh-hosts.js';
import { median, now } from './lib/measure.js';

const HOSTS = 8;
const ROUNDS = 7;
const TARGET = 5;

const hosts = await startTestHosts(HOSTS, { prefix: 'syprobe' });
try {
  const entries = Object.fromEntries(
    hosts.hosts.map((h) => [h.name, { host: h.host, port: h.port, user: h.user, identity_file: h.identityFile, known_hosts: h.knownHosts }]),
  );
  const project = { config: ConfigSchema.parse({ hosts: entries }) };
  const fresh = hosts.hosts.map((h) => {
    const e = project.config.hosts[h.name]!;
    return sshArgv(targetFromConfig(h.name, e), probeArgv(e.root, gpuTimeoutSec(e.connect_timeout)));
  });

  const warm = await probeHosts(project); // the pool's connections, as a running timer has them
  const down = warm.filter((h) => h.state !== 'up');
  if (down.length) throw new Error(`bench: ${down.map((h) => `${h.host}: ${h.error}`).join('; ')}`);

  const pooled: number[] = [];
  const sequential: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    let t0 = now();
    await probeHosts(project);
    pooled.push(now() - t0);
    t0 = now();
    for (const argv of fresh) {
      const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      if (r.status !== 0) throw new Error(`bench: ${argv.at(-1)?.slice(0, 40)} exited ${r.status}: ${r.stderr}`);
    }
    sequential.push(now() - t0);
  }

  const ratio = median(sequential) / median(pooled);
  console.log(`host probes (median of ${ROUNDS} rounds, interleaved; ${HOSTS} hosts, one probe command each)`);
  console.log(`  one round, pooled and concurrent   ${(median(pooled) * 1000).toFixed(1)} ms`);
  console.log(`  fresh ssh, host after host         ${(median(sequential) * 1000).toFixed(1)} ms`);
  console.log(`  speed-up                           ${ratio.toFixed(1)}x   target >= ${TARGET}x   ${ratio >= TARGET ? 'MET' : 'MISSED'}`);
  if (ratio < TARGET) process.exitCode = 1;
} finally {
  await closeProbeConnections();
  await hosts.cleanup();
}
