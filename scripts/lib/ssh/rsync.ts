// rsync over the system ssh with the same strict options as every other SSH call, one shared
// exclude list, and progress from `--info=progress2` reported as (bytes, percent).
import { spawn } from 'node:child_process';
import { CommandError } from '../ui/errors.js';
import { checkRemotePath, quoteWord } from '../quote.js';
import { sshStderrError } from './ssh-errors.js';
import { sshDestination, sshOptions, type SshTarget } from './target.js';

/** What never travels between the laptop and a host (and is never deleted on the far side). */
export const SYNC_EXCLUDES: readonly string[] = [
  'node_modules',
  '.git',
  '.switchyard',
  'dist',
  'outputs',
  '__pycache__',
  '*.pyc',
  '.env',
  '.venv',
  '*.log',
  '/bench/.tmp',
  'data-cache',
  '.cache',
];

export interface RsyncOptions {
  /** push: a local path; pull: a remote path (absolute or relative to the remote home) */
  src: string;
  /** push: a remote path; pull: a local path */
  dest: string;
  target: SshTarget;
  direction: 'push' | 'pull';
  excludes: readonly string[];
  /** patterns taken before the excludes: with an exclude of `*`, only what these name travels */
  includes?: readonly string[];
  /** delete files on the receiver that the sender lacks (after the transfer; excluded ones stay) */
  delete?: boolean;
  progress?: boolean;
  /** print the transfer summary that runRsync reads */
  stats?: boolean;
}

/**
 * rsync splits its -e string on spaces, honouring '...' and "..." (a doubled quote inside is a
 * literal one; backslash is not special), so each part is quoted for that reader. For parts
 * without a single quote this is exactly shellQuote's output.
 */
export function rsyncShellString(argv: readonly string[]): string {
  return argv.map((part) => (part.includes("'") ? `'${part.replace(/'/g, "''")}'` : quoteWord(part))).join(' ');
}

/** The rsync argv for one transfer; the remote side is `[user@]host:path`, validated. */
export function rsyncArgv(opts: RsyncOptions): string[] {
  const { target, direction } = opts;
  const remote = (p: string) => `${sshDestination(target)}:${checkRemotePath(p)}`;
  const [src, dest] = direction === 'push' ? [opts.src, remote(opts.dest)] : [remote(opts.src), opts.dest];
  return [
    'rsync',
    '-a',
    '--partial',
    ...(opts.delete ? ['--delete-after'] : []),
    ...(opts.progress ? ['--info=progress2', '--no-inc-recursive'] : []),
    ...(opts.stats ? ['--stats'] : []),
    '-e',
    rsyncShellString(['ssh', ...sshOptions(target)]),
    ...(opts.includes ?? []).map((i) => `--include=${i}`),
    ...opts.excludes.map((e) => `--exclude=${e}`),
    '--',
    src,
    dest,
  ];
}

export interface RsyncResult {
  /** regular files sent or received */
  filesTransferred: number;
  /** total size of those files */
  bytesTransferred: number;
  deleted: number;
}

const PROGRESS_LINE = /^\s*([\d,]+)\s+(\d{1,3})%/;

/** Parses one `--info=progress2` record ("  1,234,567  45%  12.3MB/s  0:00:01 (xfr#…)"). */
export function parseProgress(record: string): { bytes: number; percent: number } | undefined {
  const m = PROGRESS_LINE.exec(record);
  return m ? { bytes: Number(m[1]!.replace(/,/g, '')), percent: Number(m[2]) } : undefined;
}

function statNumber(stdout: string, label: string): number {
  const m = new RegExp(`^${label}: ([\\d,]+)`, 'm').exec(stdout);
  return m ? Number(m[1]!.replace(/,/g, '')) : 0;
}

/** The `--stats` summary as numbers. */
export function parseStats(stdout: string): RsyncResult {
  return {
    filesTransferred: statNumber(stdout, 'Number of regular files transferred'),
    bytesTransferred: statNumber(stdout, 'Total transferred file size'),
    deleted: statNumber(stdout, 'Number of deleted files'),
  };
}

/** Feeds progress records (split on \r and \n) to `onProgress`; keeps all text for --stats. */
function progressSink(onProgress?: (bytes: number, percent: number) => void) {
  let text = '';
  let partial = '';
  return {
    write(chunk: string) {
      text += chunk;
      const records = (partial + chunk).split(/[\r\n]/);
      partial = records.pop() ?? '';
      for (const r of records) {
        const p = onProgress && parseProgress(r);
        if (p) onProgress!(p.bytes, p.percent);
      }
    },
    text: () => text,
  };
}

/**
 * Runs one transfer (argv only, no shell). proc.ts's run() buffers output until exit, so the
 * progress stream needs this small spawn; failures are CommandErrors as there, or a one-line
 * SshError when ssh itself failed (host key, auth, refused, timeout).
 */
export function runRsync(
  opts: RsyncOptions & { onProgress?: (bytes: number, percent: number) => void },
): Promise<RsyncResult> {
  const argv = rsyncArgv({ ...opts, stats: true, progress: opts.progress ?? opts.onProgress !== undefined });
  const sink = progressSink(opts.onProgress);
  let stderr = '';
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.setEncoding('utf8').on('data', (c: string) => sink.write(c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) return resolve(parseStats(sink.text()));
      reject(sshStderrError(opts.target, stderr) ?? new CommandError(argv, code, stderr));
    });
  });
}
