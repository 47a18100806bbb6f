// Where a run's parts live in a store. A unit's parts (attempts, checkpoints, outputs) live
// under runs/<unit>/, where <unit> is the run id or `<run_id>/shards/<i>`.
export const runKeys = {
  dir: (id: string) => `runs/${id}/`,
  record: (id: string) => `runs/${id}/run.json`,
  sourceDiff: (id: string) => `runs/${id}/source.diff`,
  dataManifest: (id: string) => `runs/${id}/data-manifest.json`,
  replicate: (id: string) => `runs/${id}/replicate.sh`,
  ckptDir: (id: string) => `runs/${id}/ckpt/`,
  ckptFile: (id: string, step: number, file: string) => `runs/${id}/ckpt/${step}/${file}`,
  attemptFile: (id: string, attempt: number | 'predict', file: string) => `runs/${id}/attempts/${attempt}/${file}`,
  /** the attempt whose runner last started on the unit: an older runner still alive stops writing */
  currentAttempt: (id: string) => `runs/${id}/attempts/current.json`,
  /** each mirrored attempt file's size and SHA-256, rewritten by the runner after every mirror */
  attemptManifest: (id: string, attempt: number | 'predict') => `runs/${id}/attempts/${attempt}/manifest.json`,
  output: (id: string, file: string) => `runs/${id}/outputs/${file}`,
  outputsDir: (id: string) => `runs/${id}/outputs/`,
  /** written after every output: its presence means the outputs are complete */
  outputsManifest: (id: string) => `runs/${id}/outputs.manifest.json`,
  /** an empty marker per run under its digest, so another machine finds runs by pins */
  digestIndex: (digest: string, id?: string) => `index/digests/${digest}/${id ?? ''}`,
  submission: (id: string, stamp: string, file: string) => `runs/${id}/submissions/${stamp}/${file}`,
};
