// A small tmpfs mounted as root: a real full (or read-only) disk for the fault tests.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Why a small tmpfs cannot be mounted here, or null when it can. */
export function tmpfsProblem(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to mount a small tmpfs';
  const probe = mkdtempSync(path.join(os.tmpdir(), 'sy-tmpfs-probe-'));
  try {
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8k', 'tmpfs', probe]);
    if (r.status !== 0) return `mount -t tmpfs failed: ${r.stderr.toString().trim()}`;
    execFileSync('umount', [probe]);
    return null;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

/** Mounts a tmpfs with mount options `options` (e.g. `size=16k,ro`) on the folder `dir`. */
export function mountTmpfs(dir: string, options: string): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
}

/** Unmounts `dir` lazily: a file a failed write left open must not keep the folder busy. */
export function unmountTmpfs(dir: string): void {
  spawnSync('umount', ['-l', dir]);
}
