// The Kaggle CLI and its credentials: needed only to upload submissions, so required only when a
// competition names a Kaggle competition (challenge.json `kaggle`); otherwise a ✗ is optional.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { kaggleUnavailable } from '../kaggle/cli.js';
import { readDotEnv } from '../secrets/dotenv.js';
import { fail, pass, type Check } from './row.js';

/** The competitions whose challenge.json names a Kaggle competition. */
export function kaggleCompetitions(root: string): string[] {
  const dir = path.join(root, 'competitions');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((slug) => {
    try {
      return Boolean((JSON.parse(readFileSync(path.join(dir, slug, 'challenge.json'), 'utf8')) as { kaggle?: unknown }).kaggle);
    } catch {
      return false;
    }
  });
}

/** `why (fix)` as kaggleUnavailable says it, split; the fix in its parentheses. */
export function kaggleFinding(why: string | null, uses: readonly string[]): ReturnType<typeof pass> {
  const needed = uses.length ? `competitions ${uses.join(', ')} submit there` : 'no competition names one';
  if (!why) return pass('cli', `installed and configured; ${needed}`);
  const m = /^(.*?)\s*\(([^()]+)\)$/.exec(why);
  return fail('cli', `${m ? m[1] : why}; ${needed}`, m ? m[2]! : 'see make submit');
}

export function kaggleCheck(root: string): Check {
  const uses = kaggleCompetitions(root);
  return {
    group: 'kaggle',
    name: 'cli',
    required: uses.length > 0,
    timeoutMs: 5_000,
    run: async () => [kaggleFinding(kaggleUnavailable({ ...process.env, ...readDotEnv(root) }), uses)],
  };
}
