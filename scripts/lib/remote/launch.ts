// Pure rendering of how an attempt starts on a host and how a poll's answer reads: no I/O, so
// golden files pin them down (test/golden/remote/). The I/O around them is in backends/ssh.ts.
import type { AttemptSpec, AttemptStatus, RunnerEvent } from '../runner/attempt-spec.js';
import type { LiveView } from '../runner/attempt-live.js';
import { parseEventLines, parseJsonLines } from '../runner/jsonl.js';
import { tmuxSessionCommand } from '../ssh/tmux.js';
import { attemptSession, TMUX_SOCKET, type HostLayout } from './host-layout.js';

export interface LaunchOptions {
  layout: HostLayout;
  /** the runner's path on the host */
  runner: string;
  /** the store URL the runner on the host writes to */
  store: string;
  /** tmux session names start with it (default `sy`) */
  sessionPrefix?: string;
  /** where the runner writes outputs: `<outputDir>/<unit>` from the login directory (default the scratch folder) */
  outputDir?: string;
}

export interface Launch {
  session: string;
  /** the attempt's folder on the host */
  attemptDir: string;
  /** the spec as the runner on the host reads it: one line (SUBMIT_SCRIPT reads one per attempt) */
  spec: string;
  /** the attempt's five words of SUBMIT_SCRIPT's arguments */
  args: string[];
}

export function renderLaunch(spec: AttemptSpec, opts: LaunchOptions): Launch {
  const { layout } = opts;
  const session = attemptSession(spec.unit_id, spec.attempt, opts.sessionPrefix);
  const specPath = layout.attemptSpec(spec.unit_id, spec.attempt);
  const remoteSpec: AttemptSpec = { ...spec, store: opts.store, secrets_file: '../secrets.json', venv: '../venv' };
  const rel = (p: string) => p.slice(layout.root.length + 1);
  const argv = ['runtime/node', rel(opts.runner), '--spec', rel(specPath), '--root', 'repo', '--work', rel(layout.work(spec.unit_id))];
  if (opts.outputDir) argv.push('--output', `${opts.outputDir}/${spec.unit_id}`);
  const attemptDir = layout.attemptDir(spec.unit_id, spec.attempt);
  return {
    session,
    attemptDir,
    spec: JSON.stringify(remoteSpec),
    args: [attemptDir, session, specPath, session.replace(/\d+$/, ''), tmuxSessionCommand(session, layout.root, argv)],
  };
}

/** One SUBMIT_SCRIPT call: its arguments and stdin, for attempts of one host. */
export function submitCall(launches: readonly Launch[]): { args: string[]; stdin: string } {
  return { args: [TMUX_SOCKET, ...launches.flatMap((l) => l.args)], stdin: launches.map((l) => `${l.spec}\n`).join('') };
}

/** SUBMIT_SCRIPT's answer: per attempt, its code and detail, in order; null where a line is missing (the call was cut off). */
export function parseSubmit(out: string, count: number): ({ code: number; detail: string } | null)[] {
  const lines = out.split('\n');
  return Array.from({ length: count }, (_, i) => {
    const m = /^(\d+) ?(.*)$/.exec(lines[i] ?? '');
    return m ? { code: Number(m[1]), detail: m[2]! } : null;
  });
}

/** POLL_SCRIPT's arguments for attempts of one host: (folder, session, event lines read) each. */
export function pollArgs(marker: string, attempts: readonly { dir: string; session: string; eventsFrom: number }[]): string[] {
  return [marker, TMUX_SOCKET, ...attempts.flatMap((a) => [a.dir, a.session, String(a.eventsFrom)])];
}

/** What a poll found of one attempt on a host. */
export interface RemoteAttempt {
  /** its tmux session lives */
  alive: boolean;
  status: AttemptStatus | null;
  /** one per complete event line after those already read; null where a line does not parse */
  events: (RunnerEvent | null)[];
  metrics: Record<string, unknown> | null;
  lastLine: string | null;
}

/** POLL_SCRIPT's answer, one entry per attempt asked about, in order. */
export function parsePoll(out: string, marker: string, count: number): RemoteAttempt[] {
  const sections = out.split(marker);
  return Array.from({ length: count }, (_, i) => {
    const [alive = '', status = '', live = '', events = '', metrics = '', lastLine = ''] = sections.slice(i * 6, i * 6 + 6);
    const view = live.trim() ? liveView(live) : null;
    return {
      alive: alive === 'alive',
      status: status.trim() ? (JSON.parse(status) as AttemptStatus) : null,
      events: parseEventLines<RunnerEvent>(events),
      metrics: parseJsonLines<Record<string, unknown>>(view && view.metrics !== undefined ? (view.metrics ?? '') : metrics).at(-1) ?? null,
      lastLine: (view ? (view.last_line ?? '') : lastLine).trim() || null,
    };
  });
}

/** A live.json as a poll printed it; one that does not parse shows nothing. */
function liveView(text: string): Pick<LiveView, 'metrics' | 'last_line'> {
  try {
    const v = JSON.parse(text) as Partial<LiveView>;
    const metrics = v.metrics === undefined ? undefined : typeof v.metrics === 'string' ? v.metrics : null;
    return { metrics, last_line: typeof v.last_line === 'string' ? v.last_line : null };
  } catch {
    return { metrics: null, last_line: null };
  }
}
