// Real SSH hosts for tests ("a fleet", "a rented box") on this one machine, following
// ../shared/TESTBED.md, section "SSH hosts":
//
//   - one network namespace per host on a private bridge with its own /24 (10.213.X.0/24:
//     the bridge is .1, host hN is .(10+N)), one sshd per namespace listening on port 22;
//   - each host has its own hostname (UTS namespace), HOME (/root) and /tmp: bind mounts inside
//     the host's private mount namespace, held open by a small "holder" process (`sleep`) that
//     sshd and execOn enter with nsenter; the rest of the filesystem (/usr, node, python3, this
//     repository) is shared;
//   - the client side is an ed25519 key, a known_hosts holding every host key (strict checking
//     stays on) and an ssh config with one Host block per host.
//
// Where namespaces cannot be created (or SWITCHYARD_TEST_HOSTS=loopback), the hosts are several
// sshd on 127.0.0.1 with free ports instead. That loses: a hostname of their own (all report this
// machine's), a private /tmp (TMPDIR and TMUX_TMPDIR point at a per-host directory instead, so
// plain tmux stays per host but a literal /tmp path is shared), a private /root (HOME points at
// the per-host directory and sessions start there, but an absolute /root path is this machine's),
// and the user is whoever runs the tests. /run/sshd is created on this machine if missing.
//
// Every process of a host (holder, sshd and its sessions, whatever those start) carries
// SWITCHYARD_TEST_HOST=<prefix>/<name> in its environment; cleanup finds them by that and by
// network namespace, so tmux servers and nohup'd jobs do not outlive the test.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

export interface TestHost {
  name: string; // 'h1', 'h2', ...
  host: string; // address to connect to (e.g. 10.213.0.11), or 127.0.0.1 in loopback fallback
  port: number; // 22 in namespaces; a free port in loopback fallback
  user: string; // 'root'
  identityFile: string; // private key (ed25519, no passphrase), mode 0600
  knownHosts: string; // a known_hosts file holding every test host's key (strict checking stays ON)
  home: string; // the host's own HOME as seen from this machine's filesystem (bind-mounted as /root inside the host's namespace)
}

export interface TestHosts {
  hosts: TestHost[];
  /** this machine as the hosts reach it (the bridge's address; 127.0.0.1 in the loopback fallback): where a service they use listens */
  gateway: string;
  /** ssh config text (Host blocks with HostName/Port/User/IdentityFile/UserKnownHostsFile/StrictHostKeyChecking yes/BatchMode yes) for the hosts, and the path of a file holding it */
  sshConfigFile: string;
  /** stop one host's sshd (and keep its processes running, like a network partition of ssh); start it again */
  stopSshd(name: string): Promise<void>;
  startSshd(name: string): Promise<void>;
  /** run argv inside a host's namespace/mounts as that host would (for assertions), returns stdout */
  execOn(name: string, argv: string[]): Promise<string>;
  /**
   * Sends `signal` to the host's own processes whose command line contains `pattern`; returns how
   * many. Hosts share this machine's process table: a `pkill` on one would reach every host's,
   * and other tests' processes too.
   */
  killOn(name: string, pattern: string, signal: NodeJS.Signals): number;
  /** the `NAME=VALUE` every process of the host carries in its environment */
  mark(name: string): string;
  /**
   * The argv prefix that starts a long-lived process inside a host (its network, mount and UTS
   * namespaces: a service the host's sessions reach on its loopback, with its files), and the
   * environment its sessions get; null in the loopback fallback, where a host has no namespaces.
   */
  enter(name: string): { argv: string[]; env: Record<string, string> } | null;
  /** kill everything started (tmux servers of each host first, then sshd, then namespaces and the bridge), remove temp dirs; safe to call twice and after a failure */
  cleanup(): Promise<void>;
}

