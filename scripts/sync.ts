// make sync host=<name>: pushes the project to the host (rsync delta transfer, one exclude list).
import { z } from 'zod';
import { openProject } from './lib/project.js';
import { openRemoteHost } from './lib/remote/open-host.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';
import { plural } from './lib/ui/plural.js';
import { byteProgress } from './lib/ui/progress.js';

await runMain(async () => {
  const vars = readVars('sync', { host: z.string().optional() });
  const project = await openProject();
  const host = await openRemoteHost(project, vars.host);
  const t0 = Date.now();
  const progress = byteProgress(`sync ${host.name}`);
  const r = await host.syncRepo(project.root, { onProgress: (bytes, percent) => progress.update(bytes, percent > 0 ? (bytes * 100) / percent : bytes) });
  progress.stop();
  console.log(`synced to ${host.name}:${host.layout.repo} in ${((Date.now() - t0) / 1000).toFixed(2)}s: ${plural(r.filesTransferred, 'file')} changed, ${plural(r.bytesTransferred, 'byte')} sent`);
  return 0;
});
