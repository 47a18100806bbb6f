// The five pins of a run, their digest, and the run id built from it.
import { plural } from '../ui/plural.js';
import { canonicalJson, sha256Hex } from './canonical-json.js';

export interface Pins {
  code: { commit: string; dirty_sha256: string | null };
  data: { root: string; files: number; bytes: number };
  env: { lock_sha256: string; python: string | null; node: string };
  /** configPin() of the resolved experiment spec. */
  config: string;
  seed: number;
  digest: string;
}

export type PinsWithoutDigest = Omit<Pins, 'digest'>;

/** sha256 of the canonical JSON of the five pins. Fields are picked explicitly: data.files and
 *  data.bytes follow from data.root, and extra fields a caller carries must not leak in. */
export function pinDigest(p: PinsWithoutDigest): string {
  return sha256Hex(
    canonicalJson({
      code: { commit: p.code.commit, dirty_sha256: p.code.dirty_sha256 },
      data: { root: p.data.root },
      env: { lock_sha256: p.env.lock_sha256, python: p.env.python, node: p.env.node },
      config: p.config,
      seed: p.seed,
    }),
  );
}

export function configPin(resolvedSpec: unknown): string {
  return sha256Hex(canonicalJson(resolvedSpec));
}

/**
 * The config pin of an experiment's resolved spec: without its seed (a pin of its own), and a
 * smoke run's marked as one even where its overrides change nothing, so it never caches as the
 * full run. make train pins with it, make verify checks a run's recorded spec against it.
 */
export function specConfigPin(spec: { seed?: unknown }, smoke: boolean): string {
  const { seed: _seed, ...specWithoutSeed } = spec;
  return configPin(smoke ? { ...specWithoutSeed, smoke_run: true } : specWithoutSeed);
}

/** `<slug>-<name>-<UTC yyyymmddThhmm>-<last 8 hex of digest>` */
export function makeRunId(slug: string, name: string, date: Date, digest: string): string {
  if (!/^[0-9a-f]{8,}$/.test(digest)) throw new Error(`makeRunId: digest is not lowercase hex: ${digest}`);
  const iso = date.toISOString(); // always UTC: 2024-03-05T14:07:09.123Z
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}`;
  return `${slug}-${name}-${stamp}-${digest.slice(-8)}`;
}

/**
 * One line per pin that differs, e.g. `code: commit abc1234 recorded, def5678 here`; `labels`
 * name the two sides (default `recorded` and `here`).
 */
export function comparePins(recorded: PinsWithoutDigest, current: PinsWithoutDigest, labels = { recorded: 'recorded', current: 'here' }): string[] {
  const out: string[] = [];
  // Compare full values, show short ones.
  const diff = (pin: string, what: string, a: string | null, b: string | null, show = (v: string | null) => v ?? 'none') => {
    if (a !== b) out.push(`${pin}: ${what ? `${what} ` : ''}${show(a)} ${labels.recorded}, ${show(b)} ${labels.current}`);
  };
  const short = (n: number) => (h: string | null) => (h === null ? 'none' : h.slice(0, n));
  const dirty = (h: string | null) => (h === null ? 'clean tree' : `uncommitted changes ${h.slice(0, 8)}`);
  const data = (d: Pins['data']) => `${d.root.slice(0, 8)} (${plural(d.files, 'file')}, ${formatBytes(d.bytes)})`;

  diff('code', 'commit', recorded.code.commit, current.code.commit, short(7));
  diff('code', '', recorded.code.dirty_sha256, current.code.dirty_sha256, dirty);
  if (recorded.data.root !== current.data.root) {
    out.push(`data: root ${data(recorded.data)} ${labels.recorded}, ${data(current.data)} ${labels.current}`);
  }
  diff('env', 'lockfiles', recorded.env.lock_sha256, current.env.lock_sha256, short(8));
  diff('env', 'python', recorded.env.python, current.env.python);
  diff('env', 'node', recorded.env.node, current.env.node);
  diff('config', '', recorded.config, current.config, short(8));
  diff('seed', '', String(recorded.seed), String(current.seed));
  return out;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
