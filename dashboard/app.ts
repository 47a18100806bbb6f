// The dashboard's HTTP surface: pages (static HTML + ES modules from dashboard/public, uPlot from
// node_modules), JSON APIs over the actions, and the auth that guards every POST (and every
// read, when the server listens beyond this machine).
import path from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Project } from '../scripts/lib/project.js';
import { UserError } from '../scripts/lib/ui/errors.js';
import { Auth, TOKEN_KEY } from './auth.js';
import { BadRequest } from './params.js';
import { actionsRoutes } from './routes/actions.js';
import { runsRoutes } from './routes/runs.js';
import { submissionsRoutes } from './routes/submissions.js';
import { RunsCache } from './runs-view.js';
import { EnvSecrets } from './secrets.js';

export interface DashboardOptions {
  project: Project;
  /** the address it listens on (for the Host check) */
  bindHost: string;
  /** the port it listens on, once known */
  port: () => number;
  /** more routes (the hosts page), mounted before the fallbacks */
  extra?: (runs: RunsCache) => express.Router[];
}

const PAGES: Record<string, string> = { '/': 'runs.html', '/hosts': 'hosts.html', '/submissions': 'submissions.html', '/login': 'login.html' };

export function createDashboard(opts: DashboardOptions) {
  const { project } = opts;
  const secrets = new EnvSecrets(project.root);
  const auth = new Auth(() => secrets.value(TOKEN_KEY), opts.port, opts.bindHost);
  const runs = new RunsCache(project);
  const publicDir = path.join(project.root, 'dashboard', 'public');

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(auth.checkHost());
  // No path walks up: `..` as a segment, encoded or not, is refused before any route sees it.
  app.use((req, res, next) => {
    const raw = (req.originalUrl.split('?')[0] ?? '').replace(/%2e/gi, '.').replace(/%2f/gi, '/').replace(/%5c/gi, '\\');
    if (raw.split(/[/\\]/).includes('..')) return void res.status(400).json({ error: 'a path may not contain ..' });
    next();
  });
  app.use((_req, res, next) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'same-origin');
    res.setHeader('Content-Security-Policy', "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'");
    next();
  });
  app.use(secrets.middleware());
  app.use(express.urlencoded({ extended: false, limit: '8kb' }));
  app.use(express.json({ limit: '64kb' }));
  app.use(auth.checkPost());
  app.use(auth.checkRead());

  app.post('/login', (req, res) => auth.login(req, res));
  app.post('/api/logout', (req, res) => auth.logout(req, res));
  app.get('/api/session', (req, res) => void res.json(auth.describe(req)));

  for (const [route, file] of Object.entries(PAGES)) app.get(route, (_req, res) => res.sendFile(path.join(publicDir, file)));
  app.get('/runs/:run', (_req, res) => res.sendFile(path.join(publicDir, 'run.html')));
  app.use('/static', express.static(publicDir, { index: false }));
  app.use('/vendor/uplot', express.static(path.join(project.root, 'node_modules', 'uplot', 'dist'), { index: false }));
  // A missing file says so, not where it was looked for: the stat error names the project's path.
  app.use(['/static', '/vendor/uplot'], (_req, res) => void res.status(404).json({ error: 'no such file' }));

  app.use(runsRoutes({ project, runs, secrets }));
  app.use(submissionsRoutes(project));
  app.use(actionsRoutes({ project, runs, secrets }));
  for (const router of opts.extra?.(runs) ?? []) app.use(router);

  app.use('/api', (_req, res) => void res.status(404).json({ error: 'no such API' }));
  // Errors: one line, masked; a UserError is the operator's to fix, anything else is ours.
  app.use((err: Error & { status?: number; exitCode?: number }, req: Request, res: Response, _next: NextFunction) => {
    const status = err instanceof BadRequest ? 400 : err instanceof UserError ? (err.exitCode === 404 ? 404 : 409) : (err.status ?? 500);
    if (status >= 500) console.error(`dashboard: ${req.method} ${req.path}: ${secrets.current().text(err.stack ?? err.message)}`);
    const message = status >= 500 && !(err instanceof UserError) ? `internal error: ${err.message.split('\n')[0]}` : err.message.split('\n')[0];
    if (res.headersSent) return void res.end();
    res.status(status).json({ error: message });
  });
  return { app, auth, runs, secrets };
}
