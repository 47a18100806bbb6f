// Secrets never reach a page: every value in .env (whatever its key) is masked in every body the
// dashboard sends, JSON, text, log stream and error alike. The masker is rebuilt when .env changes,
// so a key added while the dashboard runs is masked from the next response on.
import { statSync } from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import type { NextFunction, Request, Response } from 'express';
import { readDotEnv } from '../scripts/lib/secrets/dotenv.js';
import { Redactor } from '../scripts/lib/secrets/redact.js';

export class EnvSecrets {
  private redactor = new Redactor([]);
  private stamp = '';

  constructor(private readonly root: string) {}

  /** The masker for .env as it is now. */
  current(): Redactor {
    const file = path.join(this.root, '.env');
    let stamp = 'none';
    try {
      const s = statSync(file);
      stamp = `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch {
      // no .env: nothing to mask
    }
    if (stamp !== this.stamp) {
      this.redactor = new Redactor(Object.entries(readDotEnv(this.root)));
      this.stamp = stamp;
    }
    return this.redactor;
  }

  /** One value of .env (the dashboard token), read fresh. */
  value(key: string): string | undefined {
    return readDotEnv(this.root)[key] || undefined;
  }

  /**
   * `body` as JSON with every string in it masked, keys included. The strings, not the text:
   * a short value (PIN=1234) masked in the text would break a number (`"step":1234`) or a key.
   */
  json(body: unknown): string | undefined {
    const redactor = this.current();
    const plain = JSON.stringify(body);
    // Nothing to mask in the text (the usual case), nothing in any string: the redactor also
    // matches a value as JSON escapes it. Only a body holding a secret is serialised again.
    if (plain === undefined || redactor.text(plain) === plain) return plain;
    return JSON.stringify(body, (_key, value: unknown) => {
      if (typeof value === 'string') return redactor.text(value);
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
      const keys = Object.keys(value);
      if (keys.every((k) => redactor.text(k) === k)) return value;
      return Object.fromEntries(keys.map((k) => [redactor.text(k), (value as Record<string, unknown>)[k]]));
    });
  }

  /**
   * A stream that masks the bytes written through it with .env as it is now. A secret cut
   * between two chunks is masked whole: the redactor holds back what may begin one (at most one
   * secret long) until the next chunk, or the end, decides.
   */
  maskingStream(): Transform {
    return this.current().stream();
  }

  /** Middleware: res.json and res.send mask their bodies (streams mask through `current().pipe` or maskingStream). */
  middleware() {
    return (_req: Request, res: Response, next: NextFunction) => {
      const send = res.send.bind(res);
      res.json = (body: unknown) => {
        if (!res.get('Content-Type')) res.type('application/json');
        return send(this.json(body));
      };
      res.send = (body?: unknown) => send(typeof body === 'string' ? this.current().text(body) : Buffer.isBuffer(body) ? Buffer.from(this.current().text(body.toString('utf8'))) : body);
      next();
    };
  }
}
