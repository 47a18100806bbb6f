// The login node a cluster's jobs are submitted on, as the SLURM backend sees it: fixed sh
// scripts run there (they write its files too), and what it takes to make it ready. Over ssh it
// is an inventory host prepared as the ssh route prepares one (the project synced, the runner
// pushed by content hash, the host's own store when the project's is a folder here); `local` is
// this machine with the project in place, on a filesystem the cluster's nodes see.
import { existsSync } from 'node:fs';
import { run } from '../proc.js';
import { hostStoreUrl, pullUnit, pushCheckpoints } from '../remote/host-store.js';
import { prepareHost } from '../remote/prepare-host.js';
import type { RemoteHost } from '../remote/remote-host.js';
import type { AttemptSpec } from '../runner/attempt-spec.js';
import type { Store } from '../store/store.js';
import { UserError } from '../ui/errors.js';
import { hostJobFolders, hostJobPaths, localJobFolders, localJobPaths } from './job-paths.js';
import type { JobFolders, JobPaths } from './render-sbatch.js';

export interface ShResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface LoginNode {
  /** `local`, or the inventory host's name */
  readonly name: string;
  /** runs a fixed sh script with positional arguments there; a non-zero exit throws unless `allowFail` */
  sh(script: string, args: readonly string[], opts?: { stdin?: string; timeoutMs?: number; allowFail?: boolean }): Promise<ShResult>;
  /** makes it ready for jobs (once per process), and says how for the ✓ line */
  prepare(): Promise<{ detail: string; paths: JobPaths }>;
  /** where jobs' folders are, without preparing anything (a look for jobs sent earlier) */
  folders(): JobFolders;
  /** the attempt spec as the runner on the cluster reads it */
  workerSpec(spec: AttemptSpec): AttemptSpec;
  /** whether the runners write the project's store themselves */
  readonly workersReachStore: boolean;
  /** brings a unit's checkpoints, outputs and attempt files home (nothing where the runners wrote the store) */
  pull(unit: string): Promise<void>;
  pushCheckpoints(unit: string): Promise<void>;
}

/** This machine: sbatch on the PATH, jobs run the project where it is. */
export class LocalLogin implements LoginNode {
  readonly name = 'local';
  readonly workersReachStore = true;

  constructor(private readonly opts: { root: string; stateDir: string; runnerBundle: string; workDir: (unit: string) => string }) {}

  async sh(script: string, args: readonly string[], opts: { stdin?: string; timeoutMs?: number; allowFail?: boolean } = {}): Promise<ShResult> {
    const r = await run(['sh', '-c', script, 'sh', ...args], { cwd: this.opts.root, input: opts.stdin, timeout: opts.timeoutMs ?? 60_000, allowFail: true });
    const out = { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr };
    if (out.code !== 0 && !opts.allowFail) throw new UserError(`slurm login local: sh exited ${out.code}: ${(out.stderr.trim() || out.stdout.trim()).split('\n').at(-1) ?? ''}`);
    return out;
  }

  async prepare(): Promise<{ detail: string; paths: JobPaths }> {
    if (!existsSync(this.opts.runnerBundle)) throw new UserError(`runner bundle missing: ${this.opts.runnerBundle}; run make build`);
    const found = await this.sh('command -v sbatch', [], { allowFail: true });
    if (found.code !== 0) throw new UserError('slurm: sbatch is not on the PATH of this machine; install the SLURM client here, or set login to a host under hosts that has it');
    return { detail: `sbatch at ${found.stdout.trim()}, the project runs in place`, paths: localJobPaths({ ...this.opts, runner: this.opts.runnerBundle }) };
  }

  folders(): JobFolders {
    return localJobFolders(this.opts);
  }

  workerSpec(spec: AttemptSpec): AttemptSpec {
    return spec;
  }

  async pull(): Promise<void> {}

  async pushCheckpoints(): Promise<void> {}
}

/** An inventory host: the pooled ssh connection, the host's layout under the cluster's root. */
export class SshLogin implements LoginNode {
  readonly workersReachStore: boolean;
  private prepared: Promise<{ detail: string; paths: JobPaths }> | null = null;

  constructor(
    private readonly host: RemoteHost,
    private readonly opts: { projectRoot: string; store: Store; runnerBundle: string },
  ) {
    this.workersReachStore = opts.store.localDir === null;
  }

  get name(): string {
    return this.host.name;
  }

  sh(script: string, args: readonly string[], opts: { stdin?: string; timeoutMs?: number; allowFail?: boolean } = {}): Promise<ShResult> {
    return this.host.sh(script, args, opts);
  }

  prepare(): Promise<{ detail: string; paths: JobPaths }> {
    if (!this.prepared) {
      this.prepared = prepareHost(this.host, { ...this.opts, bootstrapCommand: `make bootstrap host=${this.host.name}` }).then((p) => {
        const project = p.repo.via === 'tar' ? `project unpacked (${p.repo.files} files)` : `project synced (${p.repo.files} files changed)`;
        return { detail: `${project}, runner ${p.runnerSent ? 'sent' : 'present'}`, paths: hostJobPaths(this.host.layout, p.runner) };
      });
      this.prepared.catch(() => (this.prepared = null)); // a later call tries again
    }
    return this.prepared;
  }

  folders(): JobFolders {
    return hostJobFolders(this.host.layout);
  }

  workerSpec(spec: AttemptSpec): AttemptSpec {
    if (spec.data_dir?.startsWith('/')) throw new UserError(`slurm login ${this.host.name}: data.dir outside the repository cannot be shipped; move it under the competition folder`);
    return { ...spec, store: hostStoreUrl(this.opts.store), secrets_file: '../secrets.json', venv: '../venv' };
  }

  pull(unit: string): Promise<void> {
    return pullUnit(this.host, this.opts.store, unit);
  }

  pushCheckpoints(unit: string): Promise<void> {
    return pushCheckpoints(this.host, this.opts.store, unit);
  }
}
