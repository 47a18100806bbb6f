// The steps that make a host ready to run experiments. Each is idempotent and cheap when
// already done, so re-running bootstrap on a ready host takes seconds.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Workspace } from '../workspace.js';
import { pinExperiment } from '../pins/pin-experiment.js';
import { kaggleJson } from '../kaggle/credentials.js';
import { readDotEnv, requireSecrets } from '../secrets/dotenv.js';
import { encodeSecretsFile } from '../secrets/secrets-file.js';
import type { Experiment } from '../spec/experiment.js';
import { tmuxHasSession } from '../ssh/tmux.js';
import { UserError } from '../ui/errors.js';
import { plural } from '../ui/plural.js';
import { TMUX_SOCKET } from './host-layout.js';
import { ensureNodeRuntime } from './node-runtime.js';
import { loadRunnerBundle, writeRunner } from './runner-bundle.js';
import type { RemoteHost } from './remote-host.js';

export interface BootstrapStep {
  name: string;
  /** does the step's work; returns a short detail for the ✓ line, or null to skip it */
  run: () => Promise<string | null>;
}

/** The commands a host needs, each with the package bootstrap installs when it is missing (the runner's reaper needs setsid). */
const HOST_PACKAGES: Record<string, string> = { rsync: 'rsync', tmux: 'tmux', python3: 'python3', setsid: 'util-linux' };
export const HOST_TOOLS = Object.keys(HOST_PACKAGES);

async function installTools(host: RemoteHost): Promise<string> {
  const missing = (await host.sh('for t in "$@"; do command -v "$t" >/dev/null 2>&1 || echo "$t"; done', HOST_TOOLS)).stdout.split('\n').filter(Boolean);
  const venvOk = (await host.run(['python3', '-c', 'import venv, ensurepip'], { allowFail: true })).code === 0;
  const packages = [...missing.map((tool) => HOST_PACKAGES[tool] ?? tool), ...(venvOk ? [] : ['python3-venv'])];
  if (!packages.length) return `${HOST_TOOLS.join(', ')} and python3-venv present`;
  // apt-get as root, or through passwordless sudo; anything else is the user's call.
  const r = await host.sh(
    'if [ "$(id -u)" = 0 ]; then s=""; elif sudo -n true 2>/dev/null; then s="sudo -n"; else echo "not root and no passwordless sudo" >&2; exit 3; fi; $s env DEBIAN_FRONTEND=noninteractive apt-get update -qq && $s env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"',
    packages,
    { allowFail: true, timeoutMs: 600_000 },
  );
  if (r.code !== 0) throw new UserError(`ssh ${host.name}: cannot install ${packages.join(' ')} (${r.stderr.trim().split('\n').at(-1)}); install them on the host`);
  return `installed ${packages.join(', ')}`;
}

const STORE_KEYS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_REGION', 'AWS_ENDPOINT_URL_S3'];

/**
 * The .env keys the experiment declares, plus the store's credentials when runs go to an S3
 * store the host must reach, as the host's secrets file: only those keys, never logged.
 */
function secretsFile(project: Workspace, exp: Experiment | null): { text: string; names: string[]; values: Record<string, string> } {
  const declared = exp ? requireSecrets(project.root, exp.file, exp.spec.secrets) : {};
  const env = { ...pick(process.env, STORE_KEYS), ...readDotEnv(project.root) };
  const store = project.store.url.startsWith('s3://') ? pick(env, STORE_KEYS) : {};
  const values = { ...declared, ...store };
  return { text: encodeSecretsFile(values), names: Object.keys(values), values };
}

function pick(env: NodeJS.ProcessEnv, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((k) => env[k] !== undefined).map((k) => [k, env[k]!]));
}

async function ensureVenv(host: RemoteHost, exp: Experiment, python: 'uv' | 'venv' | undefined): Promise<string | null> {
  const req = ['requirements.txt'].find((f) => existsSync(path.join(exp.competitionDir, f)));
  if (!req) return null;
  const sha = createHash('sha256').update(readFileSync(path.join(exp.competitionDir, req))).digest('hex');
  const { layout } = host;
  const remoteReq = `${layout.repo}/competitions/${exp.slug}/${req}`;
  const marker = `${layout.venv}/.requirements-${sha.slice(0, 16)}`;
  if ((await host.run(['test', '-f', marker], { allowFail: true })).code === 0) return `${layout.venv} up to date with ${req}`;
  const useUv = python === 'uv' || (python === undefined && (await host.sh('command -v uv', [], { allowFail: true })).code === 0);
  const script = useUv
    ? 'uv venv --allow-existing "$1" && VIRTUAL_ENV="$1" uv pip install -r "$2" && touch "$3"'
    : '[ -x "$1/bin/python" ] || python3 -m venv "$1"; "$1/bin/pip" install --disable-pip-version-check -q -r "$2" && touch "$3"';
  await host.sh(script, [layout.venv, remoteReq, marker], { timeoutMs: 1_800_000 });
  return `${layout.venv} (${useUv ? 'uv' : 'python3 -m venv'}) with ${req}`;
}

