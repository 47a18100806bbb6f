// make dashboard [port=8787] [host=127.0.0.1]: the operator's web console. Binds to loopback
// unless host= names another address, and then refuses to start without a token in .env, and
// asks a sign-in for reading too (anyone who can reach it could otherwise read every run).
import { z } from 'zod';
import { openProject } from '../scripts/lib/project.js';
import { readDotEnv } from '../scripts/lib/secrets/dotenv.js';
import { readVars } from '../scripts/lib/spec/make-vars.js';
import { runMain, UserError } from '../scripts/lib/ui/errors.js';
import { createDashboard } from './app.js';
import { LOOPBACK_BINDS, TOKEN_KEY } from './auth.js';
import { hostsRoutes, startHostWatch } from './routes/hosts.js';

await runMain(async () => {
  const vars = readVars('dashboard', {
    port: z.coerce.number().int().min(0).max(65535).default(8787),
    host: z.string().regex(/^[0-9A-Za-z.:-]+$/, 'an address to listen on, e.g. 127.0.0.1').default('127.0.0.1'),
  });
  const project = await openProject();
  const token = readDotEnv(project.root)[TOKEN_KEY];
  if (!LOOPBACK_BINDS.has(vars.host) && !token) {
    throw new UserError(`dashboard: host=${vars.host} opens it beyond this machine; set ${TOKEN_KEY} in .env first (e.g. ${TOKEN_KEY}=$(openssl rand -hex 32)), or leave host= out`);
  }
  let port = vars.port;
  const watch = startHostWatch(project);
  const { app } = createDashboard({ project, bindHost: vars.host, port: () => port, extra: (runs) => [hostsRoutes(project, watch, runs)] });
  const server = app.listen(vars.port, vars.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new UserError(`dashboard: port ${vars.port} is in use; give port=<another>`) : err),
    );
  });
  port = (server.address() as { port: number }).port;
  const shown = vars.host.includes(':') ? `[${vars.host}]` : vars.host;
  console.log(`dashboard on http://${shown}:${port}/ (${token ? `sign in with the token in .env to ${LOOPBACK_BINDS.has(vars.host) ? 'act' : 'read or act'}` : `read-only: set ${TOKEN_KEY} in .env to act`}); Ctrl-C stops it`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      server.close(() => resolve());
      server.closeAllConnections();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await watch?.stop();
  project.db.close();
  return 0;
});
