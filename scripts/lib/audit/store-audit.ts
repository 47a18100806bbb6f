// The store checked against what the ledger says it holds: every live checkpoint against its
// manifest, every saved output and merged file against its recorded SHA-256, every run.json
// against its recorded pins (and its source.diff and replicate.sh), every data manifest. One
// listing of `runs/` answers "is it there" for everything at once; only objects that exist are
// read, a few at a time.
//
// A live step whose manifest is gone is *abandoned*, not corrupt: by the checkpoint protocol a
// step without a manifest does not exist (an upload or a deletion cut short, or a manifest
// removed by hand); `make verify repair=1` records it and removes what is left. Files of steps
// the ledger has retired, and blobs without a manifest, are leftovers: a note, and repair=1
// removes them. A run still running is left alone (its steps may be on their way home).
import { parseManifest } from '../ckpt/checkpoint.js';
import { sha256Hex } from '../hash.js';
import { mapLimit } from '../map-limit.js';
import { replicateScript } from '../runs/open-run.js';
import { parseRunJson, runState, shardUnit, type RunRecord } from '../runs/run-record.js';
import { runKeys } from '../store/run-keys.js';
import type { Store } from '../store/store.js';
import type { LedgerState, LiveStep } from './ledger-state.js';
import { recordProblems } from './record-check.js';

const PARALLEL = 8;

export interface Finding {
  line: number;
  reason: string;
}

/** What is left in the store of a step: an abandoned live one, or one the ledger has retired. */
export interface StepRemains {
  run_id: string;
  shard?: number;
  step: number;
  keys: string[];
  why: string;
}

export interface AuditResult {
  problems: Finding[];
  /** abandoned live steps: problems too, but repair=1 settles them */
  abandoned: StepRemains[];
  leftovers: StepRemains[];
  notes: string[];
}

const STEP_FILE = /^runs\/(.+?)\/ckpt\/(\d+)\/(.+)$/;

/** The store's keys below `runs/`, listed once, and its step folders (for LedgerState: which steps are stored). */
export async function listRuns(store: Store): Promise<{ keys: string[]; steps: Map<string, Set<number>> }> {
  const keys = await store.list('runs/');
  const steps = new Map<string, Set<number>>();
  for (const f of stepFolders(keys).values()) {
    if (!steps.has(f.unit)) steps.set(f.unit, new Set());
    steps.get(f.unit)!.add(f.step);
  }
  return { keys, steps };
}

/** Each stored step folder's files: `runs/<unit>/ckpt/<step>/` → its keys. */
function stepFolders(keys: string[]): Map<string, { unit: string; step: number; keys: string[] }> {
  const out = new Map<string, { unit: string; step: number; keys: string[] }>();
  for (const key of keys) {
    const m = STEP_FILE.exec(key);
    if (!m) continue;
    const prefix = `runs/${m[1]}/ckpt/${m[2]}/`;
    let folder = out.get(prefix);
    if (!folder) out.set(prefix, (folder = { unit: m[1]!, step: Number(m[2]), keys: [] }));
    folder.keys.push(key);
  }
  return out;
}

const shardText = (shard?: number) => (shard === undefined ? '' : ` shard ${shard}`);
const unitParts = (unit: string) => {
  const [runId, , shard] = unit.split('/');
  return { run_id: runId!, ...(shard === undefined ? {} : { shard: Number(shard) }) };
};

/**
 * `keys`: the store's keys below `runs/` (listRuns); `ledger`: the id of the ledger `state` was
 * read from (a run another machine's ledger also recorded has the rest of its story there).
 */
