// The runner: the one program every backend starts on its worker. It restores the latest
// committed checkpoint, starts the experiment with the contract environment, supervises it
// (logs, signals with a grace period), uploads each committed checkpoint, and writes the
// attempt's final status. All run semantics live here once; backends only ship and start it.
import { createWriteStream, existsSync, readdirSync, writeFileSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { latestCheckpoint } from '../ckpt/checkpoint.js';
import { runKeys } from '../store/run-keys.js';
import { MaskedCopy } from '../secrets/masked-copy.js';
import { MIN_SECRET_LENGTH, Redactor } from '../secrets/redact.js';
import { workerSecrets } from '../secrets/secrets-file.js';
import type { CommandSpec } from '../spec/experiment.js';
import { appendFileWhole, ensureDir, writeFileAtomically } from '../store/atomic-file.js';
import type { Store } from '../store/store.js';
import { diskError, isDiskProblem } from '../ui/errors.js';
import { stageAttemptData, workingFolder } from './attempt-folders.js';
import { AttemptFence } from './attempt-fence.js';
import { AttemptFilesMirror } from './attempt-files.js';
import { AttemptLive } from './attempt-live.js';
import { continueAttemptFiles, settleRerunSteps } from './attempt-rerun.js';
import { ATTEMPT_FILES, EVENTS_FILE, STOP_REQUEST, type AttemptSpec, type AttemptState, type AttemptStatus, type RunnerEvent } from './attempt-spec.js';
import { CheckpointSync } from './checkpoint-sync.js';
import { startExperiment, type ExitInfo, type ExperimentProcess } from './experiment-process.js';
import { OutputMetrics } from './output-metrics.js';
import { mergedOutputs } from './outputs-manifest.js';
import { deleteStoredStep, restoreLatest, StoreReadError, storedSaveIsOlder, storedSteps, uploadStep } from './store-checkpoints.js';

/** Exit code an experiment uses to say "I saved a checkpoint, run me again". */
export const EXIT_RESUME = 75;
const SYNC_INTERVAL_MS = 500;

export interface RunnerOptions {
  root: string;
  /** per-run scratch folder on this worker: ckpt/, output/, attempts/<n>/ */
  workDir: string;
  /** where the experiment writes SWITCHYARD_OUTPUT_DIR (default `<workDir>/output`) */
  outputDir?: string;
  store: Store;
  /** mirror of the experiment's output (the foreground status display) */
  echo?: (stream: 'stdout' | 'stderr', data: Buffer) => void;
  onEvent?: (e: RunnerEvent) => void;
  /** keep live.json, which the ssh and SLURM polls read (runner/attempt-live.ts); a runner here is read directly */
  liveView?: boolean;
}

/** The longest delay a Node timer holds (~24.8 days): a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** `fn` after `ms` (unref'd), however long: a delay past MAX_TIMER_MS waits in several timers. */
function longTimeout(fn: () => void, ms: number): { cancel(): void } {
  let timer: NodeJS.Timeout;
  const arm = (left: number) => {
    timer = setTimeout(() => (left > MAX_TIMER_MS ? arm(left - MAX_TIMER_MS) : fn()), Math.min(Math.max(0, left), MAX_TIMER_MS));
    timer.unref();
  };
  arm(ms);
  return { cancel: () => clearTimeout(timer) };
}

export function workPaths(workDir: string, attempt: number | 'predict', outputDir?: string) {
  return {
    ckpt: path.join(workDir, 'ckpt'),
    output: outputDir ?? path.join(workDir, 'output'),
    attempt: path.join(workDir, 'attempts', String(attempt)),
  };
}

/** The folder of switchyard_ckpt.py: in the project the runner serves, else beside this code. */
function ckptHelperDir(root: string): string {
  const inProject = path.join(root, 'scripts', 'lib', 'ckpt');
  if (existsSync(path.join(inProject, 'switchyard_ckpt.py'))) return inProject;
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = here; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'scripts', 'lib', 'ckpt');
    if (existsSync(path.join(candidate, 'switchyard_ckpt.py'))) return candidate;
  }
  return inProject;
}

