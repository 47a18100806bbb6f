// Value formats the experiment spec and cluster_fleet_config.ts share.

/** An environment variable name. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A duration: a whole number of seconds, minutes, hours or days ("90m", "2h", "1d"). */
export const DURATION = /^(\d+)(s|m|h|d)$/;

/** "90m" → 5400. */
export function durationSec(text: string): number {
  const [, n, unit] = DURATION.exec(text)!;
  return Number(n) * { s: 1, m: 60, h: 3600, d: 86400 }[unit as 's' | 'm' | 'h' | 'd'];
}
