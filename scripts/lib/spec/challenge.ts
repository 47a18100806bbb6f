// challenge.json: a competition's small metadata file.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { withoutBom } from '../bom.js';
import { UserError } from '../ui/errors.js';
import { formatZodIssue } from './zod-format.js';

export const ChallengeSchema = z.strictObject({
  title: z.string().min(1),
  /** the Kaggle competition slug, or null when there is none */
  kaggle: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'a Kaggle competition slug').nullable().default(null),
  default_host: z.string().nullable().default(null),
  submit_file: z.string().min(1).default('submission.csv'),
  /** argv of a local scorer; the submission file's path is appended */
  scorer: z.array(z.string().min(1)).min(1).nullable().default(null),
  metric: z.string().min(1).nullable().default(null),
  /** a sample submission in the competition folder; without one, make submit fetches Kaggle's */
  sample_submission: z.string().min(1).nullable().default(null),
  /** Kaggle's deadline for the competition (ISO 8601), as make competition-new found it */
  deadline: z.string().min(1).nullable().default(null),
});

export type Challenge = z.infer<typeof ChallengeSchema>;

export function loadChallenge(competitionDir: string, label: string): Challenge {
  const file = path.join(competitionDir, 'challenge.json');
  const shown = path.join(label, 'challenge.json');
  if (!existsSync(file)) throw new UserError(`${shown}: missing; every competition has one (make competition-new scaffolds it)`);
  let raw: unknown;
  try {
    raw = JSON.parse(withoutBom(readFileSync(file, 'utf8')));
  } catch (err) {
    throw new UserError(`${shown}: malformed JSON: ${(err as Error).message}`);
  }
  const parsed = ChallengeSchema.safeParse(raw);
  if (!parsed.success) throw new UserError(formatZodIssue(shown, parsed.error, ChallengeSchema, raw));
  return parsed.data;
}
