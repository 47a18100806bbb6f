// A local stand-in for the Kaggle competition API (Kaggle is unreachable from here), serving the
// requests the kaggle CLI makes through kagglesdk, with the same paths, forms and JSON shapes:
//   GET  /api/v1/competitions/list?search=            { competitions: [ApiCompetition] }
//   GET  /api/v1/competitions/data/list/<slug>         { files: [ApiDataFile], nextPageToken } (paged)
//   GET  /api/v1/competitions/data/download/<slug>/<f> 302 to the file's bytes (as Kaggle redirects to storage)
//   POST /api/v1/competitions/submission-url           multipart fileName, contentLength, … → { token, createUrl }
//   PUT  <createUrl>                                   the bytes (no Kaggle credentials, as for a storage bucket)
//   POST /api/v1/competitions/submissions/submit/<slug> multipart blobFileTokens, submissionDescription → { message, ref }
//   GET  /api/v1/competitions/submissions/list/<slug>  { submissions: [ApiSubmission] }, newest first
// Every /api/v1 call needs basic auth with the stand-in's username and key (or its Bearer
// token); errors answer { code, message } as Kaggle does. A submission is PENDING in the first
// `listsUntilScored` listings after it is made, then COMPLETE with its public score (the
// competition's `score` of the bytes; a throw makes it ERROR with that message). A path set in
// `replies` is answered with that JSON instead, for the client to meet an answer of another shape.
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import express, { type Request, type Response } from 'express';
import { formFields } from './multipart.js';

export interface StandinCompetition {
  title: string;
  metric?: string;
  deadline?: string;
  /** data files by name */
  files?: Record<string, string | Buffer>;
  /** the public score of a submission's bytes; default `hashScore` */
  score?: (bytes: Buffer) => number;
}

export interface StandinSubmission {
  ref: number;
  slug: string;
  fileName: string;
  description: string | null;
  bytes: Buffer;
  date: string;
  /** listings that have shown it so far */
  listed: number;
}

export interface KaggleStandin {
  /** the origin to give as KAGGLE_API_ENDPOINT */
  url: string;
  username: string;
  key: string;
  /** every request received, in order, as `METHOD /path` (no query) */
  requests: string[];
  submissions: StandinSubmission[];
  competitions: Record<string, StandinCompetition>;
  /** answers given in place of the real ones, by path (no query), after the auth check */
  replies: Map<string, unknown>;
  close(): Promise<void>;
}

/** A deterministic score in [0, 1) with 5 decimals, from the bytes' SHA-256. */
export function hashScore(bytes: Buffer): number {
  return Math.round((parseInt(createHash('sha256').update(bytes).digest('hex').slice(0, 8), 16) / 2 ** 32) * 1e5) / 1e5;
}

