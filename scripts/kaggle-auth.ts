// make kaggle-auth [force=1]
// Writes the Kaggle CLI's kaggle.json (0600) from KAGGLE_USERNAME and KAGGLE_KEY in .env, into
// KAGGLE_CONFIG_DIR when that is set (in the environment or .env), else ~/.kaggle: where the
// CLI looks. Refuses to replace a kaggle.json for another account unless force=1. The key is
// never printed.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { findRoot } from './lib/config/load-config.js';
import { kaggleConfigDir, kaggleJson, writeKaggleJson } from './lib/kaggle/credentials.js';
import { readDotEnv } from './lib/secrets/dotenv.js';
import { Flag, readVars } from './lib/spec/make-vars.js';
import { runMain, UserError } from './lib/ui/errors.js';

await runMain(async () => {
  const vars = readVars('kaggle-auth', { force: Flag.optional() });
  const env = { ...process.env, ...readDotEnv(findRoot()) };
  const { KAGGLE_USERNAME: username, KAGGLE_KEY: key } = env;
  if (!username || !key) {
    throw new UserError('.env: KAGGLE_USERNAME and KAGGLE_KEY are needed; add both (kaggle.com → Settings → API → Create New Token gives them)');
  }
  const dir = kaggleConfigDir(env);
  const file = path.join(dir, 'kaggle.json');
  if (existsSync(file)) {
    const now = readFileSync(file, 'utf8');
    if (now === kaggleJson(username, key)) {
      writeKaggleJson(dir, username, key); // the same content, its mode made 0600 again
      console.log(`${file} already holds ${username}'s key (0600)`);
      return 0;
    }
    let other = '';
    try {
      other = String((JSON.parse(now) as { username?: unknown }).username ?? '');
    } catch {
      // unreadable: replaced only with force=1 like any other
    }
    if (other !== username && !vars.force) throw new UserError(`${file}: holds the key of ${other || 'another account'}; make kaggle-auth force=1 replaces it with ${username}'s`);
  }
  writeKaggleJson(dir, username, key);
  console.log(`wrote ${file} (0600) for ${username}`);
  return 0;
});
