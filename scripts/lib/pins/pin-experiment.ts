// Computes the five pins of an experiment as it stands in the work tree, all concurrently.
import path from 'node:path';
import { pinCode } from './code-pin.js';
import { pinData, type DataManifest } from './data-manifest.js';
import { configPin, pinDigest, type Pins } from './digest.js';
import { pinEnv } from './env-pin.js';
import { merkleRoot } from './merkle.js';
import type { Experiment } from '../spec/experiment.js';
import { byteProgress } from '../ui/progress.js';

export interface PinnedExperiment {
  pins: Pins;
  diff: Buffer;
  dataManifest: DataManifest;
}

const EMPTY_DATA: DataManifest = { format: 'switchyard-data/1', root: merkleRoot([]), files: [] };

export async function pinExperiment(root: string, stateDir: string, exp: Experiment, seed = exp.spec.seed): Promise<PinnedExperiment> {
  const { seed: _seed, ...specWithoutSeed } = exp.spec;
  const data = exp.spec.data;
  const progress = byteProgress('hashing data');
  const [code, dataPin, env] = await Promise.all([
    pinCode(root),
    exp.dataDir && data
      ? pinData({
          dir: exp.dataDir,
          include: data.include,
          exclude: data.exclude,
          cacheFile: path.join(stateDir, 'cache', `data-${exp.slug}-${exp.name}.json`),
          onProgress: (done, total) => progress.update(done, total),
        })
      : Promise.resolve({ root: EMPTY_DATA.root, files: 0, bytes: 0, manifest: EMPTY_DATA }),
    pinEnv({ repoRoot: root, experimentDir: exp.competitionDir, cacheFile: path.join(stateDir, 'cache', 'interpreters.json') }),
  ]);
  progress.stop();
  const withoutDigest = {
    code: { commit: code.commit, dirty_sha256: code.dirty_sha256 },
    data: { root: dataPin.root, files: dataPin.files, bytes: dataPin.bytes },
    env: { lock_sha256: env.lock_sha256, python: env.python, node: env.node },
    config: configPin(specWithoutSeed),
    seed,
  };
  return { pins: { ...withoutDigest, digest: pinDigest(withoutDigest) }, diff: code.diff, dataManifest: dataPin.manifest };
}
