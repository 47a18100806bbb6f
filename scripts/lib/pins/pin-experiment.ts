// Computes the five pins of an experiment as it stands in the work tree, all concurrently.
import path from 'node:path';
import picomatch from 'picomatch';
import { CONFIG_FILE } from '../config/load-config.js';
import { PROJECT_CODE, pinCode, type CodeScope } from './code-pin.js';
import { pinData, type DataManifest } from './data-manifest.js';
import { pinDigest, specConfigPin, type Pins } from './digest.js';
import { pinEnv } from './env-pin.js';
import { merkleRoot } from './merkle.js';
import type { Experiment } from '../spec/experiment.js';
import { UserError } from '../ui/errors.js';
import { byteProgress } from '../ui/progress.js';

export interface PinnedExperiment {
  pins: Pins;
  diff: Buffer;
  dataManifest: DataManifest;
}

const EMPTY_DATA: DataManifest = { format: 'switchyard-data/1', root: merkleRoot([]), files: [] };

/** The stat cache of an experiment's data pin, relative to the project root (the runner re-pins with it when it stages the data). */
export function dataCacheFile(exp: Pick<Experiment, 'slug' | 'name'>): string {
  return path.join('.switchyard', 'cache', `data-${exp.slug}-${exp.name}.statcache`);
}

/**
 * What the code pin covers: the competition folder, the paths the spec declares under `code`,
 * and the project's own code; not the data folder inside them, which the data pin covers, and
 * never the inventory: where a run executes is not what it computes.
 */
export function codeScope(root: string, exp: Experiment): CodeScope {
  const rel = (abs: string) => path.relative(root, abs).split(path.sep).join('/');
  const paths = [rel(exp.competitionDir), ...(exp.spec.code ?? []), ...PROJECT_CODE];
  const data = exp.dataDir ? rel(exp.dataDir) : null;
  const inside = data !== null && paths.some((p) => data.startsWith(`${p.replace(/\/+$/, '')}/`));
  return { paths, exclude: [...(inside ? [data] : []), CONFIG_FILE] };
}

/** Every user-written include glob must match a pinned file: one that matches nothing is a typo or missing data. */
function checkIncludes(exp: Experiment, manifest: DataManifest, root: string): void {
  const include = exp.spec.data?.include ?? [];
  if (include.length === 1 && include[0] === '**') return; // the default: an empty folder is allowed
  for (const glob of include) {
    const matches = picomatch(glob, { dot: true });
    if (!manifest.files.some((f) => matches(f.path))) {
      const dir = path.relative(root, exp.dataDir!) || '.';
      const after = exp.spec.data!.exclude.length ? ' (after exclude)' : '';
      throw new UserError(`${exp.file}: data.include: ${JSON.stringify(glob)} matches no file in ${dir}${after}; fix the pattern or add the files`);
    }
  }
}

export async function pinExperiment(root: string, stateDir: string, exp: Experiment, seed = exp.spec.seed): Promise<PinnedExperiment> {
  const data = exp.spec.data;
  const progress = byteProgress('hashing data');
  const [code, dataPin, env] = await Promise.all([
    pinCode(root, codeScope(root, exp), { markCache: path.join(stateDir, 'cache', 'index-unmarked') }),
    exp.dataDir && data
      ? pinData({
          dir: exp.dataDir,
          include: data.include,
          exclude: data.exclude,
          cacheFile: path.resolve(root, dataCacheFile(exp)),
          onProgress: (done, total) => progress.update(done, total),
        })
      : Promise.resolve({ root: EMPTY_DATA.root, files: 0, bytes: 0, manifest: EMPTY_DATA }),
    pinEnv({ repoRoot: root, experimentDir: exp.competitionDir, cacheFile: path.join(stateDir, 'cache', 'interpreters.json') }),
  ]);
  progress.stop();
  if (data) checkIncludes(exp, dataPin.manifest, root);
  const withoutDigest = {
    code: { commit: code.commit, dirty_sha256: code.dirty_sha256 },
    data: { root: dataPin.root, files: dataPin.files, bytes: dataPin.bytes },
    env: { lock_sha256: env.lock_sha256, python: env.python, node: env.node },
    config: specConfigPin(exp.spec, exp.smoke),
    seed,
  };
  return { pins: { ...withoutDigest, digest: pinDigest(withoutDigest) }, diff: code.diff, dataManifest: dataPin.manifest };
}
