// make merge for a sharded run: fetch every shard file from the store, prove the set is one
// complete, consistent search (verifyCoverage), check each file against the hash its runner
// recorded, merge by the spec's strategy, and store the merged file, a merge report and a
// ledger entry. Any problem is one line naming the shard and `make retry` for it.
import { mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { hashFile } from '../hash.js';
import { mergeShards, parseShardFileName, verifyCoverage, type MergeStrategy } from '../merge/index.js';
import { run as runArgv } from '../proc.js';
import type { Project } from '../project.js';
import { commandArgv } from '../runner/experiment-process.js';
import { UserError } from '../ui/errors.js';
import { mergeKeys, runKeys, unitKey, type RunRecord } from '../runs/run-record.js';
import { recordInLedger } from '../runs/run-store.js';

export interface MergeSummary {
  run_id: string;
  strategy: string;
  /** records: null for a merge command (its output is its own format) */
  merged: { key: string; records: number | null; sha256: string; bytes: number };
  shards: {
    index: number;
    host: string | null;
    attempts: number;
    moved_from: string[];
    records: number;
    sha256: string;
    bytes: number;
    elapsed_sec: number | null;
  }[];
  took_sec: number;
  merged_at: string;
}

interface ShardFile {
  /** the local copy */
  file: string;
  /** the SHA-256 its runner recorded; null when the shard's outputs manifest does not list it */
  recorded: string | null;
  /** where it is in the store, for messages */
  where: string;
}

const fix = (run: RunRecord, index: number | string) => `make retry run=${run.run_id} shard=${index}`;

/** Every shard file in the store under the run's shards, with the hash its runner recorded. */
async function fetchShardFiles(project: Project, run: RunRecord, dir: string): Promise<ShardFile[]> {
  const { store } = project;
  const found: ShardFile[] = [];
  for (const shard of run.units) {
    const unit = unitKey(run, shard.index);
    const manifest = await store.getBytes(runKeys.outputsManifest(unit));
    const recorded = new Map(
      manifest ? (JSON.parse(manifest.toString('utf8')) as { files: { path: string; sha256: string }[] }).files.map((f) => [f.path, f.sha256]) : [],
    );
    for (const key of await store.list(runKeys.outputsDir(unit))) {
      const name = key.slice(runKeys.outputsDir(unit).length);
      if (!parseShardFileName(name) || name.includes('/')) continue;
      const file = path.join(dir, String(shard.index), name);
      mkdirSync(path.dirname(file), { recursive: true });
      await store.get(key, file);
      found.push({ file, recorded: recorded.get(name) ?? null, where: store.locate(key) });
    }
  }
  return found;
}

function strategyOf(run: RunRecord): MergeStrategy | 'command' {
  const s = run.spec.shards;
  if (s.merge === 'best-by-score') return { bestByScore: { scoreField: s.score_field!, higherIsBetter: s.higher_is_better ?? true } };
  return s.merge;
}

/** The user's merge command: the verified shard files as arguments, the output path in the environment. */
async function mergeByCommand(project: Project, run: RunRecord, files: string[], out: string): Promise<void> {
  const [slug] = run.experiment.split('/');
  const argv = [...commandArgv(run.spec.shards.merge_command!), ...(typeof run.spec.shards.merge_command === 'string' ? ['merge', ...files] : files)];
  const r = await runArgv(argv, {
    cwd: path.join(project.root, 'competitions', slug!),
    env: { ...process.env, SWITCHYARD_MERGED_FILE: out, SWITCHYARD_RUN_ID: run.run_id, SWITCHYARD_PINS_DIGEST: run.pins.digest },
    allowFail: true,
  });
  if (r.code !== 0) throw new UserError(`merge: ${String(run.spec.shards.merge_command)} exited ${r.code}: ${r.stderr.trim().split('\n').at(-1) ?? ''}`);
  try {
    statSync(out);
  } catch {
    throw new UserError(`merge: ${String(run.spec.shards.merge_command)} succeeded but wrote nothing to $SWITCHYARD_MERGED_FILE`);
  }
}

export async function mergeRun(project: Project, run: RunRecord): Promise<MergeSummary> {
  if (!run.sharded) throw new UserError(`merge: run ${run.run_id} is not a sharded search (its spec had no \`shards:\`); make merge joins the shard files of a search over shards`);
  const started = Date.now();
  const dir = path.join(project.workDir(run.run_id), 'merge');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    const found = await fetchShardFiles(project, run, path.join(dir, 'shards'));
    const count = run.spec.shards.count;
    const strategy = strategyOf(run);
    const reports = await verifyCoverage(
      found.map((f) => f.file),
      { count, pinsDigest: run.pins.digest, runId: run.run_id, allowDuplicateKeys: strategy !== 'concat' && strategy !== 'command' },
    ).catch((err: unknown) => {
      // Name files where the user can find them: in the store, not in our scratch copy.
      if (err instanceof UserError) throw new UserError(found.reduce((m, f) => m.replaceAll(f.file, f.where), err.message));
      throw err;
    });
    // Coverage passed; a file its runner did not record was never completely stored, and one
    // that differs from what its runner recorded was changed since.
    for (const f of found) {
      const index = parseShardFileName(f.file)!.index;
      if (!f.recorded) {
        throw new UserError(`merge: shard ${index} of ${count} (${f.where}) is not in its runner's outputs manifest: its outputs were never completely stored; re-run it with ${fix(run, index)}`);
      }
      if ((await hashFile(f.file)).sha256 !== f.recorded) {
        throw new UserError(`merge: shard ${index} of ${count} (${path.basename(f.file)}) is corrupt: it differs from the SHA-256 its runner recorded; re-run it with ${fix(run, index)}`);
      }
    }
    const out = path.join(dir, 'merged.jsonl');
    const files = reports.map((r) => r.file);
    let records: number | null = null;
    if (strategy === 'command') await mergeByCommand(project, run, files, out);
    else records = (await mergeShards(files, strategy, out)).merged.records;
    const stored = await project.store.put(mergeKeys.merged(run.run_id), out);
    const summary: MergeSummary = {
      run_id: run.run_id,
      strategy: run.spec.shards.merge,
      merged: { key: mergeKeys.merged(run.run_id), records, sha256: stored.sha256, bytes: stored.size },
      shards: reports.map((r) => {
        const shard = run.units[r.index]!;
        const last = shard.attempts.at(-1);
        const elapsed = shard.attempts.reduce((s, a) => s + (a.ended_at ? Date.parse(a.ended_at) - Date.parse(a.started_at) : 0), 0);
        return {
          index: r.index,
          host: typeof last?.handle?.host === 'string' ? last.handle.host : null,
          attempts: shard.attempts.length,
          moved_from: shard.moved_from,
          records: r.records,
          sha256: r.sha256,
          bytes: r.bytes,
          elapsed_sec: shard.attempts.length ? Math.round(elapsed / 100) / 10 : null,
        };
      }),
      took_sec: Math.round((Date.now() - started) / 100) / 10,
      merged_at: new Date().toISOString(),
    };
    await project.store.putBytes(mergeKeys.report(run.run_id), JSON.stringify(summary, null, 2) + '\n');
    // The run's outputs are now the merged file: make pull brings it home like any run's outputs.
    const outputs = { files: [{ path: 'merged.jsonl', sha256: stored.sha256 }] };
    await project.store.putBytes(runKeys.outputsManifest(run.run_id), JSON.stringify(outputs, null, 2) + '\n');
    await recordInLedger(project, 'merge.completed', {
      run_id: run.run_id,
      output: summary.merged.key,
      sha256: stored.sha256,
      records: summary.merged.records,
      shards: count,
      moved: summary.shards.filter((s) => s.moved_from.length).map((s) => ({ shard: s.index, from: s.moved_from, to: s.host })),
    });
    return summary;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
