// Who may act. Reading needs nothing (the dashboard binds to loopback unless told otherwise);
// every POST needs, in this order: a Host that names this server (no DNS rebinding), an Origin
// equal to that host (no cross-site form), a session (the token from .env exchanged once for an
// HttpOnly SameSite=Strict cookie) and that session's CSRF token in the X-CSRF-Token header
// (a synchronizer token the page reads from /api/session, same-origin only: there is no CORS).
// Without SWITCHYARD_DASHBOARD_TOKEN in .env no session can be made: the dashboard is read-only.
// A session holds for the token it was made with (a token changed in .env ends every session)
// and for 12 hours from its sign-in, however much it is used. An address that sends ten wrong
// tokens in a minute is refused sign-ins until the minute is over.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { hostname, networkInterfaces } from 'node:os';
import type { NextFunction, Request, Response } from 'express';

export const TOKEN_KEY = 'SWITCHYARD_DASHBOARD_TOKEN';
const COOKIE = 'sy_session';
/** A session lasts a working day from its sign-in, used or not: a leaked cookie does not live on. */
export const SESSION_MAX_AGE_MS = 12 * 3600_000;
/** Where a sign-in may send the browser back to: a path of this server, never `//host` or `/\host`. */
export const NEXT_PATH = /^\/(?![/\\])[a-z0-9/_-]*$/i;

interface Session {
  id: string;
  csrf: string;
  /** a short, non-secret name for the ledger: who acted */
  who: string;
  /** the SHA-256 of the token it was made with: it holds only while .env has that token */
  token: Buffer;
  createdAt: number;
}

/** Wrong tokens one address may send in a minute before its sign-ins are refused: guessing a token takes forever. */
export const MAX_FAILED_SIGN_INS = 10;
const FAILED_SIGN_IN_WINDOW_MS = 60_000;

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time equality of two strings of any length (both hashed first). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

function cookieOf(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];
/** Addresses that keep the server on this machine (`make dashboard host=`). */
export const LOOPBACK_BINDS = new Set(['127.0.0.1', 'localhost', '::1']);
/** Addresses that listen on every interface of this machine. */
const WILDCARD_BINDS = new Set(['0.0.0.0', '::']);
/** What a browser needs to sign in: open to all, whatever the server binds to. */
const SIGN_IN_PATHS = /^\/(login|api\/session|static\/.*)$/;

export class Auth {
  private readonly sessions = new Map<string, Session>();
  /** client address → when its wrong tokens of the last minute came */
  private readonly failures = new Map<string, number[]>();

  /**
   * `token()`: the token as .env has it now (undefined: read-only). `hosts`: the names this server
   * answers to (loopback, and the bind address when it is another).
   */
  constructor(
    private readonly token: () => string | undefined,
    private readonly port: () => number,
    private readonly bindHost: string,
  ) {}

  get readOnly(): boolean {
    return !this.token();
  }

  /** The session the request carries, if it is live: made with the token .env has now, and young enough. */
  session(req: Request): Session | null {
    const id = cookieOf(req, COOKIE);
    const s = id ? this.sessions.get(id) : undefined;
    if (!s) return null;
    const token = this.token();
    if (!token || !timingSafeEqual(s.token, digest(token)) || Date.now() - s.createdAt > SESSION_MAX_AGE_MS) {
      this.sessions.delete(s.id);
      return null;
    }
    return s;
  }

  /** Whether the Host header names this server (an attacker's rebinding name does not). */
  hostAllowed(req: Request): boolean {
    const host = (req.headers.host ?? '').toLowerCase();
    const names = new Set([...LOOPBACK_NAMES, ...this.boundAs().map((a) => (a.includes(':') ? `[${a}]` : a))]);
    return [...names].some((n) => host === n || host === `${n}:${this.port()}`);
  }

