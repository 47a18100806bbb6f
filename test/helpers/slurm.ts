// A real single-node SLURM cluster for tests (../shared/TESTBED.md, "SLURM"): munged, slurmctld
// and slurmd from Debian's packages, started in a temp folder with fast scheduler intervals,
// cred_expire=5 (a requeued job runs again within seconds) and DefMemPerCPU (jobs run side by
// side), without slurmdbd (sacct then says accounting is off: the backend falls back to squeue).
//
// `enter` starts the daemons inside a test ssh host (test/helpers/ssh-hosts.ts: its network,
// mount and UTS namespaces), so a login node reached over ssh submits to them and its jobs see
// its files; the host's /etc/slurm is then the cluster's config folder, bind-mounted there. The
// temp folder is under /var/tmp, which a host shares with this machine (its /tmp is its own).
// Without `enter` they run here, and `env` (SLURM_CONF) points clients at them.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { createSandbox, type Sandbox } from './sandbox.js';
import { inventoryEntries, startTestHosts, type TestHosts } from './ssh-hosts.js';

const exec = promisify(execFile);

export interface TestSlurm {
  dir: string;
  conf: string;
  /** the environment a client here needs (SLURM_CONF) */
  env: Record<string, string>;
  /** runs a SLURM client command (scontrol, scancel, squeue, ...) where the daemons run; stdout */
  client(argv: string[]): Promise<string>;
  /** stops slurmctld (jobs and slurmd stay): the cluster stops answering, as one whose controller is down */
  stopController(): Promise<void>;
  /** stops every job, then the daemons, and removes the folder; safe to call twice */
  cleanup(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

function slurmConf(T: string, host: string, ports: [number, number]): string {
  return `ClusterName=switchyard-test
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${ports[0]}
SlurmdPort=${ports[1]}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${T}/run/munge.socket,cred_expire=5
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
StateSaveLocation=${T}/state
SlurmdSpoolDir=${T}/spool
SlurmctldPidFile=${T}/run/slurmctld.pid
SlurmdPidFile=${T}/run/slurmd.pid
SlurmctldLogFile=${T}/log/slurmctld.log
SlurmdLogFile=${T}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=100
MailProg=/bin/true
MpiDefault=none
ReturnToService=2
MinJobAge=600
# Small, so that a run of four shards needs two submissions (SLURM's default is 1001).
MaxArraySize=3
SlurmdParameters=config_overrides
KillWait=10
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=${host} NodeAddr=127.0.0.1 CPUs=8 Sockets=1 CoresPerSocket=8 ThreadsPerCore=1 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
`;
}

export async function startSlurm(opts: { enter?: { argv: string[]; env: Record<string, string> } | null } = {}): Promise<TestSlurm> {
  mkdirSync('/var/tmp', { recursive: true });
  const T = mkdtempSync('/var/tmp/switchyard-slurm-');
  chmodSync(T, 0o755);
  for (const d of ['munge', 'run', 'etc', 'state', 'spool', 'log']) mkdirSync(path.join(T, d), { mode: d === 'munge' ? 0o700 : 0o755 });
  const conf = path.join(T, 'etc', 'slurm.conf');
  const enter = opts.enter?.argv ?? [];
  const env = { ...process.env, ...(opts.enter?.env ?? {}), SLURM_CONF: conf };
  const children: ChildProcess[] = [];
  const there = (argv: string[], timeout = 60_000) => exec(enter[0] ?? argv[0]!, [...enter.slice(1), ...(enter.length ? argv : argv.slice(1))], { env, timeout }).then((r) => r.stdout);
  const daemon = (argv: string[], log: string) => {
    const child = spawn(enter[0] ?? argv[0]!, [...enter.slice(1), ...(enter.length ? argv : argv.slice(1))], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => out.push(b));
    child.on('exit', () => {
      if (!removed) writeFileSync(path.join(T, 'log', log), Buffer.concat(out));
    });
    children.push(child);
    return child;
  };
  let stopped = false;
  /** the cluster's folder is gone: a daemon that exits only now has nowhere to leave its log */
  let removed = false;
  let ctld: ChildProcess | null = null;
  const stopController = async () => {
    if (!ctld || ctld.exitCode !== null || ctld.signalCode !== null) return;
    const exited = new Promise((r) => ctld!.once('exit', r));
    ctld.kill('SIGKILL');
    await exited;
  };
  const cleanup = async () => {
    if (stopped) return;
    stopped = true;
    await there(['scancel', '--quiet', '--full', '--user=root'], 10_000).catch(() => {});
    for (const child of children) child.kill('SIGTERM');
    const exited = (c: ChildProcess) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r)));
    // slurmd may wait on jobs it is ending: a few seconds, then SIGKILL (its jobs go below).
    await Promise.race([Promise.all(children.map(exited)), new Promise((r) => setTimeout(r, 3_000).unref())]);
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    // Each writes its log as it exits: before the folder goes, not into a folder gone.
    await Promise.race([Promise.all(children.map(exited)), new Promise((r) => setTimeout(r, 5_000).unref())]);
    // Every process of the cluster's jobs carries SLURM_CONF=<ours>: the runners and slurmstepd.
    for (const pid of processesOf(conf)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    if (opts.enter) for (const m of ['/etc/slurm', '/etc/hosts']) await there(['umount', m], 10_000).catch(() => {});
    removed = true;
    rmSync(T, { recursive: true, force: true });
  };
  try {
    const host = (await there(['hostname', '-s'])).trim();
    writeFileSync(conf, slurmConf(T, host, [await freePort(), await freePort()]));
    await there(['mungekey', '--create', `--keyfile=${T}/munge/munge.key`]);
    daemon(['munged', '--foreground', `--socket=${T}/run/munge.socket`, `--key-file=${T}/munge/munge.key`, `--log-file=${T}/munge/munged.log`, `--pid-file=${T}/run/munged.pid`, `--seed-file=${T}/munge/munged.seed`], 'munged.out');
    await until(() => readdirSync(path.join(T, 'run')).includes('munge.socket'), 'munged');
    if (opts.enter) {
      // Inside the host: its name resolves (slurmctld listens on it), its own /sys (from `ip netns
      // exec`) gets the cgroup v1 layout slurmd checks for (a tmpfs with the named systemd
      // hierarchy; jobs are tracked by process, not cgroup), and /etc/slurm is the cluster's config.
      writeFileSync(path.join(T, 'hosts'), `${readFileSync('/etc/hosts', 'utf8')}\n127.0.0.1 ${host}\n`);
      await there(['mount', '--bind', path.join(T, 'hosts'), '/etc/hosts']);
      await there(['sh', '-c', 'mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup && mkdir /sys/fs/cgroup/systemd && mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd']);
      await there(['mount', '--bind', path.join(T, 'etc'), '/etc/slurm']);
    }
    ctld = daemon(['slurmctld', '-D', '-f', conf], 'slurmctld.out');
    daemon(['slurmd', '-D', '-f', conf], 'slurmd.out');
    await untilAsync(async () => /idle/.test(await there(['sinfo', '-h', '-o', '%T']).catch(() => '')), 'the node to be idle', T);
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { dir: T, conf, env: { SLURM_CONF: conf }, client: (argv) => there(argv), stopController, cleanup };
}

/** Pids of processes whose environment names this cluster's config. */
function processesOf(conf: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(`SLURM_CONF=${conf}`);
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function until(ok: () => boolean, what: string): Promise<void> {
  return untilAsync(async () => ok(), what);
}

async function untilAsync(ok: () => Promise<boolean>, what: string, logs?: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await ok())) {
    if (Date.now() > deadline) {
      const tail = logs ? readdirSync(path.join(logs, 'log')).map((f) => `${f}: ${readFileSync(path.join(logs, 'log', f), 'utf8').split('\n').slice(-5).join('\n')}`).join('\n') : '';
      throw new Error(`slurm: timed out waiting for ${what}\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The SLURM test bed: `count` test hosts, a cluster whose daemons run inside h1 (its login
 * node, so its jobs see its files), and a sandbox whose inventory has the hosts and the
 * `clusters` entries given (lines of `name: { ... },`).
 */
export async function startSlurmTestBed(count: number, prefix: string, clusters: string): Promise<{ hosts: TestHosts; slurm: TestSlurm; sb: Sandbox }> {
  const hosts = await startTestHosts(count, { prefix });
  const enter = hosts.enter('h1');
  if (!enter) throw new Error('the SLURM tests need network namespaces (root): the login node runs the daemons in its own');
  const slurm = await startSlurm({ enter });
  const sb = createSandbox();
  const config = path.join(sb.dir, 'cluster_fleet_config.ts');
  writeFileSync(
    config,
    readFileSync(config, 'utf8')
      .replace('  hosts: {},', `  hosts: {\n${inventoryEntries(hosts).join('\n')}\n  },`)
      .replace('  clusters: {},', `  clusters: {\n${clusters}\n  },`),
  );
  return { hosts, slurm, sb };
}
