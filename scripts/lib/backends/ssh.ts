// A rented box over SSH (vast.ai style): the project is rsynced (delta), the self-contained
// runner is started in a tmux session named for the run and attempt, and everything the
// orchestrator needs comes back in one pooled round trip per poll.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { attemptSession, TMUX_SOCKET } from '../remote/host-layout.js';
import { repoExcludes, type RemoteHost } from '../remote/remote-host.js';
import { loadRunnerBundle, writeRunner } from '../remote/runner-bundle.js';
import { STOP_REQUEST, type AttemptSpec, type AttemptStatus, type RunnerEvent } from '../runner/attempt-spec.js';
import { MANIFEST_NAME } from '../ckpt/manifest.js';
import { pruneStoredSteps } from '../runner/store-checkpoints.js';
import { runKeys, TERMINAL, type Handle } from '../runs/run-record.js';
import { parseJsonLines } from '../runner/jsonl.js';
import type { RepoPacks } from '../ssh/repo-tar.js';
import { runRsync } from '../ssh/rsync.js';
import { tmuxNewSession } from '../ssh/tmux.js';
import { FileStore } from '../store/file-store.js';
import type { Store } from '../store/store.js';
import { UserError } from '../ui/errors.js';
import { EarlierAttemptRunning, type Backend, type PollResult } from './backend.js';

export interface SshHandle extends Handle {
  backend: 'ssh';
  host: string;
  run_id: string;
  /** the attempt's store and scratch name: the run id, or `<run_id>/shards/<i>` (absent in older handles) */
  unit?: string;
  attempt: number | 'predict';
  root: string;
  session: string;
  /** committed steps the runner keeps (absent in older handles: 3); a pull home keeps as many */
  keep?: number;
}

const unitOf = (h: SshHandle) => h.unit ?? h.run_id;

export interface SshBackendOptions {
  host: RemoteHost;
  projectRoot: string;
  store: Store;
  /** the self-contained runner built by `make build` */
  runnerBundle: string;
  /** rsync excludes on top of the built-in ones (a fleet's sync_excludes) */
  syncExcludes?: string[];
  /** tmux session names start with it (default `sy`) */
  sessionPrefix?: string;
  /**
   * where an attempt's runner writes its outputs on the host: `<outputDir>/<unit>` (absolute, or
   * relative to the login directory); default the unit's scratch folder, `<root>/scratch/<unit>/output`
   */
  outputDir?: string;
  /** the command that makes the host ready (default `make bootstrap host=<name>`) */
  bootstrapCommand?: string;
}

// status, events, the newest metrics line, whether the tmux session lives and the last line of
// the newer log, in one call. Each section ends with a newline of its own, so an empty one
// still splits cleanly. The session is looked at first: a runner that writes its final status
// and exits between the two reads is then seen with its status, never as gone without one.
const POLL_SCRIPT = `m=$1 d=$2
s=$(tmux -L "$3" has-session -t "=$4" 2>/dev/null && echo alive || echo gone)
cat "$d/status.json" 2>/dev/null; echo; echo "$m"
cat "$d/events.jsonl" 2>/dev/null; echo; echo "$m"
tail -n 1 "$d/metrics.jsonl" 2>/dev/null; echo; echo "$m"
echo "$s"; echo "$m"
f=$(ls -t "$d/stdout.log" "$d/stderr.log" 2>/dev/null | head -n 1)
if [ -n "$f" ]; then tail -c 4096 "$f" | grep -v '^ *$' | tail -n 1; fi`;

// prepare's checks in one call: $1 the node runtime (exit 3 without it); $2 the repo folder
// (made; a failed mkdir prints "mkdir <status>" and exits 4); $3 the runtime folder (prints
// "file <path>" for each file there: the runners); $4 non-empty: prints "empty" when $2 is.
const PREPARE_SCRIPT = `test -x "$1" || exit 3
mkdir -p "$2" || { c=$?; echo "mkdir $c"; exit 4; }
for f in "$3"/*; do if [ -f "$f" ]; then printf 'file %s\\n' "$f"; fi; done
if [ -n "$4" ] && [ -z "$(ls -A "$2")" ]; then echo empty; fi
exit 0`;