const MAX_HOSTS = 50;
const BASE = path.join(os.tmpdir(), 'switchyard-test-hosts');
const MARKER = 'SWITCHYARD_TEST_HOST';
/** Inside a host its etc/ is mounted at /run/switchyard-test-<prefix>-<name>: sshd's command line names it. */
const INSIDE_ETC = '/run/switchyard-test-';
const SSHD = ['/usr/sbin/sshd', '/usr/local/sbin/sshd', '/sbin/sshd'].find((p) => fs.existsSync(p)) ?? '/usr/sbin/sshd';
const SFTP_SERVER = ['/usr/lib/openssh/sftp-server', '/usr/libexec/sftp-server', '/usr/lib/ssh/sftp-server'].find((p) => fs.existsSync(p));
const READY_TIMEOUT_MS = 10_000;

/** PATH inside a host: the usual root PATH, with the directory of the node running the tests first if it is elsewhere. */
const STANDARD_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
const NODE_DIR = path.dirname(process.execPath);
const HOST_PATH = (STANDARD_PATH.includes(NODE_DIR) ? STANDARD_PATH : [NODE_DIR, ...STANDARD_PATH]).join(':');

type Mode = 'netns' | 'loopback';

interface HostState extends TestHost {
  marker: string; // value of SWITCHYARD_TEST_HOST for this host's processes
  dir: string; // <run>/<name>: etc/ (sshd config, host key), home/, tmp/, sshd.log
  etc: string;
  tmp: string;
  netns: string;
  etcInside: string; // where etc/ is mounted inside the host (netns mode): INSIDE_ETC<prefix>-<name>
  holder?: Child;
  sshd?: Child;
}

interface Run {
  prefix: string;
  token: string; // tells this run's owner.json from a later run that took the prefix over
  mode: Mode;
  dir: string;
  subnet: string; // '10.213.X' (netns mode)
  bridge: string;
  hosts: HostState[];
}

// ---------------------------------------------------------------------------------------------
// Entry point

/** The hosts as `hosts:` entries of cluster_fleet_config.ts, one line each (connect timeout 3 s). */
export function inventoryEntries(hosts: TestHosts): string[] {
  return hosts.hosts.map(
    (h) => `    ${h.name}: { host: '${h.host}', port: ${h.port}, user: '${h.user}', identity_file: '${h.identityFile}', known_hosts: '${h.knownHosts}', connect_timeout: 3 },`,
  );
}

export async function startTestHosts(count: number, opts: { prefix?: string } = {}): Promise<TestHosts> {
  if (!Number.isInteger(count) || count < 1 || count > MAX_HOSTS) throw new Error(`startTestHosts: count must be 1..${MAX_HOSTS}`);
  const prefix = opts.prefix ?? `sy${randomBytes(4).readUInt32BE().toString(36).padStart(6, '0').slice(-6)}`;
  // Interface names are at most 15 characters: `<prefix>-h50` must fit.
  if (!/^[a-z][a-z0-9]{1,7}$/.test(prefix)) throw new Error(`startTestHosts: prefix must be 2-8 of [a-z0-9], got ${prefix}`);

  fs.mkdirSync(BASE, { recursive: true, mode: 0o700 });
  await reapDeadRuns();
  await takeOverPrefix(prefix);

  const run = newRun(prefix, count);
  try {
    if (run.mode === 'netns') await createNamespaces(run).catch((err) => fallBackToLoopback(run, err));
    else await createFiles(run);
    await Promise.all(run.hosts.map((h) => startHostSshd(run, h)));
  } catch (err) {
    await cleanupRun(run);
    throw err;
  }
  return api(run);
}

async function createNamespaces(run: Run): Promise<void> {
  await createFiles(run);
  await createNetwork(run);
  await Promise.all(run.hosts.map((h) => startHolder(h)));
}

