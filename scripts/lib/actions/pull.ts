// make pull: a run's outputs, logs and metrics from the store to this machine, each file
// checked against the SHA-256 its runner recorded before it replaces anything there, so a
// corrupt copy is never left behind. A run that ran elsewhere comes home to the store first.
import path from 'node:path';
import { backendForHandle } from '../backends/index.js';
import type { Project } from '../project.js';
import { parseAttemptManifest } from '../runner/attempt-files.js';
import { ATTEMPT_FILES } from '../runner/attempt-spec.js';
import { runKeys, unitKey, type RunRecord } from '../runs/run-record.js';
import { writeAtomically } from '../store/atomic-file.js';
import type { Store } from '../store/store.js';
import { UserError } from '../ui/errors.js';

export interface Pulled {
  /** files copied (run.json included) */
  files: number;
  /** the run has no outputs (yet) */
  noOutputs: boolean;
  /** files copied with no recorded hash to check them against, relative to the destination */
  unchecked: string[];
}

class Differs extends Error {}

/** Copies `key` into `dest` only if its bytes hash to `sha256`: fetched beside `dest`, compared, then renamed. */
async function fetchChecked(store: Store, key: string, dest: string, sha256: string): Promise<boolean> {
  try {
    await writeAtomically(dest, async (tmp) => {
      const got = await store.get(key, tmp);
      if (got.sha256 !== sha256) throw new Differs();
      return got;
    });
    return true;
  } catch (err) {
    if (err instanceof Differs) return false;
    throw err;
  }
}

/** Brings every unit's last attempt home to the store from where it ran (nothing when its worker wrote there). */
export async function bringHome(project: Project, run: RunRecord): Promise<{ unit: number; host: string | null; attempt: number; state: string; error: string | null }[]> {
  const out = [];
  for (const u of run.units) {
    const last = u.attempts.at(-1);
    if (!last?.handle || last.backend === 'local') continue;
    const host = typeof last.handle.host === 'string' ? last.handle.host : null;
    const error = await (await backendForHandle(project, last.handle)).pull(last.handle).then(
      () => null,
      (err: Error) => err.message.split('\n')[0]!,
    );
    out.push({ unit: u.index, host, attempt: last.n, state: last.state, error });
  }
  return out;
}

/** One run's outputs, logs, metrics and record into `dest`; refuses, naming it, a file that differs from its recorded hash. */
export async function pullRun(project: Project, run: RunRecord, dest: string): Promise<Pulled> {
  await bringHome(project, run);
  const { store } = project;
  const differ: string[] = [];
  const unchecked: string[] = [];
  let files = 0;
  /** False when the stored bytes differ from `sha256` (nothing written); no hash: copied unchecked. */
  const copy = async (key: string, to: string, sha256: string | undefined): Promise<boolean> => {
    if (sha256 === undefined) {
      await store.get(key, to);
      unchecked.push(path.relative(dest, to));
    } else if (!(await fetchChecked(store, key, to, sha256))) return false;
    files++;
    return true;
  };
  const manifest = await store.getBytes(runKeys.outputsManifest(run.run_id));
  const outputs = manifest ? (JSON.parse(manifest.toString('utf8')) as { files: { path: string; sha256: string }[] }).files : [];
  for (const f of outputs) {
    const key = runKeys.output(run.run_id, f.path);
    if (!(await copy(key, path.join(dest, 'outputs', f.path), f.sha256))) differ.push(store.locate(key));
  }
  // Each unit's attempts (and a run of one unit's predict): logs, metrics, events and status.
  for (const u of run.units.length ? run.units : [{ index: 0, attempts: [] }]) {
    const unit = unitKey(run, u.index);
    const dir = run.sharded ? path.join(dest, 'shards', String(u.index)) : dest;
    const stored = new Set(await store.list(`${runKeys.dir(unit)}attempts/`));
    for (const a of run.sharded ? u.attempts : [...u.attempts, null]) {
      const n = a?.n ?? 'predict';
      const recorded = parseAttemptManifest(await store.getBytes(runKeys.attemptManifest(unit, n)));
      for (const name of ATTEMPT_FILES) {
        const key = runKeys.attemptFile(unit, n, name);
        if (!stored.has(key)) continue;
        // A running attempt's files grow between its runner's copies: not an error, just not yet.
        if (!(await copy(key, path.join(dir, 'attempts', String(n), name), recorded?.get(name)?.sha256)) && a?.state !== 'running') differ.push(store.locate(key));
      }
    }
  }
  await store.get(runKeys.record(run.run_id), path.join(dest, 'run.json'));
  if (differ.length) {
    const more = differ.length > 1 ? ` (and ${differ.length - 1} more)` : '';
    throw new UserError(`pull: ${differ[0]} does not match the SHA-256 its runner recorded${more}: corrupt in the store, not copied; the other files were pulled`);
  }
  return { files: files + 1, noOutputs: !manifest, unchecked };
}
