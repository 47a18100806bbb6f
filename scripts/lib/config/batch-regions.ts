// The regions a Google Cloud Batch job can be created in (its `region` in cluster_fleet_config.ts),
// as listed on https://cloud.google.com/batch/docs/locations. Checked when the config loads, so
// a typo is one line before any API call; add a region here when Batch opens one.
export const BATCH_REGIONS: readonly string[] = [
  // Americas
  'northamerica-northeast1',
  'northamerica-northeast2',
  'southamerica-east1',
  'southamerica-west1',
  'us-central1',
  'us-east1',
  'us-east4',
  'us-east5',
  'us-south1',
  'us-west1',
  'us-west2',
  'us-west3',
  'us-west4',
  // Europe and the Middle East
  'europe-central2',
  'europe-north1',
  'europe-southwest1',
  'europe-west1',
  'europe-west2',
  'europe-west3',
  'europe-west4',
  'europe-west6',
  'europe-west8',
  'europe-west9',
  'europe-west10',
  'europe-west12',
  'me-central1',
  'me-central2',
  'me-west1',
  // Asia Pacific
  'asia-east1',
  'asia-east2',
  'asia-northeast1',
  'asia-northeast2',
  'asia-northeast3',
  'asia-south1',
  'asia-south2',
  'asia-southeast1',
  'asia-southeast2',
  'australia-southeast1',
  'australia-southeast2',
];

/** What to say of a region Batch does not have: the Batch regions of its area (`us-`, `europe-`), or an example. */
export function regionFix(region: string): string {
  const area = region.split('-')[0] + '-';
  const near = BATCH_REGIONS.filter((r) => r.startsWith(area));
  const where = 'scripts/lib/config/batch-regions.ts lists them all';
  return near.length ? `use one of ${near.join(', ')} (${where})` : `use a Batch region, e.g. us-central1 (${where})`;
}