// submit's remote side in one call: exit 10 when the attempt has started already (a final
// status or its tmux session); exit 12, printing its name, when an earlier attempt of the same
// unit still runs (its session lives, $5 being the session name without the attempt number,
// and it has no final status yet; one that is only exiting after writing it does not count),
// since two runners of one unit would share its scratch and checkpoints; else the spec from stdin is
// written to $4 (temp + rename) and the rest of the arguments, a tmux new-session argv, is run.
const SUBMIT_SCRIPT = `d=$1 sock=$2 session=$3 spec=$4 stem=$5; shift 5
[ -f "$d/status.json" ] && exit 10
tmux -L "$sock" has-session -t "=$session" 2>/dev/null && exit 10
for s in $(tmux -L "$sock" list-sessions -F '#{session_name}' 2>/dev/null); do
  n=\${s#"$stem"}
  [ "$n" != "$s" ] || continue
  case $n in ''|*[!0-9]*) continue;; esac
  st=\${d%/*}/$n/status.json
  [ -f "$st" ] && ! grep -q '"state": "running"' "$st" && continue
  echo "$s"; exit 12
done
mkdir -p "$(dirname "$spec")" && cat > "$spec.tmp" && mv -f "$spec.tmp" "$spec" || exit 11
exec "$@"`;

const CANCEL_SCRIPT = `d=$1
touch "$d/${STOP_REQUEST}"
pid=$(sed -n 's/^ *"pid": *\\([0-9][0-9]*\\).*/\\1/p' "$d/status.json" | head -n 1)
[ -n "$pid" ] && kill -"$2" "$pid"`;

/** What prepare did on a host. */
export interface Prepared {
  /** the runner's path on the host */
  runner: string;
  runnerSent: boolean;
  /** how the project got there: unpacked from the fan-out's tar into an empty copy, or rsync's delta */
  repo: { via: 'tar' | 'rsync'; files: number; bytes: number };
}

export class SshBackend implements Backend {
  readonly name = 'ssh' as const;
  readonly capabilities = { gpus: true, spot: false, shards: false, multiNode: false };

  private prepared: Promise<Prepared> | null = null;

  constructor(private readonly opts: SshBackendOptions) {}

  get host(): RemoteHost {
    return this.opts.host;
  }

  /**
   * Makes the host ready for attempts, once per backend: checks the runtime, pushes the project
   * (rsync delta) and the runner, and says what it did. A fleet calls it for every host at once
   * before the first shard starts, with `packs` shared by all of them (an empty repo on a host
   * is filled from one tar of the project); `submit` calls it otherwise.
   */
  prepare(opts: { packs?: RepoPacks } = {}): Promise<Prepared> {
    this.prepared ??= this.doPrepare(opts.packs).catch((err: unknown) => {
      this.prepared = null; // a later call tries again
      throw err;
    });
    return this.prepared;
  }

  private async doPrepare(packs?: RepoPacks): Promise<Prepared> {
    const { layout } = this.host;
    const excludes = this.opts.syncExcludes;
    // Packed while the host answers; only a host whose repo is still empty waits for it.
    const pack = packs?.get(this.opts.projectRoot, repoExcludes(excludes));
    // Read, hashed and compressed while the host answers too.
    const bundle = loadRunnerBundle(this.opts.runnerBundle);
    bundle.catch(() => {}); // awaited below, unless the host check fails first

    // One round trip: the runtime, the repo folder, which files the runtime folder holds, whether the repo is empty.
    const pre = await this.host.sh(PREPARE_SCRIPT, [layout.node, layout.repo, layout.runtime, pack ? 'check-empty' : ''], { allowFail: true });
    if (pre.code === 3) {
      throw new UserError(`ssh ${this.host.name}: not bootstrapped (no ${layout.node}); run ${this.opts.bootstrapCommand ?? `make bootstrap host=${this.host.name}`}`);
    }
    if (pre.code !== 0) {
      const mkdir = pre.code === 4 ? /^mkdir (\d+)$/m.exec(pre.stdout) : null;
      const why = pre.stderr.trim().split('\n').at(-1) ?? '';
      throw new UserError(`ssh ${this.host.name}: ${mkdir ? `mkdir exited ${mkdir[1]}` : `sh exited ${pre.code}`}${why ? `: ${why}` : ''}`);
    }
    const found = new Set(pre.stdout.split('\n'));

    const pushRepo = async (): Promise<Prepared['repo']> => {
      if (pack && found.has('empty')) {
        const packed = await pack;
        if (packed && (await this.host.unpackRepo(packed.archive))) return { via: 'tar', files: packed.files, bytes: packed.archive.length };
      }
      const r = await this.host.rsyncRepo(this.opts.projectRoot, { excludes });
      return { via: 'rsync', files: r.filesTransferred, bytes: r.bytesTransferred };
    };
    // The runner is small once compressed: written over the pooled connection, beside the repo's transfer.
    const pushRunner = async () => {
      const runner = await bundle;
      const dest = runner.remotePath(this.host);
      return found.has(`file ${dest}`) ? { runner: dest, runnerSent: false } : { runner: await writeRunner(this.host, runner), runnerSent: true };
    };
    const [repo, runner] = await Promise.allSettled([pushRepo(), pushRunner()]);
    if (repo.status === 'rejected') throw repo.reason;
    if (runner.status === 'rejected') throw runner.reason;
    return { ...runner.value, repo: repo.value };
  }

