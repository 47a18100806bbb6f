// make init [yes=1] [force=1] [store= hosts= identity_file= fleets= clusters= batch= s3_endpoint=]:
// a short wizard that writes cluster_fleet_config.ts and .env (from .env.example, 0600), asking
// before it replaces anything, then runs the doctor (scripts/lib/init/, scripts/lib/doctor/).
import { createInterface } from 'node:readline/promises';
import { findRoot } from './lib/config/load-config.js';
import { runDoctor } from './lib/doctor/doctor.js';
import { QUESTIONS } from './lib/init/answers.js';
import { init, type InitIo } from './lib/init/init.js';
import { runMain, UserError } from './lib/ui/errors.js';

await runMain(async () => {
  const root = findRoot();
  const yes = process.env.yes === '1';
  if (!yes && !process.stdin.isTTY) {
    throw new UserError(`init: no terminal to ask on; pass yes=1 to keep the current answers, and answers as variables (${QUESTIONS.map((q) => `${q.key}=`).join(' ')})`);
  }
  const rl = yes ? null : createInterface({ input: process.stdin, output: process.stdout });
  // Ctrl-D or Ctrl-C at a question stops the wizard before anything is written.
  const question = (text: string) =>
    rl!.question(text).catch((err: Error) => {
      throw err.name === 'AbortError' ? new UserError('init: stopped at a question; nothing was written') : err;
    });
  const io: InitIo = {
    ask: (prompt, current) => question(`${prompt}\n  [${current}] `),
    confirm: async (q) => /^y(es)?$/i.test((await question(`${q} [y/N] `)).trim()),
    say: (line) => process.stdout.write(`${line}\n`),
  };
  try {
    const vars = Object.fromEntries(QUESTIONS.map((q) => [q.key, process.env[q.key]]));
    const agreed = await init({ root, vars, yes, force: process.env.force === '1', io });
    process.stdout.write('\n');
    const failed = await runDoctor(root, {}, (text) => process.stdout.write(text));
    return agreed && !failed ? 0 : 1;
  } finally {
    rl?.close();
  }
});