export class AttemptRunner {
  readonly status: AttemptStatus;
  readonly paths: ReturnType<typeof workPaths>;
  private child: ExperimentProcess | null = null;
  private stopKind: 'cancel' | 'preempt' | 'timeout' | null = null;
  /** why it was asked to stop, when the asker says more than the kind */
  private stopReason: string | null = null;
  private killTimer: NodeJS.Timeout | null = null;
  /** the first write that failed (a full disk): it ends the attempt, as failed, with its reason */
  private writeFailure: Error | null = null;
  private sync: CheckpointSync;
  /** the declared secrets (read at the start of `run`) and what masks them in all we write */
  private secrets: Record<string, string> = {};
  private redactor = new Redactor([]);
  /** with secrets to mask, the experiment's metrics file, copied masked into the attempt's */
  private metrics: MaskedCopy | null = null;
  /** the staged, read-only view of the run's pinned data (SWITCHYARD_DATA_DIR) */
  private dataDir: string | null = null;
  private files: AttemptFilesMirror;
  private fence: AttemptFence;
  /** the view a host's poll reads (RunnerOptions.liveView), from the attempt folder's start on */
  private live: AttemptLive | null = null;

  constructor(
    readonly spec: AttemptSpec,
    private readonly opts: RunnerOptions,
  ) {
    this.paths = workPaths(opts.workDir, spec.attempt, opts.outputDir);
    this.files = new AttemptFilesMirror(opts.store, spec.unit_id, spec.attempt, this.paths.attempt);
    this.fence = new AttemptFence(opts.store, spec.unit_id, spec.attempt, spec.rerun);
    this.status = {
      run_id: spec.run_id,
      attempt: spec.attempt,
      state: 'running',
      reason: null,
      exit_code: null,
      signal: null,
      pid: process.pid,
      started_at: new Date().toISOString(),
      ended_at: null,
      restored_step: null,
      last_step: null,
    };
    // Logs and metrics go up with every checkpoint, so a preempted worker loses none of them
    // up to its last commit (status.json goes up once, at the end, and completes the set).
    this.sync = new CheckpointSync(
      opts.store,
      spec.unit_id,
      this.paths.ckpt,
      spec.keep_checkpoints,
      (e) => this.handleSyncEvent(e),
      () => this.mirrorAttemptFiles(ATTEMPT_FILES.filter((f) => f !== 'status.json')),
      () => this.stillCurrent(),
    );
  }

  /** False once a newer attempt of the unit has started elsewhere: this one then stops. */
  private async stillCurrent(): Promise<boolean> {
    if (await this.fence.stillCurrent()) return true;
    if (!this.stopKind) {
      this.emit({ type: 'notice', line: `${this.fence.supersededBy} has taken ${this.spec.unit_id} over; stopping, nothing more goes to the store` });
      this.requestStop('cancel');
    }
    return false;
  }

  /** Appends the event to events.jsonl (a whole line or nothing) and passes it on; throws if the write fails. */
  private emit(e: RunnerEvent): void {
    if (e.type === 'notice') e = { ...e, line: this.redactor.text(e.line) };
    try {
      appendFileWhole(path.join(this.paths.attempt, EVENTS_FILE), JSON.stringify(e) + '\n');
    } catch (err) {
      throw this.failWrite(err);
    }
    this.live?.event();
    this.opts.onEvent?.(e);
  }

  /** A notice for the orchestrator; one that cannot be written is already the attempt's write failure. */
  private emitNotice(line: string): void {
    try {
      this.emit({ type: 'notice', line });
    } catch {
      // recorded in failWrite
    }
  }

  /**
   * A write failed (the work folder's or the store's disk is full): training on would produce
   * work that cannot be kept. The experiment is stopped; what is already committed stays.
   */
  private failWrite(err: unknown): Error {
    const failure = diskError(`work folder ${path.relative(process.cwd(), this.opts.workDir)}`, this.opts.workDir, err) ?? (err as Error);
    this.writeFailure ??= failure;
    this.signalStop();
    return failure;
  }

