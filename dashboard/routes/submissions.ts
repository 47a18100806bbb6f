// Competitions (read from competitions/ on every request, so a new one appears without a restart)
// and their submissions.
import { readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { Router } from 'express';
import { listSubmissions } from '../../scripts/lib/actions/submissions.js';
import type { Project } from '../../scripts/lib/project.js';
import { queryValue, SLUG } from '../params.js';

export function listCompetitions(root: string): string[] {
  const dir = path.join(root, 'competitions');
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && SLUG.test(e.name) && existsSync(path.join(dir, e.name, 'challenge.json')))
    .map((e) => e.name)
    .sort();
}

export function submissionsRoutes(project: Project): Router {
  const r = Router();
  r.get('/api/competitions', (_req, res) => void res.json({ competitions: listCompetitions(project.root) }));
  r.get('/api/submissions', async (req, res) => {
    const competition = queryValue(req, 'competition', SLUG);
    res.json({ submissions: await listSubmissions(project, competition) });
  });
  return r;
}
