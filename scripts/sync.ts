// make sync host=<name>: pushes the project to the host (rsync delta transfer, one exclude list).
import { z } from 'zod';
import { syncHost } from './lib/actions/sync.js';
import { openProject } from './lib/project.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';
import { plural } from './lib/ui/plural.js';
import { byteProgress } from './lib/ui/progress.js';

await runMain(async () => {
  const vars = readVars('sync', { host: z.string().optional() });
  const project = await openProject();
  const progress = byteProgress(`sync ${vars.host ?? ''}`);
  const r = await syncHost(project, vars.host, (bytes, percent) => progress.update(bytes, percent > 0 ? (bytes * 100) / percent : bytes)).finally(() => progress.stop());
  console.log(`synced to ${r.host}:${r.repo} in ${(r.ms / 1000).toFixed(2)}s: ${plural(r.filesTransferred, 'file')} changed, ${plural(r.bytesTransferred, 'byte')} sent`);
  return 0;
});