  async ready(): Promise<void> {
    await this.prepare();
  }

  /** Where the runner on the host keeps runs: the project's store when the host can reach it. */
  private remoteStoreUrl(): string {
    return this.opts.store instanceof FileStore ? 'file://../store' : this.opts.store.url;
  }

  async submit(spec: AttemptSpec): Promise<SshHandle> {
    const { layout } = this.host;
    const handle: SshHandle = {
      backend: 'ssh',
      host: this.host.name,
      run_id: spec.run_id,
      unit: spec.unit_id,
      attempt: spec.attempt,
      root: layout.root,
      session: attemptSession(spec.unit_id, spec.attempt, this.opts.sessionPrefix),
      keep: spec.keep_checkpoints,
    };
    if (spec.data_dir && path.isAbsolute(spec.data_dir)) {
      throw new UserError(`ssh ${this.host.name}: data.dir outside the repository cannot be shipped; move it under the competition folder`);
    }
    const { runner } = await this.prepare();

    const remoteSpec: AttemptSpec = { ...spec, store: this.remoteStoreUrl(), secrets_file: '../secrets.json', venv: '../venv' };
    const specPath = layout.attemptSpec(spec.unit_id, spec.attempt);
    const rel = (p: string) => p.slice(layout.root.length + 1);
    const argv = ['runtime/node', rel(runner), '--spec', rel(specPath), '--root', 'repo', '--work', rel(layout.work(spec.unit_id))];
    if (this.opts.outputDir) argv.push('--output', `${this.opts.outputDir}/${spec.unit_id}`);
    const started = await this.host.sh(
      SUBMIT_SCRIPT,
      [layout.attemptDir(spec.unit_id, spec.attempt), TMUX_SOCKET, handle.session, specPath, handle.session.replace(/\d+$/, ''), ...tmuxNewSession(TMUX_SOCKET, handle.session, layout.root, argv)],
      { stdin: JSON.stringify(remoteSpec, null, 2), allowFail: true },
    );
    // 10: started already (submit is idempotent per run and attempt)
    if (started.code !== 0 && started.code !== 10) {
      const why = (started.stderr.trim() || started.stdout.trim()).split('\n').at(-1) ?? '';
      if (started.code === 12) {
        throw new EarlierAttemptRunning(`ssh ${this.host.name}: an earlier attempt of ${spec.unit_id} still runs in tmux session ${why}; stop it before starting attempt ${spec.attempt}`);
      }
      const what = started.code === 11 ? `cannot write ${specPath}` : `tmux exited ${started.code}`;
      throw new UserError(`ssh ${this.host.name}: ${what}${why ? `: ${why}` : ''}`);
    }
    return handle;
  }

