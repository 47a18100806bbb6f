// What goes wrong talking to Kaggle, as one line each (UserErrors: no stack), never with a
// secret in it: a refusal or failure of a request, and an answer of a shape we do not read.
import { UserError } from '../ui/errors.js';

export type KaggleFailure = 'unreachable' | 'auth' | 'not-found' | 'refused';

/** One line saying what Kaggle (or the way to it) answered; `kind` lets callers fall back. */
export class KaggleError extends UserError {
  constructor(
    readonly kind: KaggleFailure,
    message: string,
  ) {
    super(message);
    this.name = 'KaggleError';
  }
}

/**
 * An answer Kaggle gave in a shape Switchyard does not read: what was expected and what came,
 * by its shape only (its values could hold anything). The client adds the request's name.
 */
export class KaggleResponseError extends KaggleError {
  constructor(message: string) {
    super('refused', message);
    this.name = 'KaggleResponseError';
  }
}

/** What a JSON value is, without its contents: `a string`, `a list`, `null`, ... */
export function shapeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}
