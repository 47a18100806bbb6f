// Kaggle's competition API, spoken over HTTP the way the kaggle CLI (through kagglesdk) speaks
// it: REST paths under /api/v1/competitions, basic auth with the username and key (or a Bearer
// token), multipart forms for the two submission calls, a PUT of the bytes to the upload URL
// Kaggle hands out, and data downloads that redirect to the file. It points at
// https://www.kaggle.com, or at KAGGLE_API_ENDPOINT when that is set (the tests' stand-in).
// No secret ever enters an error message.
import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../ui/errors.js';
import { authorizationHeader, findKaggleAuth, type KaggleAuth } from './credentials.js';
import { KaggleError, KaggleResponseError } from './errors.js';
import {
  parseCompetitions,
  parseCreated,
  parseDataFiles,
  parseSubmissions,
  parseUploadStart,
  type KaggleCompetition,
  type KaggleDataFile,
  type KaggleSubmission,
} from './responses.js';

export const KAGGLE_ENDPOINT = 'https://www.kaggle.com';

const isHttpUrl = (s: string) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol);

/** The API's origin: KAGGLE_API_ENDPOINT (with or without its /api/v1), else Kaggle's. */
export function kaggleEndpoint(env: NodeJS.ProcessEnv): string {
  const set = env.KAGGLE_API_ENDPOINT?.trim();
  // Checked once, here: fetch would refuse `127.0.0.1:8080` only at the first request, as a
  // TypeError rather than an answer.
  if (set && !isHttpUrl(set))
    throw new UserError(`KAGGLE_API_ENDPOINT: ${set} is not an http:// or https:// URL; write it with its scheme (e.g. http://localhost:8080), or leave it unset for Kaggle itself`);
  return (set || KAGGLE_ENDPOINT).replace(/\/+$/, '').replace(/\/api\/v1$/, '');
}

export { KaggleError, type KaggleFailure } from './errors.js';

export interface KaggleApiOptions {
  endpoint: string;
  auth: KaggleAuth | null;
  /** per API call (not per download or upload); default 30 s */
  timeoutMs?: number;
}

const enc = encodeURIComponent;

/**
 * The Authorization header for `auth`. fetch refuses a header value with a line break in it
 * with an error that quotes the whole value, so a token a header cannot carry as it is (a quoted
 * .env value over two lines, a pasted curly quote) is refused here, naming only its variable.
 */
function authorizationOf(auth: KaggleAuth): string {
  if (auth.kind === 'token' && !/^[\x21-\x7e]+$/.test(auth.token))
    throw new KaggleError('auth', 'KAGGLE_API_TOKEN has a line break, a space or a character outside ASCII, which no Kaggle token has; copy it again into .env, on one line');
  return authorizationHeader(auth);
}

export class KaggleApi {
  readonly endpoint: string;
  private readonly authorization: string | null;
  private readonly timeoutMs: number;

  constructor(opts: KaggleApiOptions) {
    this.endpoint = opts.endpoint;
    this.authorization = opts.auth && authorizationOf(opts.auth);
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** The competition whose slug is `slug`, from the competition search. */
  async competition(slug: string): Promise<KaggleCompetition> {
    const found = (await this.json('GET', `/api/v1/competitions/list?search=${enc(slug)}`, parseCompetitions)).find((c) => c.slug === slug);
    if (!found) throw new KaggleError('not-found', `Kaggle has no competition ${slug} (or it is not visible to this account)`);
    return found;
  }

  /** Every data file of the competition, following the listing's pages. */
  async dataFiles(slug: string): Promise<KaggleDataFile[]> {
    const files: KaggleDataFile[] = [];
    let token: string | null = null;
    for (let page = 0; page < 100; page++) {
      const query: string = token ? `?pageToken=${enc(token)}` : '';
      const parsed = await this.json('GET', `/api/v1/competitions/data/list/${enc(slug)}${query}`, parseDataFiles);
      files.push(...parsed.files);
      token = parsed.nextPageToken;
      if (!token) break;
    }
    return files;
  }

  /** Streams one data file to `dest` (through a temp file beside it); returns its size. */
  async downloadFile(slug: string, name: string, dest: string): Promise<number> {
    const res = await this.send('GET', `/api/v1/competitions/data/download/${enc(slug)}/${name.split('/').map(enc).join('/')}`, { timeoutMs: 600_000 });
    if (!res.body) throw new KaggleError('refused', `Kaggle sent no bytes for ${slug}/${name}`);
    const tmp = `${dest}.${process.pid}.part`;
    try {
      await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), createWriteStream(tmp));
      renameSync(tmp, dest);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
    return Number(res.headers.get('content-length') ?? NaN);
  }