export async function auditStore(store: Store, state: LedgerState, keys: string[], ledger: string | null): Promise<AuditResult> {
  const present = new Set(keys);
  const folders = stepFolders(keys);
  const problems: Finding[] = [];
  const abandoned: StepRemains[] = [];
  const notes: string[] = [];
  const records = new Map<string, Promise<RunRecord | null>>();
  const record = (runId: string) => {
    let r = records.get(runId);
    if (!r) records.set(runId, (r = readRecord(store, runId, present)));
    return r;
  };
  const running = async (runId: string) => {
    const run = await record(runId).catch(() => null);
    return !!run && runState(run) === 'running';
  };

  await mapLimit(state.liveSteps(), PARALLEL, async (s) => {
    const where = `line ${s.line}: checkpoint step ${s.step} of run ${s.run_id}${shardText(s.shard)}`;
    const problem = await checkStep(store, s, present).catch((err: Error) => err.message);
    if (problem === null) return;
    if (problem !== ABANDONED) return void problems.push({ line: s.line, reason: `${where}: ${problem}` });
    const remains = folders.get(stepPrefix(s))?.keys ?? [];
    if (await running(s.run_id)) return void notes.push(`${where}: not in this store yet (the run is still running)`);
    const others = (await record(s.run_id).catch(() => null))?.ledgers?.filter((id) => id !== ledger) ?? [];
    if (others.length) {
      return void notes.push(`${where}: not in the store; the run was also driven from another machine (ledger ${others.join(', ')}), whose ledger records what became of it (make verify there)`);
    }
    const left = remains.length ? `${remains.length} file${remains.length === 1 ? '' : 's'} left` : 'nothing left';
    problems.push({ line: s.line, reason: `${where}: abandoned, not corrupt: ${store.locate(s.manifest)} is gone (${left}); make verify repair=1 records it and removes what is left` });
    abandoned.push({ run_id: s.run_id, ...(s.shard === undefined ? {} : { shard: s.shard }), step: s.step, keys: remains, why: 'its manifest is gone from the store' });
  });

  await mapLimit([...state.outputs.values()], PARALLEL, async (o) => {
    const got = present.has(o.key) ? await store.stat(o.key) : null;
    if (got?.sha256 === o.sha256) return;
    const what = got ? `changed since line ${o.line} recorded its SHA-256` : 'is missing';
    problems.push({ line: o.line, reason: `line ${o.line}: run ${o.run_id}: ${o.name} (${store.locate(o.key)}) ${what}` });
  });

  await mapLimit([...state.runs.values()], PARALLEL, async (c) => {
    const run = await record(c.run_id).catch(() => undefined);
    const where = `line ${c.line}: run ${c.run_id}`;
    if (run === null) problems.push({ line: c.line, reason: `${where}: ${store.locate(runKeys.record(c.run_id))} is missing` });
    else if (run === undefined) problems.push({ line: c.line, reason: `${where}: ${store.locate(runKeys.record(c.run_id))} is not valid JSON` });
    else {
      const diffs = recordProblems(run, c);
      if (diffs.length) problems.push({ line: c.line, reason: `${where}: run.json does not match its pins: ${diffs.join('; ')}` });
      for (const problem of await runFileProblems(store, run, present)) problems.push({ line: c.line, reason: `${where}: ${problem}` });
    }
    if (c.data_manifest) {
      const got = present.has(c.data_manifest) ? await store.stat(c.data_manifest) : null;
      if (got?.sha256 !== c.data_manifest_sha256) problems.push({ line: c.line, reason: `${where}: data manifest ${store.locate(c.data_manifest)} is ${got ? 'changed' : 'missing'}` });
    }
  });

  const leftovers = await findLeftovers(folders, state, present, running);
  problems.sort((a, b) => a.line - b.line);
  return { problems, abandoned, leftovers, notes };
}

const ABANDONED = 'abandoned';
const stepPrefix = (s: LiveStep) => s.manifest.slice(0, s.manifest.lastIndexOf('/') + 1);

