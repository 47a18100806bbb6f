// One remote host as the backends and bootstrap see it: commands over the pooled connection,
// whole files written and read in one round trip, and rsync for the bulk.
import { posix } from 'node:path';
import type { SshPool } from '../ssh/pool.js';
import { unpackArgv, type RepoPack } from '../pack/repo-tar.js';
import { runRsync, SYNC_EXCLUDES } from '../ssh/rsync.js';
import type { SshTarget } from '../ssh/target.js';
import { UserError } from '../ui/errors.js';
import { hostLayout, type HostLayout } from './host-layout.js';

export const CALL_TIMEOUT_MS = 60_000;

/** The limit of a call that sends `bytes` on stdin: the usual one, plus time for the bytes at ~500 kB/s. */
const timeoutFor = (bytes: number) => CALL_TIMEOUT_MS + Math.ceil(bytes / 512);

/** What a push of the project leaves out: the built-in excludes, then the caller's. */
export function repoExcludes(extra: readonly string[] = []): string[] {
  return [...SYNC_EXCLUDES, ...extra];
}

/**
 * RemoteHost.writeFile's script: $1 the file, $2 its folder, the content on stdin. The temp name
 * is the writer's own: two prepares of one host write the same runner at once, and a shared one
 * would be renamed away under the other writer (its mv failing, or a file half its own renamed
 * into place). A failed write leaves no temp behind on a disk that may be full.
 */
export function writeFileScript(opts: { private?: boolean; gzipped?: boolean }): string {
  return `${opts.private ? 'umask 077; ' : ''}t="$1.tmp.$$"; mkdir -p -- "$2" && ${opts.gzipped ? 'gzip -dc' : 'cat'} > "$t" && mv -f -- "$t" "$1" || { c=$?; rm -f -- "$t"; exit $c; }`;
}

export class RemoteHost {
  readonly layout: HostLayout;

  constructor(
    readonly target: SshTarget,
    readonly root: string,
    readonly pool: SshPool,
  ) {
    this.layout = hostLayout(root);
  }

  get name(): string {
    return this.target.name;
  }

  /** Runs argv on the host; a non-zero exit is a one-line error naming host and command. */
  async run(argv: readonly string[], opts: { stdin?: string | Buffer; timeoutMs?: number; allowFail?: boolean } = {}) {
    const r = await this.pool.exec(this.target, argv, { stdin: opts.stdin, timeoutMs: opts.timeoutMs ?? CALL_TIMEOUT_MS });
    if (r.code !== 0 && !opts.allowFail) {
      const why = (r.stderr.trim() || r.stdout.trim()).split('\n').at(-1) ?? '';
      throw new UserError(`ssh ${this.name}: ${argv[0]} exited ${r.code}${why ? `: ${why}` : ''}`);
    }
    return r;
  }

  /** Runs a fixed POSIX sh script with positional arguments: values never become shell code. */
  sh(script: string, args: readonly string[], opts: { stdin?: string | Buffer; timeoutMs?: number; allowFail?: boolean } = {}) {
    return this.run(['sh', '-c', script, 'sh', ...args], opts);
  }

  /**
   * Writes a whole file atomically (temp + rename), creating its folder; `private` makes it
   * 0600; `gzipped` content is unpacked on the host.
   */
  async writeFile(file: string, content: string | Buffer, opts: { private?: boolean; gzipped?: boolean } = {}): Promise<void> {
    await this.sh(writeFileScript(opts), [file, posix.dirname(file)], { stdin: content, timeoutMs: timeoutFor(content.length) });
  }

  /** Pushes the project (code and in-repo data) to <root>/repo: rsync's delta transfer, one exclude list. */
  async syncRepo(localRoot: string, opts: { onProgress?: (bytes: number, percent: number) => void; excludes?: readonly string[] } = {}) {
    await this.run(['mkdir', '-p', this.layout.repo]);
    return this.rsyncRepo(localRoot, opts);
  }

  /** syncRepo's transfer alone, for a caller that has made <root>/repo already. */
  rsyncRepo(localRoot: string, opts: { onProgress?: (bytes: number, percent: number) => void; excludes?: readonly string[] } = {}) {
    return runRsync({
      src: `${localRoot}/`,
      dest: `${this.layout.repo}/`,
      target: this.target,
      direction: 'push',
      excludes: repoExcludes(opts.excludes),
      delete: true,
      onProgress: opts.onProgress,
    });
  }

  /**
   * Fills an empty <root>/repo from a tar of the project (packRepo, same excludes; gzipped where
   * forHosts compressed it) over the pooled connection. False when it did not unpack (no tar or
   * gzip there, a timeout): the caller pushes with rsyncRepo instead, whose delta transfer
   * finishes whatever this left.
   */
  async unpackRepo(pack: RepoPack): Promise<boolean> {
    try {
      return (await this.run(unpackArgv(this.layout.repo, pack.gzipped), { stdin: pack.archive, timeoutMs: timeoutFor(pack.archive.length), allowFail: true })).code === 0;
    } catch {
      return false;
    }
  }

  /**
   * Copies one local file to a remote path unless it is already there (content-addressed paths).
   * rsync's --partial keeps what a cut-off push got under the name it was sent to, so the file
   * goes to `<path>.part` (where the next push resumes it) and is renamed only once whole: a
   * file at its path is never a partial one.
   */
  async pushFileOnce(localPath: string, remotePath: string): Promise<boolean> {
    if ((await this.run(['test', '-f', remotePath], { allowFail: true })).code === 0) return false;
    await this.run(['mkdir', '-p', remotePath.slice(0, remotePath.lastIndexOf('/'))]);
    const part = `${remotePath}.part`;
    await runRsync({ src: localPath, dest: part, target: this.target, direction: 'push', excludes: [] });
    // A concurrent push of the same file may have renamed it first.
    await this.sh('mv -f -- "$1" "$2" 2>/dev/null || test -f "$2"', [part, remotePath]);
    return true;
  }
}
