// .env holds the secrets: a file of KEY=value lines, readable by its owner only, and never
// tracked by git.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { run } from '../proc.js';
import { readDotEnv } from '../secrets/dotenv.js';
import { UserError } from '../ui/errors.js';
import { fail, pass, skip, splitFix, type Check, type Finding } from './row.js';

/** The row for .env's tracking, lines and mode (pure); `unreadable`: why it does not parse, if it does not. */
export function envFileFinding(mode: number | null, tracked: boolean, unreadable: string | null = null): Finding {
  if (mode === null) return skip('.env', 'absent (make init writes one from .env.example)');
  if (tracked) return fail('.env', 'tracked by git: its secrets are in the history', 'git rm --cached .env, then rotate every key it held');
  if (unreadable) {
    const { detail, fix } = splitFix(unreadable);
    return fail('.env', detail.replace(/^\.env:(\d+):/, 'line $1:').replace(/^\.env: /, ''), fix);
  }
  const perm = mode & 0o777;
  const octal = perm.toString(8).padStart(4, '0');
  if (perm & 0o077) return fail('.env', `mode ${octal}: others can read the secrets`, 'chmod 600 .env');
  return pass('.env', `mode ${octal}`);
}

export function envFileCheck(root: string): Check {
  return {
    group: 'secrets',
    name: '.env',
    required: true,
    timeoutMs: 5_000,
    run: async () => {
      const file = path.join(root, '.env');
      if (!existsSync(file)) return [envFileFinding(null, false)];
      const tracked = await run(['git', 'ls-files', '--error-unmatch', '.env'], { cwd: root, allowFail: true }).then((r) => r.code === 0, () => false);
      return [envFileFinding(statSync(file).mode, tracked, parseProblem(root))];
    },
  };
}

/** Why .env does not parse (`.env:3: not a KEY=value line; ...`, a folder), or null. */
function parseProblem(root: string): string | null {
  try {
    readDotEnv(root);
    return null;
  } catch (err) {
    if (err instanceof UserError) return err.message;
    throw err;
  }
}