/** Namespaces or mounts not allowed here (a container without CAP_NET_ADMIN/CAP_SYS_ADMIN): start over on 127.0.0.1. */
async function fallBackToLoopback(run: Run, err: unknown): Promise<void> {
  console.warn(`ssh-hosts: network namespaces unavailable, using sshd on 127.0.0.1 instead: ${firstLine(err)}`);
  await destroyRun(run.prefix);
  fs.mkdirSync(run.dir, { recursive: true, mode: 0o700 });
  writeOwner(run);
  run.mode = 'loopback';
  await createFiles(run);
}

function api(run: Run): TestHosts {
  const host = (name: string) => {
    const h = run.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no test host ${name}`);
    return h;
  };
  return {
    hosts: run.hosts.map(({ name, host, port, user, identityFile, knownHosts, home }) => ({ name, host, port, user, identityFile, knownHosts, home })),
    gateway: run.mode === 'netns' ? `${run.subnet}.1` : '127.0.0.1',
    sshConfigFile: path.join(run.dir, 'ssh_config'),
    stopSshd: async (name) => stopHostSshd(host(name)),
    startSshd: async (name) => startHostSshd(run, host(name)),
    execOn: async (name, argv) => execOnHost(run, host(name), argv),
    killOn: (name, pattern, signal) => killOnHost(host(name), pattern, signal),
    mark: (name) => `${MARKER}=${host(name).marker}`,
    enter: (name) => (run.mode === 'netns' ? { argv: ['nsenter', ...enterHolder(host(name)), '--'], env: hostEnv(run, host(name)) } : null),
    cleanup: async () => cleanupRun(run),
  };
}

// ---------------------------------------------------------------------------------------------
// Layout and files

function newRun(prefix: string, count: number): Run {
  const dir = path.join(BASE, prefix);
  const mode: Mode = process.env.SWITCHYARD_TEST_HOSTS === 'loopback' ? 'loopback' : 'netns';
  const run: Run = { prefix, token: randomBytes(8).toString('hex'), mode, dir, subnet: '', bridge: `${prefix}-br`, hosts: [] };
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeOwner(run);
  for (let i = 1; i <= count; i++) {
    const name = `h${i}`;
    const hostDir = path.join(dir, name);
    run.hosts.push({
      name,
      host: '',
      port: 22,
      user: 'root',
      identityFile: path.join(dir, 'id_ed25519'),
      knownHosts: path.join(dir, 'known_hosts'),
      home: path.join(hostDir, 'home'),
      marker: `${prefix}/${name}`,
      dir: hostDir,
      etc: path.join(hostDir, 'etc'),
      tmp: path.join(hostDir, 'tmp'),
      netns: `${prefix}-${name}`,
      etcInside: `${INSIDE_ETC}${prefix}-${name}`,
    });
  }
  return run;
}

function writeOwner(run: Run): void {
  fs.writeFileSync(path.join(run.dir, 'owner.json'), JSON.stringify({ pid: process.pid, token: run.token }));
}

/** Keys, sshd configs, known_hosts and the client config for the run's current mode. */
async function createFiles(run: Run): Promise<void> {
  if (run.mode === 'netns') run.subnet = claimSubnet(run.prefix, await subnetsInUse());
  const user = run.mode === 'netns' ? 'root' : os.userInfo().username;
  for (const [i, h] of run.hosts.entries()) {
    for (const d of [h.etc, h.home, h.tmp]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    fs.chmodSync(h.tmp, 0o1777);
    h.user = user;
    h.host = run.mode === 'netns' ? `${run.subnet}.${11 + i}` : '127.0.0.1';
    h.port = run.mode === 'netns' ? 22 : await freePort();
  }
  const keygen = (file: string, comment: string) =>
    fs.existsSync(file) ? Promise.resolve('') : sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  const client = path.join(run.dir, 'id_ed25519');
  await Promise.all([keygen(client, `switchyard-test@${run.prefix}`), ...run.hosts.map((h) => keygen(path.join(h.etc, 'host_key'), h.marker))]);

  const clientPub = fs.readFileSync(`${client}.pub`, 'utf8');
  const knownHosts: string[] = [];
  for (const h of run.hosts) {
    fs.writeFileSync(path.join(h.etc, 'authorized_keys'), clientPub);
    fs.writeFileSync(path.join(h.etc, 'sshd_config'), sshdConfig(run, h));
    const [type, key] = fs.readFileSync(path.join(h.etc, 'host_key.pub'), 'utf8').trim().split(/\s+/);
    knownHosts.push(`${knownHostsName(h)} ${type} ${key}`);
  }
  fs.writeFileSync(path.join(run.dir, 'known_hosts'), knownHosts.join('\n') + '\n', { mode: 0o600 });
  fs.writeFileSync(path.join(run.dir, 'ssh_config'), run.hosts.map(hostBlock).join('\n'), { mode: 0o600 });
}

function knownHostsName(h: TestHost): string {
  return h.port === 22 ? h.host : `[${h.host}]:${h.port}`;
}

function hostBlock(h: TestHost): string {
  return [
    `Host ${h.name}`,
    `  HostName ${h.host}`,
    `  Port ${h.port}`,
    `  User ${h.user}`,
    `  IdentityFile "${h.identityFile}"`,
    `  IdentitiesOnly yes`,
    `  UserKnownHostsFile "${h.knownHosts}"`,
    `  GlobalKnownHostsFile /dev/null`,
    `  StrictHostKeyChecking yes`,
    `  BatchMode yes`,
    `  LogLevel ERROR`,
    '',
  ].join('\n');
}

/** The environment of a host's commands: what sshd's SetEnv gives a session, for execOn too. */
function hostEnv(run: Run, h: HostState): Record<string, string> {
  const home = run.mode === 'netns' ? '/root' : h.home;
  const env: Record<string, string> = { PATH: HOST_PATH, HOME: home, USER: h.user, LOGNAME: h.user, SHELL: '/bin/bash', LANG: 'C.UTF-8', [MARKER]: h.marker };
  if (run.mode === 'loopback') Object.assign(env, { TMPDIR: h.tmp, TMUX_TMPDIR: h.tmp });
  return env;
}

function sshdConfig(run: Run, h: HostState): string {
  const etc = run.mode === 'netns' ? h.etcInside : h.etc;
  const env = hostEnv(run, h);
  // SetEnv overrides sshd's own PATH/HOME for sessions; USER, LOGNAME and SHELL come from passwd.
  const setEnv = ['PATH', 'LANG', MARKER, ...(run.mode === 'loopback' ? ['HOME', 'TMPDIR', 'TMUX_TMPDIR'] : [])].map((k) => `"${k}=${env[k]}"`);
  const lines = [
    `ListenAddress ${h.host}:${h.port}`,
    `HostKey "${etc}/host_key"`,
    `AuthorizedKeysFile "${etc}/authorized_keys"`,
    `PidFile none`,
    `PermitRootLogin prohibit-password`,
    `PubkeyAuthentication yes`,
    `PasswordAuthentication no`,
    `KbdInteractiveAuthentication no`,
    `UsePAM no`,
    `StrictModes no`,
    `UseDNS no`,
    `PrintMotd no`,
    `PrintLastLog no`,
    `AcceptEnv none`,
    // tests open many connections at once; the default starts refusing after 10 unauthenticated
    `MaxStartups 200`,
    `MaxSessions 50`,
    // Loopback's ForceCommand runs the subsystem as a command: that needs a program, not internal-sftp.
    `Subsystem sftp ${run.mode === 'loopback' && SFTP_SERVER ? SFTP_SERVER : 'internal-sftp'}`,
    `SetEnv ${setEnv.join(' ')}`,
  ];
  // Loopback: sshd would start sessions in the real home; start them in the per-host one.
  if (run.mode === 'loopback') lines.push(`ForceCommand cd && eval "\${SSH_ORIGINAL_COMMAND:-exec \\"\$SHELL\\" -l}"`);
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// Network (netns mode)

/** 10.213.X for each X already used by an address or route on this machine. */
async function subnetsInUse(): Promise<Set<number>> {
  const text = (await sh(['ip', '-4', '-o', 'addr', 'show'])) + (await sh(['ip', '-4', 'route', 'show', 'table', 'all']));
  return new Set([...text.matchAll(/\b10\.213\.(\d+)\./g)].map((m) => Number(m[1])));
}

/** Claims a free 10.213.X/24 for this prefix: creating subnet-X exclusively is the lock between runs. */
function claimSubnet(prefix: string, inUse: Set<number>): string {
  for (const f of claimFiles()) if (readText(f) === prefix) return `10.213.${f.slice(f.lastIndexOf('-') + 1)}`;
  const start = [...prefix].reduce((a, c) => (a * 31 + c.charCodeAt(0)) % 256, 0);
  for (let i = 0; i < 256; i++) {
    const x = (start + i) % 256;
    if (inUse.has(x)) continue;
    try {
      fs.writeFileSync(path.join(BASE, `subnet-${x}`), prefix, { flag: 'wx' });
      return `10.213.${x}`;
    } catch {
      // claimed by another run
    }
  }
  throw new Error('ssh-hosts: no free 10.213.X.0/24');
}

function claimFiles(): string[] {
  return safeReaddir(BASE)
    .filter((f) => /^subnet-\d+$/.test(f))
    .map((f) => path.join(BASE, f));
}

async function createNetwork(run: Run): Promise<void> {
  const ip = (...args: string[]) => sh(['ip', ...args]);
  await ip('link', 'add', run.bridge, 'type', 'bridge');
  await ip('addr', 'add', `${run.subnet}.1/24`, 'dev', run.bridge);
  await ip('link', 'set', run.bridge, 'up');
  for (const h of run.hosts) {
    await ip('netns', 'add', h.netns);
    // The root end is named like the namespace; the host end is created inside it as eth0.
    await ip('link', 'add', h.netns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.netns);
    await ip('link', 'set', h.netns, 'master', run.bridge, 'up');
    await ip('-n', h.netns, 'link', 'set', 'lo', 'up');
    await ip('-n', h.netns, 'addr', 'add', `${h.host}/24`, 'dev', 'eth0');
    await ip('-n', h.netns, 'link', 'set', 'eth0', 'up');
  }
}

// The holder is bash, then `sleep`, in the host's network namespace with a private mount namespace
// (`ip netns exec` makes one, so these mounts never reach this machine) and UTS namespace.
// sshd needs /run/sshd: a tmpfs on /run gives it one without touching the real /run.
// /tmp goes last: the run's directories live under this machine's /tmp, which it then hides.
// Parameters: $1 hostname, $2 etc dir, $3 where to mount it, $4 home, $5 tmp.
const HOLDER_SCRIPT = `set -e
hostname "$1"
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -m 755 /run/sshd "$3"
mount --bind "$2" "$3"
mount --bind "$4" /root
mount --bind "$5" /tmp
echo ready
exec sleep infinity`;

async function startHolder(h: HostState): Promise<void> {
  const args = ['netns', 'exec', h.netns, 'unshare', '--uts', '--', 'bash', '-c', HOLDER_SCRIPT, 'holder', h.name, h.etc, h.etcInside, h.home, h.tmp];
  const holder = startChild('ip', args, { env: { PATH: HOST_PATH, [MARKER]: h.marker }, stdio: ['ignore', 'pipe', 'pipe'] });
  h.holder = holder;
  let out = '';
  await new Promise<void>((resolve, reject) => {
    holder.proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (!out.includes('ready\n')) return;
      // `sleep` never writes: drop the pipes so they do not keep node alive either.
      holder.proc.stdout!.destroy();
      holder.proc.stderr!.destroy();
      resolve();
    });
    holder.proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    void holder.exited.then(() => reject(new Error(`ssh-hosts: ${h.name}'s namespace setup failed: ${out.trim()}`)));
  });
}

