// Kaggle: credentials, and Kaggle's API answering with them for a competition that names one.
// Needed only to upload submissions and read their scores, so required only when a competition
// names a Kaggle competition (challenge.json `kaggle`); otherwise a ✗ is optional.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { KaggleApi, KaggleError, kaggleEndpoint } from '../kaggle/api.js';
import { findKaggleAuth, type KaggleAuth } from '../kaggle/credentials.js';
import { readDotEnv } from '../secrets/dotenv.js';
import { fail, pass, skip, type Check, type Finding } from './row.js';

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

const CREDENTIALS_FIX = 'set KAGGLE_USERNAME and KAGGLE_KEY in .env (kaggle.com → Settings → API → Create New Token), then make kaggle-auth';

/** Where the credentials came from, or the fix; and whether a competition needs them. */
export function credentialsFinding(auth: KaggleAuth | null, uses: readonly string[]): Finding {
  const needed = uses.length ? `competitions ${uses.join(', ')} submit there` : 'no competition names one';
  if (!auth) return fail('credentials', `none found; ${needed}`, CREDENTIALS_FIX);
  return pass('credentials', `${auth.kind === 'token' ? 'KAGGLE_API_TOKEN' : `user ${auth.username}`}; ${needed}`);
}

/** Kaggle's answer for the first competition that names one, as a row. */
async function apiFinding(env: NodeJS.ProcessEnv, auth: KaggleAuth | null, slug: string | undefined, timeoutMs: number): Promise<Finding> {
  if (!auth || !slug) return skip('api', auth ? 'no competition names one' : 'no credentials to ask with');
  const endpoint = kaggleEndpoint(env);
  try {
    const c = await new KaggleApi({ endpoint, auth, timeoutMs }).competition(slug);
    return pass('api', `${endpoint} answers: ${slug} is "${c.title}"`);
  } catch (err) {
    const why = (err as Error).message;
    const fix = err instanceof KaggleError && err.kind === 'auth' ? CREDENTIALS_FIX : `check the network to ${endpoint} (KAGGLE_API_ENDPOINT points elsewhere)`;
    return fail('api', why, fix);
  }
}

export function kaggleCheck(root: string): Check {
  const uses = kaggleCompetitions(root);
  const timeoutMs = 5_000;
  return {
    group: 'kaggle',
    name: 'credentials',
    required: uses.length > 0,
    timeoutMs,
    run: async () => {
      const env = { ...process.env, ...readDotEnv(root) };
      const auth = findKaggleAuth(env);
      return [credentialsFinding(auth, uses), await apiFinding(env, auth, uses[0], timeoutMs - 500)];
    },
  };
}
