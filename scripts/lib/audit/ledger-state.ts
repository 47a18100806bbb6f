// What the ledger says should exist in the store, folded entry by entry in one pass: the live
// checkpoint steps of every run and shard (committed, not since pruned, lost or abandoned), the
// outputs as last saved, and each run's recorded pins. Memory grows with what is live, not with
// the length of the ledger.
import { readFile } from 'node:fs/promises';
import type { LedgerEntry } from '../ledger/format.js';
import type { Pins } from '../pins/digest.js';
import { mergeKeys, runKeys, shardUnit } from '../runs/run-record.js';

export interface LiveStep {
  line: number;
  run_id: string;
  shard?: number;
  /** the store name of its run or shard */
  unit: string;
  step: number;
  manifest: string;
  manifest_sha256: string;
  /** the attempt of the unit that was running when it was committed (null before any) */
  attempt: number | null;
}

export interface LiveOutput {
  line: number;
  run_id: string;
  /** what to call it: `outputs/model.json`, `shard 2 outputs/shard-2-of-6.jsonl` */
  name: string;
  key: string;
  sha256: string;
}

export interface CreatedRun {
  line: number;
  run_id: string;
  digest: string;
  pins: Pins;
  data_manifest?: string;
  data_manifest_sha256?: string;
}

const shardOf = (e: LedgerEntry) => (typeof e.shard === 'number' ? e.shard : undefined);

/** Steps by unit, then step number: nested maps, so a million entries build no composite keys. */
type ByUnit<T> = Map<string, Map<number, T>>;
function inUnit<T>(m: ByUnit<T>, unit: string): Map<number, T> {
  let steps = m.get(unit);
  if (!steps) m.set(unit, (steps = new Map()));
  return steps;
}

export class LedgerState {
  private readonly live: ByUnit<LiveStep> = new Map();
  /** why each step the ledger had live was retired (pruned, lost, abandoned) */
  private readonly retired: ByUnit<string> = new Map();
  readonly outputs = new Map<string, LiveOutput>();
  readonly runs = new Map<string, CreatedRun>();
  /** every run the ledger mentions */
  readonly runIds = new Set<string>();
  private readonly attempts = new Map<string, number>();

  /**
   * `stored`: the steps the store holds, by unit, when known: only those are remembered as
   * retired, since only they can have leftovers (a long ledger retires a step per commit).
   */
  constructor(private readonly stored?: ReadonlyMap<string, ReadonlySet<number>>) {}

  add(e: LedgerEntry): void {
    if (typeof e.run_id !== 'string') return;
    this.runIds.add(e.run_id);
    const shard = shardOf(e);
    const unit = shard === undefined ? e.run_id : shardUnit(e.run_id, shard);
    switch (e.type) {
      case 'run.created':
        this.runs.set(e.run_id, { line: e.seq, run_id: e.run_id, digest: String(e.digest), pins: e.pins as Pins, data_manifest: e.data_manifest as string | undefined, data_manifest_sha256: e.data_manifest_sha256 as string | undefined });
        break;
      case 'attempt.started':
        if (typeof e.attempt === 'number') this.attempts.set(unit, e.attempt);
        break;
      case 'ckpt.committed': {
        const n = Number(e.step);
        const steps = inUnit(this.live, unit);
        steps.delete(n); // a re-commit of the same step supersedes the earlier one (and keeps line order)
        this.retired.get(unit)?.delete(n);
        const step = { line: e.seq, run_id: e.run_id, unit, step: n, manifest: String(e.manifest), manifest_sha256: String(e.manifest_sha256), attempt: this.attempts.get(unit) ?? null };
        steps.set(n, shard === undefined ? step : { ...step, shard });
        break;
      }
      case 'ckpt.pruned':
      case 'ckpt.lost':
      case 'ckpt.abandoned': {
        const n = Number(e.step);
        if (this.live.get(unit)?.delete(n) && (!this.stored || this.stored.get(unit)?.has(n))) inUnit(this.retired, unit).set(n, e.type.slice(5));
        break;
      }
      case 'ckpt.removed':
        this.retired.get(unit)?.delete(Number(e.step));
        break;
      case 'outputs.saved':
        for (const f of (e.files as { path: string; sha256: string }[] | undefined) ?? []) {
          const key = runKeys.output(unit, f.path);
          this.outputs.set(key, { line: e.seq, run_id: e.run_id, name: `${shard === undefined ? '' : `shard ${shard} `}outputs/${f.path}`, key, sha256: f.sha256 });
        }
        break;
      case 'merge.completed': {
        const key = typeof e.output === 'string' ? e.output : mergeKeys.merged(e.run_id);
        this.outputs.set(key, { line: e.seq, run_id: e.run_id, name: key.slice(runKeys.dir(e.run_id).length), key, sha256: String(e.sha256) });
        break;
      }
    }
  }

  /** The newest attempt of the unit whose start the ledger has, or null. */
  startedAttempt(unit: string): number | null {
    return this.attempts.get(unit) ?? null;
  }

  /** Every live step, in the order of its ledger line. */
  liveSteps(unit?: string): LiveStep[] {
    const units = unit === undefined ? [...this.live.values()] : [this.live.get(unit) ?? new Map<number, LiveStep>()];
    return units.flatMap((steps) => [...steps.values()]).sort((a, b) => a.line - b.line);
  }

  isLive(unit: string, step: number): boolean {
    return !!this.live.get(unit)?.has(step);
  }

  /** Why the ledger retired this step (`pruned`, `lost`, `abandoned`), if it did. */
  retiredAs(unit: string, step: number): string | undefined {
    return this.retired.get(unit)?.get(step);
  }
}

/** The state of one run, from its own entries only (a substring test skips the rest unparsed). */
export async function runLedgerState(ledgerPath: string, runId: string): Promise<LedgerState> {
  const state = new LedgerState();
  const text = await readFile(ledgerPath, 'utf8').catch(() => '');
  const needle = `"run_id":${JSON.stringify(runId)}`;
  for (const line of text.split('\n')) {
    if (!line.includes(needle)) continue;
    try {
      state.add(JSON.parse(line) as LedgerEntry);
    } catch {
      // a damaged line: make verify names it
    }
  }
  return state;
}