// ---------------------------------------------------------------------------------------------
// sshd

async function startHostSshd(run: Run, h: HostState): Promise<void> {
  if (h.sshd?.proc.pid && isAlive(h.sshd.proc.pid)) return;
  const log = fs.openSync(path.join(h.dir, 'sshd.log'), 'a');
  const sshdArgs = ['-D', '-e', '-f', `${run.mode === 'netns' ? h.etcInside : h.etc}/sshd_config`];
  const opts = { env: hostEnv(run, h), stdio: ['ignore', log, log] as ['ignore', number, number] };
  if (run.mode === 'netns') {
    // nsenter without --fork execs sshd itself, so the child's pid is sshd's.
    h.sshd = startChild('nsenter', [...enterHolder(h), '--', SSHD, ...sshdArgs], opts);
  } else {
    if (process.getuid?.() === 0) fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    h.sshd = startChild(SSHD, sshdArgs, { ...opts, cwd: h.home });
  }
  fs.closeSync(log);
  await waitForSsh(run, h);
}

function enterHolder(h: HostState): string[] {
  if (!h.holder || h.holder.done) throw new Error(`ssh-hosts: ${h.name}'s namespace holder is gone`);
  return ['-t', String(h.holder.proc.pid), '-n', '-m', '-u'];
}

