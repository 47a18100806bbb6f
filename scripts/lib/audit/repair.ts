// make verify repair=1 on the store: each abandoned step is recorded (`ckpt.abandoned`) and what
// is left of it removed; each leftover step's files are removed and recorded (`ckpt.removed`).
// The entry goes first, so a repair cut short leaves a recorded intent, never a silent deletion.
import type { Project } from '../project.js';
import { deleteStoredStep } from '../runner/store-checkpoints.js';
import { shardUnit } from '../runs/run-record.js';
import { recordInLedger } from '../runs/run-store.js';
import type { AuditResult, StepRemains } from './store-audit.js';

const unitOf = (s: StepRemains) => (s.shard === undefined ? s.run_id : shardUnit(s.run_id, s.shard));
const what = (s: StepRemains) => `step ${s.step} of run ${s.run_id}${s.shard === undefined ? '' : ` shard ${s.shard}`}`;

/** Settles the audit's abandoned and leftover steps; one line per thing done. */
export async function repairStore(project: Project, audit: AuditResult): Promise<string[]> {
  const done: string[] = [];
  for (const s of audit.abandoned) {
    const tag = s.shard === undefined ? {} : { shard: s.shard };
    await recordInLedger(project, 'ckpt.abandoned', { run_id: s.run_id, ...tag, step: s.step, reason: s.why, removed: s.keys.length });
    await deleteStoredStep(project.store, unitOf(s), s.step);
    done.push(`recorded abandoned ${what(s)} (${s.why}); removed ${s.keys.length} file${s.keys.length === 1 ? '' : 's'}`);
  }
  for (const s of audit.leftovers) {
    const tag = s.shard === undefined ? {} : { shard: s.shard };
    await recordInLedger(project, 'ckpt.removed', { run_id: s.run_id, ...tag, step: s.step, reason: s.why, removed: s.keys.length });
    await deleteStoredStep(project.store, unitOf(s), s.step);
    done.push(`removed ${s.keys.length} file${s.keys.length === 1 ? '' : 's'} of ${what(s)} (${s.why})`);
  }
  return done;
}