  private handleSyncEvent(e: RunnerEvent): void {
    if (e.type === 'ckpt.committed') this.status.last_step = e.step;
    this.emit(e);
  }

  /**
   * Stops the experiment: SIGTERM to its group now, SIGKILL after the grace period.
   * `cancel` is a user's stop (no automatic resume); `preempt` is the machine going away.
   */
  requestStop(kind: 'cancel' | 'preempt' | 'timeout', reason?: string): void {
    // `make stop` leaves a stop request before its signal: that is a user's stop.
    const requested = existsSync(path.join(this.paths.attempt, STOP_REQUEST));
    if (!this.stopKind && !requested && reason) this.stopReason = reason;
    this.stopKind ??= requested ? 'cancel' : kind;
    this.signalStop();
  }

  /** SIGTERM to the experiment's group now, SIGKILL after the grace period. */
  private signalStop(): void {
    if (!this.child || this.killTimer) return;
    this.child.signal('SIGTERM', this.spec.grace_sec * 1000);
    this.killTimer = setTimeout(() => this.kill(), this.spec.grace_sec * 1000);
    this.killTimer.unref();
  }

  /** A second Ctrl-C: no more waiting. */
  kill(): void {
    this.stopKind ??= 'cancel';
    this.child?.signal('SIGKILL');
  }

  async run(): Promise<AttemptStatus> {
    try {
      for (const dir of Object.values(this.paths)) await ensureDir(dir);
      if (this.isRerun) {
        // Claimed first: the run before it, on a VM given up, stops copying its files over these.
        if (await this.fence.claim()) await continueAttemptFiles(this.opts.store, this.spec.unit_id, this.spec.attempt as number, this.paths.attempt);
      }
      writeFileSync(path.join(this.paths.attempt, 'metrics.jsonl'), '', { flag: 'a' });
      if (this.opts.liveView) this.live = AttemptLive.begin(this.paths.attempt);
      await this.writeStatus();
    } catch (err) {
      this.failWrite(err);
    }
    const stdout = this.openLog('stdout.log');
    const stderr = this.openLog('stderr.log');
    const note = (line: string) => {
      line = this.redactor.text(line);
      const b = Buffer.from(`switchyard: ${line}\n`);
      stderr.write(b);
      this.live?.output('stderr', b);
      this.emitNotice(line);
    };
    try {
      if (this.writeFailure) return await this.finish({ code: null, signal: null }, stdout, stderr);
      if (!(await this.fence.claim())) {
        // A newer attempt holds the unit already (this one started late): it ends cancelled,
        // saying so, before it restores, uploads or deletes a step.
        await this.stillCurrent();
        return await this.finish({ code: null, signal: null }, stdout, stderr);
      }
      this.loadSecrets(note);
      if (this.isRerun) await settleRerunSteps(this.opts.store, this.spec.unit_id, this.spec.attempt as number, this.paths.attempt, (e) => this.emit(e));
      if (this.spec.attempt !== 'predict') await this.adoptLocalSteps(note);
      this.status.restored_step = await restoreLatest(this.opts.store, this.spec.unit_id, this.paths.ckpt, note);
      this.status.last_step = this.status.restored_step;
      this.emit({ type: 'restored', step: this.status.restored_step, attempt: this.spec.attempt });
      this.sync.init(this.status.restored_step);
      this.dataDir = await stageAttemptData(this.opts.root, this.spec, note);
      // A stop asked for while the runner was starting (`make stop` leaves only its request then).
      this.checkStopRequest();
      if (this.stopKind) return await this.finish({ code: null, signal: 'SIGTERM' }, stdout, stderr);
      if (this.spec.setup) {
        const setup = await this.supervise(this.spec.setup, this.spec.setup_cwd, stdout, stderr);
        if (setup.code !== 0 || this.stopKind) {
          if (!this.stopKind) this.status.reason = `setup exited ${setup.code ?? setup.signal}`;
          return await this.finish(setup, stdout, stderr, this.stopKind ? undefined : 'failed');
        }
      }
      const metrics = this.spec.metrics_from ? new OutputMetrics(this.spec.metrics_from, this.metrics?.source ?? path.join(this.paths.attempt, 'metrics.jsonl')) : undefined;
      const exit = await this.supervise(this.spec.command, this.spec.command_cwd, stdout, stderr, metrics);
      return await this.finish(exit, stdout, stderr);
    } catch (err) {
      if (isDiskProblem(err)) this.failWrite(err); // restoring into a full work folder, say
      else if (err instanceof StoreReadError && !this.writeFailure) {
        // Nothing was skipped or deleted for it: the next attempt restores from the store again.
        note(`${err.message}; the next attempt tries again`);
        this.status.reason = this.redactor.text(err.message);
        return await this.finish({ code: null, signal: null }, stdout, stderr, 'preempted');
      } else if (!this.writeFailure) {
        note(`runner error: ${(err as Error).message}`);
        this.status.reason = this.redactor.text(`runner error: ${(err as Error).message}`);
      }
      return await this.finish({ code: 1, signal: null }, stdout, stderr, 'failed');
    }
  }