  async poll(handle: Handle): Promise<PollResult> {
    const h = handle as SshHandle;
    const marker = `--switchyard-${randomBytes(8).toString('hex')}--`;
    const dir = this.host.layout.attemptDir(unitOf(h), h.attempt);
    let out: string;
    try {
      out = (await this.host.sh(POLL_SCRIPT, [marker, dir, TMUX_SOCKET, h.session], { timeoutMs: this.host.target.connectTimeoutSec * 1000 + 5000 })).stdout;
    } catch (err) {
      return { state: 'lost', reason: (err as Error).message, exit_code: null, restored_step: null, last_step: null, metrics: null, events: [], unanswered: true };
    }
    const [statusText = '', eventsText = '', metricsText = '', session = '', lastLine = ''] = out.split(`\n${marker}\n`).map((s) => s.trim());
    const status = statusText ? (JSON.parse(statusText) as AttemptStatus) : null;
    const metrics = parseJsonLines<Record<string, unknown>>(metricsText).at(-1) ?? null;
    const base = {
      exit_code: status?.exit_code ?? null,
      restored_step: status?.restored_step ?? null,
      last_step: status?.last_step ?? null,
      metrics,
      events: parseJsonLines<RunnerEvent>(eventsText),
      last_line: lastLine || null,
    };
    if (status && TERMINAL.has(status.state)) return { ...base, state: status.state, reason: status.reason };
    if (session === 'alive') return { ...base, state: 'running', reason: null };
    return { ...base, state: 'lost', reason: `the runner's tmux session ${h.session} on ${h.host} is gone without a final status` };
  }

  async cancel(handle: Handle, opts: { force?: boolean } = {}): Promise<void> {
    const h = handle as SshHandle;
    await this.host.sh(CANCEL_SCRIPT, [this.host.layout.attemptDir(unitOf(h), h.attempt), opts.force ? 'KILL' : 'TERM'], { allowFail: true });
  }

  async *logs(handle: Handle, opts: { follow: boolean; stream?: 'stdout' | 'stderr' }): AsyncIterable<string> {
    const h = handle as SshHandle;
    const file = `${this.host.layout.attemptDir(unitOf(h), h.attempt)}/${opts.stream ?? 'stdout'}.log`;
    if (!opts.follow) {
      yield (await this.host.run(['cat', file], { allowFail: true })).stdout;
      return;
    }
    const chunks: string[] = [];
    let wake: () => void = () => {};
    const stream = this.host.pool.stream(this.host.target, ['tail', '-n', '+1', '-F', file], (text, from) => {
      if (from === 'stdout') chunks.push(text);
      wake();
    });
    let ended = false;
    void stream.done.finally(() => ((ended = true), wake()));
    try {
      for (;;) {
        while (chunks.length) yield chunks.shift()!;
        if (ended) return;
        const done = TERMINAL.has((await this.poll(h)).state);
        await new Promise<void>((r) => ((wake = r), setTimeout(r, done ? 500 : 1000)));
        if (done) {
          while (chunks.length) yield chunks.shift()!;
          return;
        }
      }
    } finally {
      stream.close();
    }
  }

  /** With a local file store, the host kept the run in its own store: bring it home. */
  async pull(handle: Handle): Promise<void> {
    const h = handle as SshHandle;
    if (!(this.opts.store instanceof FileStore)) return; // the runner wrote to the shared store
    const unit = unitOf(h);
    const local = this.opts.store.pathOf(runKeys.dir(unit).replace(/\/$/, ''));
    mkdirSync(path.dirname(local), { recursive: true }); // rsync makes only the last folder
    // Blobs before manifests, as the checkpoint protocol orders them: a pull cut off halfway (its
    // host going away) never leaves a step whose manifest is home but whose blobs are not.
    const pull = { src: `${this.host.layout.store}/${runKeys.dir(unit)}`, dest: `${local}/`, target: this.host.target, direction: 'pull' } as const;
    await runRsync({ ...pull, excludes: [MANIFEST_NAME] });
    await runRsync({ ...pull, excludes: [] });
    await pruneStoredSteps(this.opts.store, unit, h.keep ?? 3);
  }

  /**
   * Gives the host the committed checkpoints this machine holds for a unit (a shard moved here
   * from a lost host), so its runner resumes from them. With a shared store there is nothing to do.
   */
  async pushCheckpoints(unitId: string): Promise<void> {
    if (!(this.opts.store instanceof FileStore)) return;
    const local = this.opts.store.pathOf(runKeys.ckptDir(unitId).replace(/\/$/, ''));
    if (!existsSync(local)) return;
    const remote = `${this.host.layout.store}/${runKeys.ckptDir(unitId)}`;
    await this.host.run(['mkdir', '-p', remote]);
    await runRsync({ src: `${local}/`, dest: remote, target: this.host.target, direction: 'push', excludes: [] });
  }
}