async function checkData(host: RemoteHost, project: Workspace, exp: Experiment, runner: string): Promise<string | null> {
  if (!exp.dataDir || !exp.spec.data) return null;
  const { pins } = await pinExperiment(project.root, project.stateDir, exp);
  const rel = path.relative(project.root, exp.dataDir); // inside the repository: loadExperiment checked
  const filters = [...exp.spec.data.include.flatMap((g) => ['--include', g]), ...exp.spec.data.exclude.flatMap((g) => ['--exclude', g])];
  const r = await host.run([host.layout.node, runner, '--pin-data', `${host.layout.repo}/${rel}`, '--cache', `${host.layout.root}/cache/data-${exp.slug}.statcache`, ...filters]);
  const there = JSON.parse(r.stdout) as { root: string; files: number };
  if (there.root !== pins.data.root) {
    throw new UserError(`ssh ${host.name}: data pin differs on the host (${there.root.slice(0, 8)} there, ${pins.data.root.slice(0, 8)} here); run make sync host=${host.name}`);
  }
  return `data pin ${there.root.slice(0, 8)} verified (${plural(there.files, 'file')})`;
}

export function bootstrapSteps(
  project: Workspace,
  host: RemoteHost,
  opts: { exp: Experiment | null; nodeMode: 'auto' | 'ship'; python?: 'uv' | 'venv'; runnerBundle: string },
): BootstrapStep[] {
  const { layout } = host;
  let runner = '';
  return [
    { name: 'ssh', run: async () => ((await host.run(['true'])), `${host.target.user ?? ''}${host.target.user ? '@' : ''}${host.target.host}:${host.target.port}, host key verified`) },
    { name: 'tools', run: () => installTools(host) },
    { name: 'node', run: () => ensureNodeRuntime(host, project.stateDir, opts.nodeMode) },
    {
      name: 'secrets',
      run: async () => {
        const { text, names, values } = secretsFile(project, opts.exp);
        if (!names.length && !opts.exp) return null;
        await host.writeFile(layout.secrets, text, { private: true });
        // An experiment that declares its Kaggle credentials gets the CLI's own file too.
        const kaggle = values.KAGGLE_USERNAME && values.KAGGLE_KEY ? kaggleJson(values.KAGGLE_USERNAME, values.KAGGLE_KEY) : null;
        if (kaggle) await host.writeFile(layout.kaggleJson, kaggle, { private: true });
        return `${layout.secrets} (0600): ${names.length ? names.join(', ') : 'none declared'}${kaggle ? `; ${layout.kaggleJson} (0600)` : ''}`;
      },
    },
    {
      name: 'sync',
      run: async () => {
        const r = await host.syncRepo(project.root);
        return `${layout.repo}: ${plural(r.filesTransferred, 'file')} changed, ${plural(r.bytesTransferred, 'byte')} sent`;
      },
    },
    {
      name: 'runner',
      run: async () => {
        const bundle = await loadRunnerBundle(opts.runnerBundle);
        runner = bundle.remotePath(host);
        if ((await host.run(['test', '-f', runner], { allowFail: true })).code === 0) return `${runner} (present)`;
        return writeRunner(host, bundle);
      },
    },
    { name: 'venv', run: async () => (opts.exp ? ensureVenv(host, opts.exp, opts.python) : null) },
    { name: 'data', run: async () => (opts.exp ? checkData(host, project, opts.exp, runner) : null) },
    {
      name: 'tmux',
      run: async () => {
        if ((await host.run(tmuxHasSession(TMUX_SOCKET, 'switchyard'), { allowFail: true })).code === 0) return 'session switchyard (running)';
        await host.run(['tmux', '-L', TMUX_SOCKET, 'new-session', '-d', '-s', 'switchyard', '-c', layout.root]);
        return 'session switchyard (started)';
      },
    },
  ];
}