  /** The scheduler runs this attempt again after its worker failed: it goes on where the store says it was. */
  private get isRerun(): boolean {
    return this.spec.attempt !== 'predict' && (this.spec.rerun ?? 0) > 0;
  }

  /** An attempt log, appended to; a write that fails (a full disk) ends the attempt instead of the process. */
  private openLog(name: string): WriteStream {
    return createWriteStream(path.join(this.paths.attempt, name), { flags: 'a' }).on('error', (err) => this.failWrite(err));
  }

  /**
   * A step committed locally by an earlier attempt whose runner died before uploading it (or
   * before uploading its save again) is still progress: upload it before restoring, so nothing
   * committed is lost.
   */
  private async adoptLocalSteps(note: (line: string) => void): Promise<void> {
    if (!existsSync(this.paths.ckpt)) return;
    const local = await latestCheckpoint(this.paths.ckpt, { report: note });
    if (!local) return;
    const stored = (await storedSteps(this.opts.store, this.spec.unit_id)).filter((s) => s.hasManifest).at(-1);
    if (stored && stored.step > local.step) return;
    if (stored?.step === local.step) {
      // The restore would put the stored save of the step over a later one made here.
      if (!(await storedSaveIsOlder(this.opts.store, this.spec.unit_id, local.manifest, note))) return;
      await deleteStoredStep(this.opts.store, this.spec.unit_id, local.step); // un-committed before its blobs change
    }
    const { key, sha256 } = await uploadStep(this.opts.store, this.spec.unit_id, local.dir, local.manifest);
    note(`uploaded step ${local.step}, committed here by an earlier attempt`);
    this.emit({ type: 'ckpt.committed', step: local.step, manifest: key, manifest_sha256: sha256 });
  }

  /** The declared secrets' values, from the worker's secrets file: never logged, never stored. */
  private loadSecrets(note: (line: string) => void): void {
    const s = this.spec;
    ({ env: this.secrets, redactor: this.redactor } = workerSecrets(s.secrets_file && path.resolve(this.opts.root, s.secrets_file), s.secrets_file ?? 'a secrets file', s.secrets));
    for (const k of this.redactor.short) note(`${k} is shorter than ${MIN_SECRET_LENGTH} characters: it is masked wherever it appears, ordinary text too; a longer value keeps the logs readable`);
    if (this.redactor.empty) return;
    const metrics = path.join(this.paths.attempt, 'metrics.jsonl');
    this.metrics = new MaskedCopy(metrics, this.redactor, (err) => note(`cannot copy metrics to ${metrics}: ${err.message}`));
  }