/** Polls `ssh -F <config> <name> true` until it succeeds: sshd is listening and accepts our key. */
async function waitForSsh(run: Run, h: HostState): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    try {
      await sh(['ssh', '-F', path.join(run.dir, 'ssh_config'), '-o', 'ConnectTimeout=2', h.name, 'true']);
      return;
    } catch (err) {
      const log = readText(path.join(h.dir, 'sshd.log')).trim().split('\n').slice(-5).join('\n');
      if (h.sshd?.done) throw new Error(`ssh-hosts: sshd of ${h.name} exited: ${log}`);
      if (Date.now() > deadline) throw new Error(`ssh-hosts: ${h.name} not reachable by ssh after ${READY_TIMEOUT_MS} ms: ${firstLine(err)}\n${log}`);
    }
    await sleep(25);
  }
}

/** Stops the listening sshd and drops the open connections; the host's other processes keep running. */
async function stopHostSshd(h: HostState): Promise<void> {
  const listener = h.sshd;
  if (!listener?.proc.pid || !isAlive(listener.proc.pid)) return;
  const sessions = listProcesses().filter((p) => p.comm === 'sshd' && isDescendant(p.pid, listener.proc.pid!));
  // (poll rather than await the exit event: the child is unref'd and would not keep node alive)
  await terminate([listener.proc.pid], 'SIGTERM', 2000);
  await terminate(sessions.map((p) => p.pid), 'SIGTERM', 2000);
}

