// The folders an attempt's programs see: the staged data view ($SWITCHYARD_DATA_DIR), the
// competition folder ($SWITCHYARD_CODE_DIR) and each command's working folder.
import { statSync } from 'node:fs';
import path from 'node:path';
import { stageDataView } from '../pins/data-view.js';
import { plural } from '../ui/plural.js';
import type { AttemptSpec } from './attempt-spec.js';

/** Staged data views, below the project root (ignored by git, never synced to hosts). */
export const DATA_VIEWS = path.join('.switchyard', 'data-views');

/**
 * The read-only view of the run's pinned data, staged from the data folder of this worker's
 * copy of the project (or reused); null when the experiment has no data.
 */
export async function stageAttemptData(root: string, spec: AttemptSpec, note: (line: string) => void): Promise<string | null> {
  if (!spec.data_dir || !spec.data_pin) return null;
  const pin = spec.data_pin;
  const view = await stageDataView({
    source: path.resolve(root, spec.data_dir),
    root: pin.root,
    include: pin.include,
    exclude: pin.exclude,
    views: path.join(root, DATA_VIEWS),
    cacheFile: pin.cache ? path.resolve(root, pin.cache) : undefined,
  });
  if (view.staged) {
    const { linked, copied } = view.staged;
    const how = [linked && `${plural(linked, 'hard link')} (the originals in ${spec.data_dir} lose their write bits too)`, copied && plural(copied, 'copy', 'copies')].filter(Boolean);
    note(`data pin ${pin.root.slice(0, 8)} staged read-only in ${path.relative(root, view.dir)}: ${how.join(', ') || 'no files'}`);
  }
  return view.dir;
}

/**
 * A command's working folder: the competition folder by default, `$data[/<sub>]` inside the
 * staged data, anything else relative to the competition folder.
 */
export function workingFolder(root: string, spec: AttemptSpec, cwd: string | null, dataDir: string | null): string {
  const codeDir = path.resolve(root, spec.cwd);
  if (cwd === null) return codeDir;
  const inData = /^\$data(?:\/(.*))?$/.exec(cwd);
  if (inData && !dataDir) throw new Error(`working folder ${cwd}: the experiment has no data: section`);
  const dir = inData ? path.resolve(dataDir!, inData[1] ?? '.') : path.resolve(codeDir, cwd);
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`working folder ${cwd} is not a folder${inData ? ' of the staged data (it holds only the pinned files and their folders)' : ''}`);
  }
  return dir;
}
