// The oldest Node Switchyard runs on, here and as a host's runner: 20.12, the first Node 20 whose
// directory entries carry `parentPath` (the data view, outputs and the file store walk with it).
export const NODE_MIN = '20.12';

/** Whether `version` (`v20.12.1` or `20.12.1`) is at least NODE_MIN; false for null or garbage. */
export function nodeFits(version: string | null): boolean {
  const m = /^v?(\d+)\.(\d+)/.exec(version ?? '');
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  const [minMajor, minMinor] = NODE_MIN.split('.').map(Number) as [number, number];
  return major > minMajor || (major === minMajor && minor >= minMinor);
}
