// Making a host ready for attempts: its runtime checked, the project pushed (rsync's delta, or
// one tar into an empty copy), the runner pushed by content hash. Shared by every backend that
// starts runners over ssh (a rented box, a fleet's hosts, a SLURM login node).
import type { RepoPacks } from '../pack/repo-tar.js';
import { UserError } from '../ui/errors.js';
import { repoExcludes, type RemoteHost } from './remote-host.js';
import { loadRunnerBundle, writeRunner } from './runner-bundle.js';
import { PREPARE_SCRIPT } from './scripts.js';

/** What prepare did on a host. */
export interface Prepared {
  /** the runner's path on the host */
  runner: string;
  runnerSent: boolean;
  /** how the project got there: unpacked from the fan-out's tar into an empty copy, or rsync's delta */
  repo: { via: 'tar' | 'rsync'; files: number; bytes: number };
}

export interface PrepareOptions {
  projectRoot: string;
  /** the self-contained runner built by `make build` */
  runnerBundle: string;
  /** rsync excludes on top of the built-in ones (a fleet's sync_excludes) */
  excludes?: string[];
  /** the fan-out's tar: an empty copy of the project on the host is filled from it */
  packs?: RepoPacks;
  /** the command that makes the host ready (default `make bootstrap host=<name>`) */
  bootstrapCommand?: string;
}

export async function prepareHost(host: RemoteHost, opts: PrepareOptions): Promise<Prepared> {
  const { layout } = host;
  // Packed while the host answers; only a host whose repo is still empty waits for it.
  const pack = opts.packs?.get(opts.projectRoot, repoExcludes(opts.excludes));
  // Read, hashed and compressed while the host answers too.
  const bundle = loadRunnerBundle(opts.runnerBundle);
  bundle.catch(() => {}); // awaited below, unless the host check fails first

  // One round trip: the runtime, the repo folder, which files the runtime folder holds, whether the repo is empty.
  const pre = await host.sh(PREPARE_SCRIPT, [layout.node, layout.repo, layout.runtime, pack ? 'check-empty' : ''], { allowFail: true });
  if (pre.code === 3) {
    throw new UserError(`ssh ${host.name}: not bootstrapped (no ${layout.node}); run ${opts.bootstrapCommand ?? `make bootstrap host=${host.name}`}`);
  }
  if (pre.code !== 0) {
    const mkdir = pre.code === 4 ? /^mkdir (\d+)$/m.exec(pre.stdout) : null;
    const why = pre.stderr.trim().split('\n').at(-1) ?? '';
    throw new UserError(`ssh ${host.name}: ${mkdir ? `mkdir exited ${mkdir[1]}` : `sh exited ${pre.code}`}${why ? `: ${why}` : ''}`);
  }
  const found = new Set(pre.stdout.split('\n'));

  const pushRepo = async (): Promise<Prepared['repo']> => {
    if (pack && found.has('empty')) {
      const packed = await pack;
      if (packed && (await host.unpackRepo(packed))) return { via: 'tar', files: packed.files, bytes: packed.archive.length };
    }
    const r = await host.rsyncRepo(opts.projectRoot, { excludes: opts.excludes });
    return { via: 'rsync', files: r.filesTransferred, bytes: r.bytesTransferred };
  };
  // The runner is small once compressed: written over the pooled connection, beside the repo's transfer.
  const pushRunner = async () => {
    const runner = await bundle;
    const dest = runner.remotePath(host);
    return found.has(`file ${dest}`) ? { runner: dest, runnerSent: false } : { runner: await writeRunner(host, runner), runnerSent: true };
  };
  const [repo, runner] = await Promise.allSettled([pushRepo(), pushRunner()]);
  if (repo.status === 'rejected') throw repo.reason;
  if (runner.status === 'rejected') throw runner.reason;
  return { ...runner.value, repo: repo.value };
}