/** Null when the step is intact, ABANDONED when its manifest is gone, else what is wrong. */
async function checkStep(store: Store, s: LiveStep, present: Set<string>): Promise<string | null> {
  if (!present.has(s.manifest)) return ABANDONED;
  const bytes = await store.getBytes(s.manifest);
  if (!bytes) return ABANDONED;
  if (sha256Hex(bytes) !== s.manifest_sha256) return `${store.locate(s.manifest)} changed since it was committed`;
  const manifest = parseManifest(bytes.toString('utf8'), store.locate(s.manifest));
  const dir = stepPrefix(s);
  for (const f of manifest.files) {
    const got = present.has(dir + f.path) ? await store.stat(dir + f.path) : null;
    if (!got) return `${store.locate(dir + f.path)} is missing`;
    if (got.sha256 !== f.sha256 || got.size !== f.size) return `${store.locate(dir + f.path)} does not match its manifest`;
  }
  return null;
}

/**
 * The run's files beside its record: `source.diff` must hash to the code pin's dirty_sha256 (and
 * be absent for a clean tree), `replicate.sh` must be the one-line replay script.
 */
async function runFileProblems(store: Store, run: RunRecord, present: Set<string>): Promise<string[]> {
  const out: string[] = [];
  const diffKey = runKeys.sourceDiff(run.run_id);
  const dirty = run.pins.code.dirty_sha256;
  const diff = present.has(diffKey) ? await store.stat(diffKey) : null;
  if (dirty && !diff) out.push(`${store.locate(diffKey)} is missing (the code pin has uncommitted changes ${dirty.slice(0, 8)})`);
  else if (dirty && diff!.sha256 !== dirty) out.push(`${store.locate(diffKey)} hashes to ${diff!.sha256.slice(0, 8)}, not to the code pin's uncommitted changes ${dirty.slice(0, 8)}`);
  else if (!dirty && diff) out.push(`${store.locate(diffKey)} is there, but the code pin says the tree was clean`);
  const scriptKey = runKeys.replicate(run.run_id);
  const script = present.has(scriptKey) ? await store.getBytes(scriptKey) : null;
  if (!script) out.push(`${store.locate(scriptKey)} is missing`);
  else if (script.toString('utf8') !== replicateScript(run.run_id)) out.push(`${store.locate(scriptKey)} is not the run's one-line replay script (make replay run=${run.run_id})`);
  return out;
}

/** The run's record, null when it has none; throws on one that does not parse. */
async function readRecord(store: Store, runId: string, present: Set<string>): Promise<RunRecord | null> {
  if (!present.has(runKeys.record(runId))) return null;
  const bytes = await store.getBytes(runKeys.record(runId));
  return bytes ? parseRunJson(bytes.toString('utf8')) : null;
}

/**
 * Step folders of runs this ledger knows that hold files but no live step: retired steps
 * (pruned, lost, abandoned) still stored, and blobs without a manifest. Runs still running are
 * skipped: their uploads are in flight.
 */
async function findLeftovers(
  folders: ReturnType<typeof stepFolders>,
  state: LedgerState,
  present: Set<string>,
  running: (runId: string) => Promise<boolean>,
): Promise<StepRemains[]> {
  const out: StepRemains[] = [];
  for (const [prefix, f] of folders) {
    if (state.isLive(f.unit, f.step)) continue;
    const parts = unitParts(f.unit);
    if (!state.runIds.has(parts.run_id) || f.unit !== (parts.shard === undefined ? parts.run_id : shardUnit(parts.run_id, parts.shard))) continue;
    const retired = state.retiredAs(f.unit, f.step);
    const partial = !present.has(`${prefix}manifest.json`);
    if (!retired && !partial) continue; // a committed step this ledger never recorded: another machine's
    if (await running(parts.run_id)) continue;
    out.push({ ...parts, step: f.step, keys: f.keys, why: retired ? `${retired} in the ledger, still in the store` : 'blobs without a manifest (an upload or a prune cut short)' });
  }
  return out.sort((a, b) => a.run_id.localeCompare(b.run_id) || (a.shard ?? -1) - (b.shard ?? -1) || a.step - b.step);
}
