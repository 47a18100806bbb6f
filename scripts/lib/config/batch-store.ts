// How Batch tasks reach the project's store: the rules the config's schema checks and the job's
// renderer (scripts/lib/batch/render-job.ts) follows, kept apart from the schema, which the
// renderer does not need.

/** The keys tasks reach an s3:// store with (the store's credentials in .env on this machine). */
export const STORE_CREDENTIALS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] as const;

/** The issue of a Batch entry whose tasks could not reach the project's store. */
export function batchStoreProblem(entry: { store?: string | undefined }, defaultStore: string): string | null {
  if (entry.store || defaultStore.startsWith('s3://')) return null;
  return `tasks on Batch cannot reach ${defaultStore} (defaults.store); set store: "s3://bucket/prefix", any S3-compatible store`;
}
