// make gcp-setup [batch=<entry>]: checks, before a first Batch run, everything Google Cloud must
// give it: credentials (a service-account key named in .env, or Application Default
// Credentials), and for the project of each `batch:` entry (or the one named): the project, the
// Batch and Secret Manager APIs, and the credentials' permissions there. One line each, ✓ or ✗
// with the command that fixes it (batch/setup-checks.ts).
import { gcpSetup } from './lib/batch/setup-checks.js';
import { openProject } from './lib/project.js';
import { runMain, UserError } from './lib/ui/errors.js';

await runMain(async () => {
  const project = await openProject();
  const failed = await gcpSetup({ root: project.root, config: project.config, entry: process.env.batch || undefined, say: (c) => process.stdout.write(`${c.ok ? '✓' : '✗'} ${c.line}\n`) });
  if (failed) throw new UserError(`gcp-setup: ${failed} check${failed === 1 ? '' : 's'} failed; fix the lines marked ✗ and run make gcp-setup again`);
  process.stdout.write('ready: make train experiment=<slug> backend=gcp-batch\n');
});
