// The Kaggle CLI, when it is installed and configured; otherwise submissions are dry runs.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../proc.js';

function onPath(exe: string, env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, exe))) return path.join(dir, exe);
  }
  return null;
}

/** Why a real upload is impossible right now, or null when it is possible. */
export function kaggleUnavailable(env: NodeJS.ProcessEnv): string | null {
  if (!onPath('kaggle', env)) return 'the kaggle CLI is not installed (pip install kaggle)';
  const configured =
    (env.KAGGLE_USERNAME && env.KAGGLE_KEY) ||
    existsSync(path.join(env.KAGGLE_CONFIG_DIR ?? path.join(os.homedir(), '.kaggle'), 'kaggle.json'));
  return configured ? null : 'kaggle is not configured (set KAGGLE_USERNAME and KAGGLE_KEY in .env)';
}

export async function kaggleSubmit(slug: string, file: string, message: string, env: NodeJS.ProcessEnv): Promise<string> {
  const r = await run(['kaggle', 'competitions', 'submit', '-c', slug, '-f', file, '-m', message], { env });
  return r.stdout.toString().trim();
}
