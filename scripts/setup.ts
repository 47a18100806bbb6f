// make setup: dependencies are installed and dist/ built by make itself; this checks the
// tools the runs need and says what is missing, with the command that installs it.
import { runMain, UserError } from './lib/ui/errors.js';
import { run } from './lib/proc.js';

const TOOLS: [string, string[], string][] = [
  ['git', ['git', '--version'], 'apt-get install -y git'],
  ['python3', ['python3', '--version'], 'apt-get install -y python3'],
];

await runMain(async () => {
  const missing: string[] = [];
  for (const [name, argv, fix] of TOOLS) {
    const ok = await run(argv, { allowFail: true }).then((r) => r.code === 0, () => false);
    process.stdout.write(`${ok ? '✓' : '✗'} ${name}\n`);
    if (!ok) missing.push(fix);
  }
  const major = Number(process.versions.node.split('.')[0]);
  process.stdout.write(`${major >= 20 ? '✓' : '✗'} node ${process.version}\n`);
  if (major < 20) missing.push('install Node.js 20 or newer');
  if (missing.length) throw new UserError(`setup: missing tools; run: ${missing.join(' && ')}`);
  process.stdout.write('ready: make train experiment=penguins\n');
});
