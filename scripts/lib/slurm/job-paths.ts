// Where a job finds the runtime, the runner, the project and its scratch folders: on a login
// node reached over ssh, the host's layout (relative to the login directory, where sbatch runs
// and so where the job starts); on this machine (`login: local`), the project in place.
import path from 'node:path';
import type { HostLayout } from '../remote/host-layout.js';
import type { JobFolders, JobPaths } from './render-sbatch.js';

export function hostJobFolders(layout: HostLayout): JobFolders {
  return {
    work: (unit) => layout.work(unit),
    logs: (runId) => `${layout.root}/scratch/${runId}/slurm`,
  };
}

export function hostJobPaths(layout: HostLayout, runner: string): JobPaths {
  return { ...hostJobFolders(layout), node: layout.node, runner, repo: layout.repo };
}

export function localJobFolders(opts: { stateDir: string; workDir: (unit: string) => string }): JobFolders {
  return {
    work: opts.workDir,
    logs: (runId) => path.join(opts.stateDir, 'slurm', runId),
  };
}

export function localJobPaths(opts: { root: string; stateDir: string; runner: string; workDir: (unit: string) => string }): JobPaths {
  return { ...localJobFolders(opts), node: process.execPath, runner: opts.runner, repo: opts.root };
}