  private contractEnv(): NodeJS.ProcessEnv {
    const s = this.spec;
    const pythonPath = [ckptHelperDir(this.opts.root), process.env.PYTHONPATH].filter(Boolean).join(path.delimiter);
    const venv = s.venv ? path.resolve(this.opts.root, s.venv) : null;
    const venvEnv = venv && existsSync(path.join(venv, 'bin'))
      ? { VIRTUAL_ENV: venv, PATH: [path.join(venv, 'bin'), process.env.PATH].filter(Boolean).join(path.delimiter) }
      : {};
    return {
      ...process.env,
      ...venvEnv,
      ...s.env,
      ...this.secrets,
      SWITCHYARD_RUN_ID: s.run_id,
      SWITCHYARD_PINS_DIGEST: s.pins_digest,
      SWITCHYARD_ATTEMPT: String(s.attempt),
      SWITCHYARD_SEED: String(s.seed),
      SWITCHYARD_CKPT_DIR: this.paths.ckpt,
      SWITCHYARD_CKPT_EVERY_SEC: String(s.ckpt_every_sec),
      SWITCHYARD_CKPT_KEEP: String(s.keep_checkpoints),
      SWITCHYARD_OUTPUT_DIR: this.paths.output,
      SWITCHYARD_METRICS: this.metrics?.source ?? path.join(this.paths.attempt, 'metrics.jsonl'),
      SWITCHYARD_DATA_DIR: this.dataDir ?? '',
      SWITCHYARD_CODE_DIR: path.resolve(this.opts.root, s.cwd),
      SWITCHYARD_SHARD_INDEX: String(s.shard_index),
      SWITCHYARD_SHARD_COUNT: String(s.shard_count),
      PYTHONPATH: pythonPath,
      PYTHONUNBUFFERED: '1',
    };
  }

  /** `metrics`: turns the command's output into metrics lines (train.metrics_from). */
  private async supervise(command: CommandSpec, cwd: string | null, stdout: WriteStream, stderr: WriteStream, metrics?: OutputMetrics): Promise<ExitInfo> {
    const echo = this.opts.echo;
    // Secrets are masked before anything is written or echoed.
    const out = this.redactor.pipe((b) => (stdout.write(b), this.live?.output('stdout', b), metrics?.stdout.feed(b), echo?.('stdout', b)));
    const err = this.redactor.pipe((b) => (stderr.write(b), this.live?.output('stderr', b), metrics?.stderr.feed(b), echo?.('stderr', b)));
    this.child = startExperiment(command, {
      cwd: workingFolder(this.opts.root, this.spec, cwd, this.dataDir),
      env: this.contractEnv(),
      onStdout: (b) => out.write(b),
      onStderr: (b) => err.write(b),
      scratch: this.metrics?.dir,
    });
    if (this.stopKind) this.requestStop(this.stopKind);
    // The time limit counts from this attempt's start: past it, checkpoint and stop.
    const limit = this.spec.time_limit_sec ? longTimeout(() => this.requestStop('timeout'), this.spec.time_limit_sec * 1000 - (Date.now() - Date.parse(this.status.started_at))) : null;
    const ticker = setInterval(() => {
      this.checkStopRequest();
      this.metrics?.pump();
      this.live?.refresh();
      this.sync.tick().catch((err: Error) => {
        // A full store ends the attempt; another upload failure is tried again next tick.
        if (isDiskProblem(err) || this.writeFailure) this.failWrite(err);
        else this.emitNotice(`checkpoint upload failed: ${err.message}`);
      });
    }, SYNC_INTERVAL_MS);
    const exit = await this.child.exited;
    out.end();
    err.end();
    metrics?.end(); // after the masks let their last bytes through
    clearInterval(ticker);
    limit?.cancel();
    if (this.killTimer) clearTimeout(this.killTimer);
    this.killTimer = null;
    return exit;
  }

  /** `make stop` from another shell leaves a stop-request file, then signals us. */
  private checkStopRequest(): void {
    if (!this.stopKind && existsSync(path.join(this.paths.attempt, STOP_REQUEST))) this.requestStop('cancel');
  }