export async function startKaggleStandin(opts: {
  competitions: Record<string, StandinCompetition>;
  username?: string;
  key?: string;
  token?: string;
  listsUntilScored?: number;
  /** data files per listing page */
  pageSize?: number;
}): Promise<KaggleStandin> {
  const username = opts.username ?? 'tester';
  const key = opts.key ?? 'k3y-not-secret';
  const listsUntilScored = opts.listsUntilScored ?? 1;
  const pageSize = opts.pageSize ?? 20;
  const requests: string[] = [];
  const submissions: StandinSubmission[] = [];
  const replies = new Map<string, unknown>();
  const uploads = new Map<string, { fileName: string; contentLength: number; slug: string | null; bytes: Buffer | null }>();
  let nextRef = 40_000_001;
  let origin = '';

  const app = express();
  app.use(express.raw({ type: () => true, limit: '64mb' }));
  app.use((req, _res, next) => {
    requests.push(`${req.method} ${req.path}`);
    next();
  });
  const fail = (res: Response, code: number, message: string) => res.status(code).json({ code, message });
  const authorized = (req: Request) => {
    const h = req.headers.authorization ?? '';
    if (opts.token && h === `Bearer ${opts.token}`) return true;
    return h === `Basic ${Buffer.from(`${username}:${key}`).toString('base64')}`;
  };
  app.use('/api/v1', (req, res, next) => (authorized(req) ? next() : fail(res, 401, 'Unauthenticated')));
  app.use((req, res, next) => (replies.has(req.path) ? res.json(replies.get(req.path)) : next()));
  const competition = (req: Request, res: Response): [string, StandinCompetition] | null => {
    const slug = String(req.params.slug);
    const c = opts.competitions[slug];
    if (!c) return fail(res, 404, `Competition ${slug} not found`), null;
    return [slug, c];
  };
  const body = (req: Request) => (Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));

  app.get('/api/v1/competitions/list', (req, res) => {
    const search = String(req.query.search ?? '');
    const list = Object.entries(opts.competitions)
      .filter(([slug, c]) => slug.includes(search) || c.title.toLowerCase().includes(search.toLowerCase()))
      .map(([slug, c], i) => ({
        id: 1000 + i,
        ref: `https://www.kaggle.com/competitions/${slug}`,
        title: c.title,
        url: `https://www.kaggle.com/competitions/${slug}`,
        category: 'Getting Started',
        reward: 'Knowledge',
        deadline: c.deadline ?? '2030-01-01T23:59:00Z',
        evaluationMetric: c.metric ?? 'Categorization Accuracy',
        maxDailySubmissions: 10,
        submissionsDisabled: false,
      }));
    res.json({ competitions: list });
  });

  app.get('/api/v1/competitions/data/list/:slug', (req, res) => {
    const found = competition(req, res);
    if (!found) return;
    const names = Object.keys(found[1].files ?? {}).sort();
    const from = Number(req.query.pageToken ?? 0);
    const page = names.slice(from, from + pageSize);
    const files = page.map((name) => ({ ref: name, name, totalBytes: Buffer.byteLength(found[1].files![name]!), creationDate: '2024-01-01T00:00:00Z' }));
    res.json({ files, nextPageToken: from + pageSize < names.length ? String(from + pageSize) : '' });
  });

  app.get('/api/v1/competitions/data/download/:slug/{*name}', (req, res) => {
    const found = competition(req, res);
    if (!found) return;
    const name = ([] as string[]).concat(req.params.name as string | string[]).join('/');
    if (!(name in (found[1].files ?? {}))) return fail(res, 404, `File ${name} not found`);
    res.redirect(302, `${origin}/storage/${found[0]}/${name.split('/').map(encodeURIComponent).join('/')}`);
  });
  app.get('/storage/:slug/{*name}', (req, res) => {
    const name = ([] as string[]).concat(req.params.name as string | string[]).join('/');
    const data = opts.competitions[String(req.params.slug)]?.files?.[name];
    if (data === undefined) return res.status(404).end();
    res.setHeader('content-type', 'application/octet-stream');
    res.setHeader('content-length', String(Buffer.byteLength(data)));
    res.end(data);
  });

  app.post('/api/v1/competitions/submission-url', (req, res) => {
    const f = formFields(req.headers['content-type'], body(req));
    if (!f) return fail(res, 400, 'expected a multipart form');
    const contentLength = Number(f.contentLength);
    if (!f.fileName || !Number.isSafeInteger(contentLength)) return fail(res, 400, 'fileName and contentLength are required');
    const token = `blob-${createHash('sha256').update(`${f.fileName}${Date.now()}${uploads.size}`).digest('hex').slice(0, 16)}`;
    uploads.set(token, { fileName: f.fileName, contentLength, slug: f.competitionName ?? null, bytes: null });
    res.json({ token, createUrl: `${origin}/upload/${token}` });
  });

  app.put('/upload/:token', (req, res) => {
    const up = uploads.get(String(req.params.token));
    if (!up) return res.status(404).end();
    const bytes = body(req);
    if (bytes.length !== up.contentLength) return res.status(400).send(`expected ${up.contentLength} bytes, got ${bytes.length}`);
    up.bytes = bytes;
    res.status(200).end();
  });

  app.post('/api/v1/competitions/submissions/submit/:slug', (req, res) => {
    const found = competition(req, res);
    if (!found) return;
    const f = formFields(req.headers['content-type'], body(req));
    if (!f) return fail(res, 400, 'expected a multipart form');
    const up = uploads.get(f.blobFileTokens ?? '');
    if (!up?.bytes) return fail(res, 400, 'blobFileTokens names no completed upload');
    uploads.delete(f.blobFileTokens!);
    const sub: StandinSubmission = { ref: nextRef++, slug: found[0], fileName: up.fileName, description: f.submissionDescription ?? null, bytes: up.bytes, date: new Date().toISOString(), listed: 0 };
    submissions.push(sub);
    res.json({ message: `Successfully submitted to ${found[1].title}`, ref: sub.ref });
  });

  app.get('/api/v1/competitions/submissions/list/:slug', (req, res) => {
    const found = competition(req, res);
    if (!found) return;
    const mine = submissions.filter((s) => s.slug === found[0]).reverse();
    const list = mine.map((s) => {
      const scored = s.listed++ >= listsUntilScored;
      let status = 'PENDING';
      let publicScore = '';
      let errorDescription: string | undefined;
      if (scored) {
        try {
          publicScore = String((found[1].score ?? hashScore)(s.bytes));
          status = 'COMPLETE';
        } catch (err) {
          status = 'ERROR';
          errorDescription = (err as Error).message;
        }
      }
      return { ref: s.ref, totalBytes: s.bytes.length, date: s.date, description: s.description, fileName: s.fileName, publicScore, privateScore: '', status, errorDescription, submittedBy: username };
    });
    res.json({ submissions: list });
  });

  app.use((req, res) => fail(res, 404, `no route ${req.method} ${req.path}`));

  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: origin,
    username,
    key,
    requests,
    submissions,
    competitions: opts.competitions,
    replies,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