  /** One data file's bytes (a small one: the sample submission). */
  async fileBytes(slug: string, name: string): Promise<Buffer> {
    const res = await this.send('GET', `/api/v1/competitions/data/download/${enc(slug)}/${name.split('/').map(enc).join('/')}`);
    return Buffer.from(await res.arrayBuffer());
  }

  /**
   * A submission: ask for an upload URL, PUT the bytes there (without Kaggle's credentials: the
   * URL is a storage bucket's), then create the submission from the upload's token.
   */
  async submit(slug: string, fileName: string, bytes: Buffer, message: string): Promise<{ ref: string | null; message: string }> {
    const start = await this.json('POST', '/api/v1/competitions/submission-url', parseUploadStart, {
      form: { fileName, contentLength: String(bytes.length), lastModifiedEpochSeconds: String(Math.floor(Date.now() / 1000)), competitionName: slug },
    });
    const uploadUrl = new URL(start.createUrl, this.endpoint).toString();
    const put = await this.fetchOrFail(uploadUrl, { method: 'PUT', body: new Uint8Array(bytes), headers: { 'content-type': 'application/octet-stream' }, signal: AbortSignal.timeout(600_000) });
    if (!put.ok) throw new KaggleError('refused', `Kaggle's upload URL refused the file: HTTP ${put.status}`);
    const form: Record<string, string> = { blobFileTokens: start.token };
    if (message) form.submissionDescription = message;
    return this.json('POST', `/api/v1/competitions/submissions/submit/${enc(slug)}`, parseCreated, { form });
  }

  /** This account's submissions to the competition, newest first, with their scores. */
  async submissions(slug: string): Promise<KaggleSubmission[]> {
    return this.json('GET', `/api/v1/competitions/submissions/list/${enc(slug)}?page=1&pageSize=100`, parseSubmissions);
  }

  /** The answer's JSON, read by `parse`; an answer that is not JSON, or not of its shape, names the request. */
  private async json<T>(method: string, path: string, parse: (body: unknown) => T, opts: { form?: Record<string, string> } = {}): Promise<T> {
    const res = await this.send(method, path, opts);
    const text = await res.text();
    const what = `${method} ${path.split('?')[0]}`;
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      throw new KaggleError('refused', `${what}: Kaggle's answer is not JSON`);
    }
    try {
      return parse(body);
    } catch (err) {
      throw err instanceof KaggleResponseError ? new KaggleResponseError(`${what}: ${err.message}`) : err;
    }
  }

  private async send(method: string, path: string, opts: { form?: Record<string, string>; timeoutMs?: number } = {}): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'switchyard' };
    if (this.authorization) headers.authorization = this.authorization;
    let body: FormData | undefined;
    if (opts.form) {
      body = new FormData();
      for (const [k, v] of Object.entries(opts.form)) body.append(k, v);
    }
    const res = await this.fetchOrFail(this.endpoint + path, { method, headers, body, signal: AbortSignal.timeout(opts.timeoutMs ?? this.timeoutMs) });
    if (res.ok) return res;
    const what = `${method} ${path.split('?')[0]}`;
    const detail = await errorMessage(res);
    if (res.status === 401 || res.status === 403) {
      throw new KaggleError('auth', `${what}: Kaggle refused the credentials (HTTP ${res.status}${detail}); check KAGGLE_USERNAME and KAGGLE_KEY in .env, then make kaggle-auth`);
    }
    if (res.status === 404) throw new KaggleError('not-found', `${what}: not found on Kaggle (HTTP 404${detail})`);
    throw new KaggleError('refused', `${what}: HTTP ${res.status}${detail}`);
  }

  private async fetchOrFail(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, init);
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = (err as Error).name === 'TimeoutError' ? 'timed out' : (cause?.code ?? cause?.message ?? (err as Error).message);
      throw new KaggleError('unreachable', `Kaggle is unreachable at ${new URL(url).origin} (${why})`);
    }
  }
}

/** `: <message>` from Kaggle's JSON error body ({code, message}), or nothing. */
async function errorMessage(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { message?: unknown };
    return typeof body.message === 'string' && body.message ? `: ${body.message.slice(0, 200)}` : '';
  } catch {
    return '';
  }
}

/** The API as `env` (the process environment with .env over it) configures it; `verb` names who needs it when there are no credentials. */
export function openKaggle(env: NodeJS.ProcessEnv, verb: string): KaggleApi {
  const auth = findKaggleAuth(env);
  if (!auth) throw new UserError(`make ${verb}: no Kaggle credentials; set KAGGLE_USERNAME and KAGGLE_KEY in .env (kaggle.com → Settings → API → Create New Token)`);
  return new KaggleApi({ endpoint: kaggleEndpoint(env), auth });
}
