// make verify: checks the ledger's hash chain and every manifest it references (live
// checkpoints and data manifests) against the store, and names the first bad entry.
import { parseManifest } from './lib/ckpt/checkpoint.js';
import { readLedger, verifyLedger, type LedgerEntry } from './lib/ledger/ledger.js';
import { sha256Hex } from './lib/hash.js';
import { openProject } from './lib/project.js';
import type { Store } from './lib/store/store.js';
import { runMain, UserError } from './lib/ui/errors.js';

/** Null when the checkpoint the entry commits is intact in the store, else what is wrong. */
async function checkCheckpoint(store: Store, e: LedgerEntry): Promise<string | null> {
  const key = String(e.manifest);
  const bytes = await store.getBytes(key);
  if (!bytes) return `${store.locate(key)} is missing`;
  if (sha256Hex(bytes) !== e.manifest_sha256) return `${store.locate(key)} changed since it was committed`;
  const manifest = parseManifest(bytes.toString('utf8'), store.locate(key));
  const dir = key.slice(0, key.lastIndexOf('/') + 1);
  for (const f of manifest.files) {
    const got = await store.stat(dir + f.path);
    if (!got) return `${store.locate(dir + f.path)} is missing`;
    if (got.sha256 !== f.sha256 || got.size !== f.size) return `${store.locate(dir + f.path)} does not match its manifest`;
  }
  return null;
}

async function checkDataManifests(store: Store, entries: LedgerEntry[]): Promise<{ line: number; reason: string } | null> {
  for (const [i, e] of entries.entries()) {
    if (e.type !== 'run.created' || typeof e.data_manifest !== 'string') continue;
    const got = await store.stat(e.data_manifest);
    if (!got || got.sha256 !== e.data_manifest_sha256) {
      return { line: i + 1, reason: `line ${i + 1}: data manifest ${store.locate(e.data_manifest)} is ${got ? 'changed' : 'missing'}` };
    }
  }
  return null;
}

await runMain(async () => {
  const project = await openProject();
  const { store } = project;
  const result = await verifyLedger(project.ledgerPath, { checkManifest: (e) => checkCheckpoint(store, e) });
  // An unparsable line makes readLedger throw; the chain check above has already named it.
  const dataBad = await checkDataManifests(store, await readLedger(project.ledgerPath).catch(() => []));
  const firstBad = [result.firstBad, dataBad].filter((b) => !!b).sort((a, b) => a!.line - b!.line)[0];
  if (firstBad) throw new UserError(`ledger ${project.ledgerPath}: ${firstBad.reason}`);
  console.log(`ledger ok: ${result.entries} entries, hash chain intact, every referenced manifest verifies`);
  return 0;
});
