// make setup: make itself installs the dependencies (npm ci, saying so first: the SQLite
// binding compiles for minutes) and builds dist/ before this runs; this says what is in place
// and checks the tools the runs need, naming the command that installs what is missing.
import { runMain, UserError } from './lib/ui/errors.js';
import { NODE_MIN, nodeFits } from './lib/node-version.js';
import { run } from './lib/proc.js';

const TOOLS: [string, string[], string][] = [
  ['git', ['git', '--version'], 'apt-get install -y git'],
  ['python3', ['python3', '--version'], 'apt-get install -y python3'],
];

await runMain(async () => {
  const missing: string[] = [];
  process.stdout.write('✓ npm dependencies installed (node_modules/)\n✓ scripts compiled (dist/)\n');
  const sqlite = await import('better-sqlite3').then(
    (m) => (new m.default(':memory:').close(), true),
    () => false,
  );
  process.stdout.write(`${sqlite ? '✓' : '✗'} better-sqlite3 (the run index's native binding)\n`);
  if (!sqlite) missing.push('apt-get install -y g++ make python3 && npm rebuild better-sqlite3');
  for (const [name, argv, fix] of TOOLS) {
    const ok = await run(argv, { allowFail: true }).then((r) => r.code === 0, () => false);
    process.stdout.write(`${ok ? '✓' : '✗'} ${name}\n`);
    if (!ok) missing.push(fix);
  }
  const fits = nodeFits(process.version);
  process.stdout.write(`${fits ? '✓' : '✗'} node ${process.version}\n`);
  if (!fits) missing.push(`install Node.js ${NODE_MIN} or newer`);
  if (missing.length) throw new UserError(`setup: missing tools; run: ${missing.join(' && ')}`);
  process.stdout.write('ready: make train experiment=penguins\n');
});