  /**
   * The names this server answers to beyond loopback: the bind address, or, bound to every
   * interface (0.0.0.0, ::), each of this machine's addresses and its host name, as a visitor from
   * another machine types them. Read at each request: an address may come and go.
   */
  private boundAs(): string[] {
    if (!WILDCARD_BINDS.has(this.bindHost)) return [this.bindHost.toLowerCase()];
    const addresses = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address.toLowerCase()));
    return [this.bindHost, hostname().toLowerCase(), ...addresses];
  }

  /** Every request: a Host this server answers to (403 otherwise). */
  checkHost() {
    return (req: Request, res: Response, next: NextFunction) => {
      if (!this.hostAllowed(req)) return void res.status(403).type('text/plain').send('unknown Host header: open the dashboard as http://127.0.0.1:<port>/\n');
      next();
    };
  }

  /**
   * Every read, when the server listens beyond this machine: a session, as for acting (anyone who
   * can reach it could otherwise read every run, log and host). A page sends the browser to sign
   * in and back; an API answers 401. On loopback, reading needs nothing.
   */
  checkRead() {
    const open = LOOPBACK_BINDS.has(this.bindHost);
    return (req: Request, res: Response, next: NextFunction) => {
      if (open || (req.method !== 'GET' && req.method !== 'HEAD') || SIGN_IN_PATHS.test(req.path) || this.session(req)) return next();
      if (req.path.startsWith('/api/')) return void res.status(401).json({ error: 'not signed in: this dashboard listens beyond this machine, so reading needs a sign-in too' });
      res.redirect(303, `/login?next=${encodeURIComponent(req.path)}`);
    };
  }

  /** Every POST: same origin, then (except the login itself) a session and its CSRF token. */
  checkPost() {
    return (req: Request, res: Response, next: NextFunction) => {
      if (req.method !== 'POST') return next();
      const origin = req.headers.origin;
      if (!origin || origin !== `http://${req.headers.host}` && origin !== `https://${req.headers.host}`) {
        return void res.status(403).json({ error: 'cross-origin request refused' });
      }
      if (req.path === '/login') return next();
      if (this.readOnly) return void res.status(403).json({ error: `read-only: set ${TOKEN_KEY} in .env to act from the dashboard` });
      const s = this.session(req);
      if (!s) return void res.status(403).json({ error: 'not signed in' });
      const csrf = req.get('x-csrf-token');
      if (!csrf || !sameSecret(csrf, s.csrf)) return void res.status(403).json({ error: 'missing or wrong CSRF token' });
      res.locals.who = s.who;
      next();
    };
  }

  /** POST /login: the token from the form for a session cookie. */
  login(req: Request, res: Response): void {
    const expected = this.token();
    const given = typeof req.body?.token === 'string' ? req.body.token : '';
    if (!expected) return void res.status(403).type('text/plain').send(`read-only: ${TOKEN_KEY} is not set in .env\n`);
    // Checked before the token, and the right one refused too: otherwise guessing goes on unslowed.
    const from = req.socket.remoteAddress ?? '';
    if (this.recentFailures(from).length >= MAX_FAILED_SIGN_INS) {
      return void res.status(429).set('Retry-After', String(FAILED_SIGN_IN_WINDOW_MS / 1000)).type('text/plain').send('too many wrong tokens: try again in a minute\n');
    }
    if (!given || !sameSecret(given, expected)) {
      this.failures.set(from, [...this.recentFailures(from), Date.now()]);
      return void res.redirect(303, '/login?failed=1');
    }
    for (const [old, s] of this.sessions) if (Date.now() - s.createdAt > SESSION_MAX_AGE_MS) this.sessions.delete(old);
    const id = randomBytes(32).toString('base64url');
    const session: Session = { id, csrf: randomBytes(32).toString('base64url'), who: `session-${id.slice(0, 8)}`, token: digest(expected), createdAt: Date.now() };
    this.sessions.set(id, session);
    // Secure is left off: behind plain http on loopback it would stop the cookie; a tunnel that
    // terminates TLS still carries it (docs/architecture.md, the dashboard).
    res.setHeader('Set-Cookie', `${COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_MAX_AGE_MS / 1000}`);
    res.redirect(303, typeof req.body?.next === 'string' && NEXT_PATH.test(req.body.next) ? req.body.next : '/');
  }

  /** The times of `from`'s wrong tokens in the last minute (older ones, and addresses with none left, forgotten). */
  private recentFailures(from: string): number[] {
    const since = Date.now() - FAILED_SIGN_IN_WINDOW_MS;
    for (const [address, times] of this.failures) if (times.at(-1)! <= since) this.failures.delete(address);
    return (this.failures.get(from) ?? []).filter((t) => t > since);
  }

  logout(req: Request, res: Response): void {
    const id = cookieOf(req, COOKIE);
    if (id) this.sessions.delete(id);
    res.setHeader('Set-Cookie', `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`);
    res.json({ ok: true });
  }

  /** GET /api/session: what the page may do, and the CSRF token for its POSTs. */
  describe(req: Request): { readOnly: boolean; signedIn: boolean; csrf: string | null } {
    const s = this.session(req);
    return { readOnly: this.readOnly, signedIn: !!s, csrf: s?.csrf ?? null };
  }
}
