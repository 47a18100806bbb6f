// make competition-new competition=<slug> [name="Title"] [kaggle=<slug>]
// Scaffolds competitions/<slug>/ with a runnable baseline; refuses to overwrite anything. When
// Kaggle answers for the competition (kaggle=, or the slug itself once credentials are set),
// challenge.json takes its title, metric and deadline from there; otherwise the scaffold's.
// The title is data: it goes into challenge.json and the text of NOTES.md, never into code
// (the Python and YAML templates are copied as they are).
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { findRoot } from './lib/config/load-config.js';
import { KaggleApi, KaggleError, kaggleEndpoint } from './lib/kaggle/api.js';
import { findKaggleAuth } from './lib/kaggle/credentials.js';
import type { KaggleCompetition } from './lib/kaggle/responses.js';
import { readDotEnv } from './lib/secrets/dotenv.js';
import { checkName } from './lib/spec/experiment.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain, UserError } from './lib/ui/errors.js';

const templateDir = () => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = here; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const t = path.join(dir, 'scripts', 'templates', 'competition');
    if (existsSync(t)) return t;
  }
  throw new Error('competition template folder not found');
};

/** The one template with placeholders: prose, where the title is only text. */
const TEXT_TEMPLATE = 'NOTES.md';

/** Deterministic synthetic data so the scaffold trains out of the box. */
function syntheticData(rows: number, seed: number, withTarget: boolean): string {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const lines = [withTarget ? 'x1,x2,y' : 'id,x1,x2'];
  for (let i = 0; i < rows; i++) {
    const x1 = +(rand() * 4 - 2).toFixed(4);
    const x2 = +(rand() * 4 - 2).toFixed(4);
    const y = +(3 * x1 - 2 * x2 + 1 + (rand() - 0.5) * 0.2).toFixed(4);
    lines.push(withTarget ? `${x1},${x2},${y}` : `${i},${x1},${x2}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * What Kaggle says of the competition, or null when it cannot say: no slug to ask, no
 * credentials, unreachable, unknown. `asked` says whether the user named it (kaggle=), so
 * a miss is worth a line then.
 */
async function kaggleFacts(root: string, slug: string, asked: boolean): Promise<{ facts: KaggleCompetition | null; why: string | null }> {
  const env = { ...process.env, ...readDotEnv(root) };
  const auth = findKaggleAuth(env);
  if (!auth) return { facts: null, why: asked ? 'no Kaggle credentials in .env' : null };
  try {
    return { facts: await new KaggleApi({ endpoint: kaggleEndpoint(env), auth, timeoutMs: 10_000 }).competition(slug), why: null };
  } catch (err) {
    if (err instanceof KaggleError) return { facts: null, why: asked ? err.message : null };
    throw err;
  }
}

await runMain(async () => {
  const vars = readVars('competition-new', {
    competition: z.string(),
    name: z.string().max(120).regex(/^[^\u0000-\u001f]*$/, 'printable text').optional(),
    kaggle: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'a Kaggle competition slug').optional(),
  });
  const slug = checkName('competition', vars.competition, 'titanic');
  const root = findRoot();
  const dest = path.join(root, 'competitions', slug);
  if (existsSync(dest)) throw new UserError(`competition: competitions/${slug} already exists; pick another slug or edit it in place`);

  const { facts, why } = await kaggleFacts(root, vars.kaggle ?? slug, !!vars.kaggle);
  if (why) console.log(`challenge.json is the scaffold's: Kaggle gave nothing for ${vars.kaggle} (${why})`);
  const title = vars.name ?? facts?.title ?? slug;
  // One pass with a function, so nothing in the title ({{slug}}, $&) is read as a pattern.
  const values: Record<string, string> = { slug, title };
  const fill = (text: string) => text.replace(/\{\{(slug|title)\}\}/g, (_, key: string) => values[key]!);
  // Build in a temp folder and rename, so a failure never leaves a half-made competition.
  const tmp = `${dest}.tmp-${process.pid}`;
  try {
    mkdirSync(path.join(tmp, 'data'), { recursive: true });
    mkdirSync(path.join(tmp, 'experiments'));
    for (const file of readdirSync(templateDir())) {
      const text = readFileSync(path.join(templateDir(), file), 'utf8');
      writeFileSync(path.join(tmp, file), file === TEXT_TEMPLATE ? fill(text) : text);
    }
    const challenge = {
      title,
      kaggle: facts?.slug ?? vars.kaggle ?? null,
      default_host: null,
      submit_file: 'submission.csv',
      scorer: null,
      metric: facts?.metric ?? null,
      sample_submission: null,
      deadline: facts?.deadline ?? null,
    };
    writeFileSync(path.join(tmp, 'challenge.json'), JSON.stringify(challenge, null, 2) + '\n');
    writeFileSync(path.join(tmp, 'data', 'train.csv'), syntheticData(400, 1, true));
    writeFileSync(path.join(tmp, 'data', 'test.csv'), syntheticData(100, 2, false));
    writeFileSync(path.join(tmp, 'experiments', '.gitkeep'), '');
    renameSync(tmp, dest);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  console.log(`created competitions/${slug}/ (challenge.json, experiment.yaml, train.py, predict.py, NOTES.md, data/)`);
  if (facts) console.log(`challenge.json from Kaggle: ${facts.title}; metric ${facts.metric ?? 'not said'}; deadline ${facts.deadline ?? 'none'}`);
  console.log(`next: make train experiment=${slug}`);
  return 0;
});