// ---------------------------------------------------------------------------------------------
// execOn

async function execOnHost(run: Run, h: HostState, argv: string[]): Promise<string> {
  if (argv.length === 0) throw new Error('execOn: empty argv');
  const env = hostEnv(run, h);
  // (`env -C`, not nsenter's --wd: that opens the directory before entering the mount namespace)
  if (run.mode === 'netns') return sh(['nsenter', ...enterHolder(h), '--', 'env', '-C', '/root', '--', ...argv], { env });
  return sh(argv, { env, cwd: h.home });
}

function killOnHost(h: HostState, pattern: string, signal: NodeJS.Signals): number {
  let signalled = 0;
  for (const p of listProcesses()) {
    if (p.marker !== h.marker || !p.cmdline.includes(pattern)) continue;
    try {
      process.kill(p.pid, signal);
      signalled++;
    } catch {
      // ended meanwhile
    }
  }
  return signalled;
}

// ---------------------------------------------------------------------------------------------
// Cleanup: by name and marker, so it also removes what a crashed run left behind

async function cleanupRun(run: Run): Promise<void> {
  const owner = readOwner(run.prefix);
  // A later run in this process took the prefix over (and removed ours): leave its things alone.
  if (owner && owner.token !== run.token) return;
  await destroyRun(run.prefix);
}

