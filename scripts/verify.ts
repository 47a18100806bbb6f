// make verify [repair=1]: checks the ledger (hash chain, local head, store anchor and its HMAC),
// then the store against it (live checkpoints, outputs, run records, data manifests), and names
// the first bad line. repair=1 anchors a trusted ledger that has no anchor, records abandoned
// steps and removes what is left of retired ones; it never touches a broken chain or a corrupt file.
import { LedgerState } from './lib/audit/ledger-state.js';
import { repairStore } from './lib/audit/repair.js';
import { auditStore, listRuns, type AuditResult } from './lib/audit/store-audit.js';
import { makeAnchor, writeAnchor } from './lib/ledger/anchor.js';
import { verifyLedger, type LedgerVerifyResult } from './lib/ledger/verify.js';
import { openProject, type Project } from './lib/project.js';
import { ledgerKey, recordInLedger } from './lib/runs/run-store.js';
import { Flag, readVars } from './lib/spec/make-vars.js';
import { runMain, UserError } from './lib/ui/errors.js';

async function check(project: Project): Promise<{ ledger: LedgerVerifyResult; audit?: AuditResult }> {
  const listed = await listRuns(project.store);
  const state = new LedgerState(listed.steps);
  const ledger = await verifyLedger(project.ledgerPath, { anchor: { store: project.store, key: ledgerKey(project) }, onEntry: (e) => state.add(e) });
  // What a broken ledger says is not checked: its edited lines cannot be trusted.
  if (!ledger.ok) return { ledger };
  return { ledger, audit: await auditStore(project.store, state, listed.keys, ledger.tip?.id ?? null) };
}

/** Anchors a ledger whose chain verified but whose store anchor is missing (or unsigned under a key). */
async function anchorLedger(project: Project, ledger: LedgerVerifyResult): Promise<string> {
  const tip = ledger.tip!;
  await writeAnchor(project.store, makeAnchor(tip.id, tip.seq, tip.sha256, tip.prev, ledgerKey(project), project.ledgerPath));
  const reason = ledger.firstBad!.reason.replace(/^line \d+: /, '').replace(/; once you trust.*$/, '');
  await recordInLedger(project, 'ledger.anchored', { line: tip.seq, sha256: tip.sha256, reason });
  return `anchored the ledger at line ${tip.seq} (${reason})`;
}

void runMain(async () => {
  const vars = readVars('verify', { repair: Flag.optional() });
  const project = await openProject();
  let { ledger, audit } = await check(project);
  if (vars.repair && (ledger.anchorRepairable || audit?.abandoned.length || audit?.leftovers.length)) {
    const done = ledger.anchorRepairable ? [await anchorLedger(project, ledger)] : [];
    if (done.length) ({ ledger, audit } = await check(project));
    if (audit) done.push(...(await repairStore(project, audit)));
    for (const line of done) console.log(`repair: ${line}`);
    ({ ledger, audit } = await check(project));
  }
  if (!ledger.ok) throw new UserError(`ledger ${project.ledgerPath}: ${ledger.firstBad!.reason}`);
  const { problems, leftovers, notes } = audit!;
  for (const note of notes) console.log(`note: ${note}`);
  for (const s of leftovers) {
    const files = `${s.keys.length} file${s.keys.length === 1 ? '' : 's'}`;
    console.log(`note: step ${s.step} of run ${s.run_id}${s.shard === undefined ? '' : ` shard ${s.shard}`}: ${files} left (${s.why}); make verify repair=1 removes them`);
  }
  if (problems.length) {
    if (problems.length > 1) for (const p of problems) console.log(`✗ ${p.reason}`);
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more, listed above)` : '';
    throw new UserError(`ledger ${project.ledgerPath}: ${problems[0]!.reason}${more}`);
  }
  console.log(`ledger ok: ${ledger.entries} entries, hash chain intact and anchored, every checkpoint, output, run record and data manifest it names verifies`);
  return 0;
});
