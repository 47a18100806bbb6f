// A run record checked against what vouches for it: its pins must hash to its digest, the digest
// must end its run id, and the pins must be the ones the ledger recorded when the run was created.
// Its spec must be the one its config pin hashes, and its commands the spec's: what make train
// runs for a resumed run is run.json's command, so a command edited there would run under the
// old pins. A run.json edited in the store (a seed changed from 42 to 43) then fails, naming the
// pin.
import { canonicalJson } from '../pins/canonical-json.js';
import { comparePins, pinDigest, specConfigPin } from '../pins/digest.js';
import type { RunRecord } from '../runs/run-record.js';
import type { CreatedRun } from './ledger-state.js';

/** What is wrong with the record's pins, spec and commands, one phrase each; empty when nothing is. */
export function recordProblems(run: RunRecord, created?: CreatedRun): string[] {
  try {
    const out: string[] = [];
    if (created) {
      out.push(...comparePins(created.pins, run.pins, { recorded: `in the ledger (line ${created.line})`, current: 'in run.json' }));
      if (created.digest !== run.pins.digest) out.push(`digest: ${created.digest.slice(0, 8)} in the ledger (line ${created.line}), ${String(run.pins.digest).slice(0, 8)} in run.json`);
    }
    const hashed = pinDigest(run.pins);
    if (hashed !== run.pins.digest) out.push(`run.json's pins hash to ${hashed.slice(0, 8)}, not to its digest ${String(run.pins.digest).slice(0, 8)}`);
    if (!run.run_id.includes(`-${String(run.pins.digest).slice(-8)}`)) out.push(`the run id does not end with its digest's last 8 hex (${String(run.pins.digest).slice(-8)})`);
    out.push(...specProblems(run));
    return [...new Set(out)];
  } catch {
    return ['run.json has no readable pins'];
  }
}

/** The spec against the config pin, and the commands against the spec. */
function specProblems(run: RunRecord): string[] {
  try {
    const out: string[] = [];
    const config = specConfigPin(run.spec, run.smoke === true);
    if (config !== run.pins.config) out.push(`spec: hashes to config ${config.slice(0, 8)}, not to the config pin ${String(run.pins.config).slice(0, 8)}`);
    const want = { train: run.spec.train.command, predict: run.spec.predict?.command ?? null };
    for (const verb of ['train', 'predict'] as const) {
      const got = run.command?.[verb] ?? null;
      if (canonicalJson(got) !== canonicalJson(want[verb])) out.push(`command.${verb}: ${JSON.stringify(got)}, not the spec's ${verb}.command ${JSON.stringify(want[verb])}`);
    }
    return out;
  } catch {
    return ['run.json has no readable spec and commands'];
  }
}