/** Kills the run's processes (tmux servers, then sshd, then the rest), deletes its namespaces, links, claim and directory. */
async function destroyRun(prefix: string): Promise<void> {
  const namespaces = (await sh(['ip', 'netns', 'list']).catch(() => ''))
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`${prefix}-h`));
  const netnsIds = new Set(namespaces.map((n) => netnsId(`/run/netns/${n}`)).filter((x): x is string => !!x));
  const procs = () => runProcesses(prefix, netnsIds);

  await terminate(procs().filter((p) => p.comm.startsWith('tmux')).map((p) => p.pid), 'SIGTERM', 2000);
  await terminate(procs().filter((p) => p.comm === 'sshd').map((p) => p.pid), 'SIGTERM', 2000);
  await terminate(procs().map((p) => p.pid), 'SIGKILL', 2000);

  for (const n of namespaces) await sh(['ip', 'netns', 'del', n]).catch(() => '');
  const links = (await sh(['ip', '-o', 'link', 'show']).catch(() => ''))
    .split('\n')
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1] ?? '')
    .filter((l) => l.startsWith(`${prefix}-`));
  for (const l of links) await sh(['ip', 'link', 'del', l]).catch(() => '');

  for (const f of claimFiles()) if (readText(f) === prefix) fs.rmSync(f, { force: true });
  fs.rmSync(path.join(BASE, prefix), { recursive: true, force: true });
}

/** Removes what runs whose process is gone left behind (a crashed or killed test file). */
async function reapDeadRuns(): Promise<void> {
  for (const prefix of safeReaddir(BASE).filter((f) => !f.startsWith('subnet-'))) {
    const owner = readOwner(prefix);
    const age = Date.now() - (safeStat(path.join(BASE, prefix))?.mtimeMs ?? 0);
    if (owner ? !isAlive(owner.pid) : age > 60_000) await destroyRun(prefix);
  }
  for (const f of claimFiles()) {
    const prefix = readText(f);
    if (!fs.existsSync(path.join(BASE, prefix)) && Date.now() - (safeStat(f)?.mtimeMs ?? 0) > 60_000) fs.rmSync(f, { force: true });
  }
}

/** Leftovers with the same names are removed first; a live run of another process keeps them. */
async function takeOverPrefix(prefix: string): Promise<void> {
  const owner = readOwner(prefix);
  if (owner && owner.pid !== process.pid && isAlive(owner.pid)) {
    throw new Error(`ssh-hosts: prefix ${prefix} is in use by live process ${owner.pid}; use another prefix`);
  }
  await destroyRun(prefix);
}

function readOwner(prefix: string): { pid: number; token: string } | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(BASE, prefix, 'owner.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

interface Child {
  proc: ChildProcess;
  exited: Promise<void>;
  done: boolean;
}

function startChild(cmd: string, args: string[], opts: Parameters<typeof spawn>[2]): Child {
  const proc = spawn(cmd, args, opts);
  proc.unref(); // a forgotten cleanup must not keep node alive; the next run reaps the leftovers
  const child: Child = { proc, done: false, exited: Promise.resolve() };
  child.exited = new Promise<void>((resolve) => {
    proc.once('exit', () => resolve());
    proc.once('error', () => resolve());
  }).then(() => void (child.done = true));
  return child;
}

interface Proc {
  pid: number;
  ppid: number;
  comm: string;
  cmdline: string;
  netns?: string;
  marker?: string;
}

/** Live (non-zombie) processes from /proc, with their network namespace and our marker if any. */
function listProcesses(): Proc[] {
  const out: Proc[] = [];
  for (const entry of safeReaddir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat || stat.state === 'Z' || stat.state === 'X') continue;
    const environ = readText(`/proc/${entry}/environ`).split('\0');
    const marker = environ.find((e) => e.startsWith(`${MARKER}=`))?.slice(MARKER.length + 1);
    const cmdline = readText(`/proc/${entry}/cmdline`).replaceAll('\0', ' ');
    out.push({ pid: Number(entry), ppid: stat.ppid, comm: stat.comm, cmdline, netns: netnsId(`/proc/${entry}/ns/net`), marker });
  }
  return out;
}