  private classify(exit: ExitInfo): { state: AttemptState; reason: string | null } {
    if (this.fence.supersededBy !== null) return { state: 'cancelled', reason: `${this.fence.supersededBy} took the unit over (this one was given up as lost)` };
    if (this.stopKind === 'cancel') return { state: 'cancelled', reason: 'stopped by the user' };
    if (this.stopKind === 'preempt') return { state: 'preempted', reason: this.stopReason ?? 'the runner was sent SIGTERM' };
    if (this.stopKind === 'timeout') return { state: 'timeout', reason: this.stopReason ?? `ran past its time limit of ${this.spec.time_limit_sec}s` };
    if (exit.code === 0) return { state: 'succeeded', reason: null };
    if (exit.code === EXIT_RESUME) return { state: 'preempted', reason: `the experiment exited ${EXIT_RESUME} (checkpointed, resume me)` };
    if (exit.signal) return { state: 'preempted', reason: `the experiment was killed by ${exit.signal}` };
    return { state: 'failed', reason: `the experiment exited ${exit.code}` };
  }

  private async finish(
    exit: ExitInfo,
    stdout: WriteStream,
    stderr: WriteStream,
    forced?: AttemptState,
  ): Promise<AttemptStatus> {
    this.metrics?.close();
    // Steps committed here still go up after a write failure: the store may have room.
    const flushError = await this.sync.flush().then(
      () => null,
      (err: Error) => err,
    );
    await this.fence.stillCurrent().catch(() => true); // taken over meanwhile: no outputs from here
    const { state, reason } = forced ? { state: forced, reason: this.status.reason } : this.classify(exit);
    Object.assign(this.status, {
      state: flushError && state === 'succeeded' ? 'failed' : state,
      reason: flushError ? this.redactor.text(`final checkpoint upload failed: ${flushError.message}`) : reason,
      exit_code: exit.code,
      signal: exit.signal,
      ended_at: new Date().toISOString(),
    });
    if (this.status.state === 'succeeded') await this.saveOutputs().catch((err) => this.failWrite(err));
    // A write failure is the attempt's end whatever the experiment did: its reason is the one to fix.
    if (this.writeFailure) Object.assign(this.status, { state: 'failed', reason: this.writeFailure.message });
    await Promise.all([stdout, stderr].map((s) => new Promise((resolve) => s.end(resolve))));
    // Best effort from here on, the state is decided: this process holds the status (an
    // orchestrator elsewhere that finds none records the attempt lost), and the backend's
    // pull brings home attempt files that did not reach the store.
    await this.writeStatus().catch(() => {});
    // A rerun of this attempt owns its files in the store now.
    if (!this.fence.byRerun) await this.mirrorAttemptFiles().catch(() => {});
    return this.status;
  }

  private async saveOutputs(): Promise<void> {
    const files: { path: string; sha256: string }[] = [];
    const entries = readdirSync(this.paths.output, { recursive: true, withFileTypes: true });
    for (const e of entries.filter((x) => x.isFile())) {
      const rel = path.relative(this.paths.output, path.join(e.parentPath, e.name)).split(path.sep).join('/');
      const stored = await this.opts.store.put(runKeys.output(this.spec.unit_id, rel), path.join(this.paths.output, rel));
      files.push({ path: rel, sha256: stored.sha256 });
    }
    if (!files.length) return;
    files.sort((a, b) => a.path.localeCompare(b.path));
    // Written last: a reader that finds it knows every output listed is complete.
    const all = await mergedOutputs(this.opts.store, this.spec.unit_id, files);
    await this.opts.store.putBytes(runKeys.outputsManifest(this.spec.unit_id), JSON.stringify({ files: all }, null, 2) + '\n');
    this.emit({ type: 'outputs.saved', files });
  }

  private writeStatus(): Promise<void> {
    return writeFileAtomically(path.join(this.paths.attempt, 'status.json'), JSON.stringify(this.status, null, 2) + '\n');
  }

  /** Copies the attempt's logs, metrics and status to the store, then their manifest. */
  async mirrorAttemptFiles(names: readonly string[] = ATTEMPT_FILES): Promise<void> {
    await this.files.copy(names);
  }
}
