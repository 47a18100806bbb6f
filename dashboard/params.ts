// Path and query parameters, checked against the grammars the rest of Switchyard writes: a run
// id, a competition slug, a host name. Anything else (`../`, a slash, a NUL) is a 400 before it
// reaches the store, the file system or a remote host.
import type { NextFunction, Request, Response } from 'express';

/** `<slug>-<name>-<yyyymmdd>T<hhmm>-<digest8>` (and the `-2`, `-3` a same-minute twin gets) */
export const RUN_ID = /^[a-z0-9][A-Za-z0-9_-]{0,200}$/;
/** competition slugs and experiment names (NAME_RE of the spec) */
export const SLUG = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** inventory host names */
export const HOST = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** `<slug>` or `<slug>/<name>` */
export const EXPERIMENT = /^[a-z0-9][a-z0-9_-]{0,63}(\/[a-z0-9][a-z0-9_-]{0,63})?$/;

export class BadRequest extends Error {}

/** An express `router.param` handler that answers 400 for a value outside `grammar`. */
export function checkParam(grammar: RegExp, what: string) {
  return (_req: Request, res: Response, next: NextFunction, value: string) => {
    if (typeof value !== 'string' || !grammar.test(value)) {
      res.status(400).json({ error: `${what}: ${JSON.stringify(String(value).slice(0, 80))} is not a valid ${what}` });
      return;
    }
    next();
  };
}

/** An optional query value: undefined when absent, else it must match `grammar` (BadRequest otherwise). */
export function queryValue(req: Request, key: string, grammar: RegExp): string | undefined {
  const v = req.query[key];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string' || !grammar.test(v)) throw new BadRequest(`${key}: ${JSON.stringify(String(v).slice(0, 80))} is not valid`);
  return v;
}

/** An optional non-negative integer query value. */
export function queryInt(req: Request, key: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = queryValue(req, key, /^\d{1,15}$/);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (n > max) throw new BadRequest(`${key}: ${n} is more than ${max}`);
  return n;
}
