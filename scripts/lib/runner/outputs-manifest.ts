// A unit's outputs manifest (runs/<unit>/outputs.manifest.json): every output file with its
// SHA-256, written after the files. Attempts add to it: a predict's submission joins the
// model its training saved, instead of a manifest that names only the newest attempt's files.
import { runKeys } from '../store/run-keys.js';
import type { Store } from '../store/store.js';

export interface OutputFile {
  path: string;
  sha256: string;
}

/** The stored manifest's files with `added` merged in (a file of the same path is replaced), sorted by path. */
export async function mergedOutputs(store: Store, unitId: string, added: OutputFile[]): Promise<OutputFile[]> {
  const stored = await store.getBytes(runKeys.outputsManifest(unitId));
  const previous = stored ? (JSON.parse(stored.toString('utf8')) as { files: OutputFile[] }).files : [];
  const byPath = new Map([...previous, ...added].map((f) => [f.path, f]));
  return [...byPath.values()].sort((a, b) => a.path.localeCompare(b.path));
}