/**
 * The processes of a run: those in its namespaces or carrying its marker, its sshd (by config path:
 * sshd rewrites its argv and environ area for its process title, hiding the marker) and all their
 * descendants (sshd's per-connection processes, jobs that cleared their environment).
 */
function runProcesses(prefix: string, netnsIds: Set<string>): Proc[] {
  const all = listProcesses().filter((p) => p.pid !== process.pid);
  const configPaths = [`${path.join(BASE, prefix)}/`, `${INSIDE_ETC}${prefix}-`];
  const found = new Set(
    all
      .filter((p) => netnsIds.has(p.netns ?? '') || (p.marker ?? '').startsWith(`${prefix}/`) || (p.comm === 'sshd' && configPaths.some((c) => p.cmdline.includes(c))))
      .map((p) => p.pid),
  );
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) if (!found.has(p.pid) && found.has(p.ppid)) grew = !!found.add(p.pid);
  }
  return all.filter((p) => found.has(p.pid));
}

function readStat(pid: number): { comm: string; state: string; ppid: number } | undefined {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the last ')'.
  const text = readText(`/proc/${pid}/stat`);
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const [state = '', ppid = '0'] = text.slice(close + 2).split(' ');
  return { comm: text.slice(text.indexOf('(') + 1, close), state, ppid: Number(ppid) };
}

function isDescendant(pid: number, ancestor: number): boolean {
  for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
    const parent = readStat(p)?.ppid ?? 0;
    if (parent === ancestor) return true;
    p = parent;
  }
  return false;
}

function isAlive(pid: number): boolean {
  const state = readStat(pid)?.state;
  return state !== undefined && state !== 'Z' && state !== 'X';
}

/** Sends `signal`, waits up to `ms` for the processes to go, then SIGKILLs what is left. */
async function terminate(pids: number[], signal: NodeJS.Signals, ms: number): Promise<void> {
  const kill = (pid: number, s: NodeJS.Signals) => {
    try {
      process.kill(pid, s);
    } catch {
      // already gone
    }
  };
  for (const pid of pids) kill(pid, signal);
  const deadline = Date.now() + ms;
  while (pids.some(isAlive) && Date.now() < deadline) await sleep(20);
  for (const pid of pids.filter(isAlive)) kill(pid, 'SIGKILL');
  while (pids.some(isAlive) && Date.now() < deadline + 2000) await sleep(20);
}

// ---------------------------------------------------------------------------------------------
// Small utilities

const execFileP = promisify(execFile);

/** Runs argv (no shell) and returns stdout; the error message carries stderr. */
async function sh(argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  const [cmd, ...args] = argv;
  const env = opts.env ?? { ...process.env, PATH: `${process.env.PATH ?? ''}:${HOST_PATH}` };
  const { stdout } = await execFileP(cmd!, args, { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8', ...opts, env });
  return stdout;
}

/** A network namespace's identity: stat of /proc/PID/ns/net and of /run/netns/NAME give its inode. */
function netnsId(file: string): string | undefined {
  return safeStat(file)?.ino.toString();
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function safeStat(file: string): fs.Stats | undefined {
  try {
    return fs.statSync(file);
  } catch {
    return undefined;
  }
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0] ?? '';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
