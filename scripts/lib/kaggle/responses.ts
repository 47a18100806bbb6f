// What Kaggle's competition API answers, read into plain values. The API's JSON is camelCase;
// a list comes as an object with a named array (kagglesdk's responses: `{ competitions }`,
// `{ files }`, `{ submissions }`) or, from older servers, as the bare array: both are read.
// Scores arrive as strings ("0.77511", or "" before scoring), the status as a name in any case
// with or without its enum prefix, or as the enum's number.
import { KaggleResponseError, shapeOf } from './errors.js';
import type { KaggleStatus } from './submission-record.js';

export interface KaggleCompetition {
  slug: string;
  title: string;
  url: string | null;
  deadline: string | null;
  metric: string | null;
  category: string | null;
  reward: string | null;
  maxDailySubmissions: number | null;
  submissionsDisabled: boolean;
}

export interface KaggleDataFile {
  name: string;
  size: number;
}

export interface KaggleSubmission {
  ref: string;
  date: string | null;
  description: string | null;
  fileName: string | null;
  status: KaggleStatus;
  publicScore: number | null;
  privateScore: number | null;
  error: string | null;
}

type Json = Record<string, unknown>;

function listIn(body: unknown, field: string): Json[] {
  const noList = (got: string) => new KaggleResponseError(`Kaggle's answer has no ${field} list: expected { ${field}: [...] }, got ${got}`);
  if (!Array.isArray(body) && (!body || typeof body !== 'object')) throw noList(shapeOf(body));
  const list = Array.isArray(body) ? body : (body as Json)[field];
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw noList(`an object whose ${field} is ${shapeOf(list)}`);
  return list.filter((x): x is Json => !!x && typeof x === 'object');
}

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** "0.77511" → 0.77511; "", null, "None" → null. */
export function parseScore(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v !== 'string' || v.trim() === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

const STATUS_NUMBERS: KaggleStatus[] = ['pending', 'complete', 'error'];

export function parseStatus(v: unknown): KaggleStatus {
  if (typeof v === 'number') return STATUS_NUMBERS[v] ?? 'pending';
  const name = String(v ?? '').toLowerCase().replace(/^submission_status_/, '');
  return name === 'complete' || name === 'error' ? name : 'pending';
}

/** A competition's slug from its ref, which is the slug or its URL (…/competitions/<slug>). */
export function slugOfRef(ref: string): string {
  return ref.replace(/\/+$/, '').split('/').at(-1)!;
}

export function parseCompetitions(body: unknown): KaggleCompetition[] {
  return listIn(body, 'competitions').map((c) => ({
    slug: slugOfRef(str(c.ref) ?? ''),
    title: str(c.title) ?? slugOfRef(str(c.ref) ?? ''),
    url: str(c.url) ?? (str(c.ref)?.startsWith('http') ? str(c.ref) : null),
    deadline: str(c.deadline),
    metric: str(c.evaluationMetric),
    category: str(c.category),
    reward: str(c.reward),
    maxDailySubmissions: num(c.maxDailySubmissions),
    submissionsDisabled: c.submissionsDisabled === true,
  }));
}

export function parseDataFiles(body: unknown): { files: KaggleDataFile[]; nextPageToken: string | null } {
  const files = listIn(body, 'files').map((f) => ({ name: str(f.name) ?? str(f.ref) ?? '', size: num(f.totalBytes) ?? 0 })).filter((f) => f.name);
  const next = !Array.isArray(body) && body && typeof body === 'object' ? str((body as Json).nextPageToken) : null;
  return { files, nextPageToken: next };
}

export function parseSubmissions(body: unknown): KaggleSubmission[] {
  return listIn(body, 'submissions').map((s) => ({
    ref: str(s.ref) ?? '',
    date: str(s.date),
    description: str(s.description),
    fileName: str(s.fileName),
    status: parseStatus(s.status),
    publicScore: parseScore(s.publicScore),
    privateScore: parseScore(s.privateScore),
    error: str(s.errorDescription),
  }));
}

/** The answer to a submission upload's start: where to PUT the bytes, and the token naming them. */
export function parseUploadStart(body: unknown): { token: string; createUrl: string } {
  const b = (body && typeof body === 'object' ? body : {}) as Json;
  const token = str(b.token);
  const createUrl = str(b.createUrl);
  if (token && createUrl) return { token, createUrl };
  const got = shapeOf(body) === 'an object' ? `an object without ${token ? 'createUrl' : createUrl ? 'token' : 'either'}` : shapeOf(body);
  throw new KaggleResponseError(`Kaggle gave no upload URL for the submission: expected { token, createUrl }, got ${got}`);
}

/** The created submission: its ref (0 or absent when Kaggle does not say) and Kaggle's message. */
export function parseCreated(body: unknown): { ref: string | null; message: string } {
  const b = (body ?? {}) as Json;
  const ref = str(b.ref);
  return { ref: ref && ref !== '0' ? ref : null, message: str(b.message) ?? '' };
}
