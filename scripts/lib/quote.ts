// Quoting for a remote POSIX shell, and the validators that keep hostile host names and remote
// paths from ever reaching ssh, rsync or tmux. Validators run before any connection is made.
import { UserError } from './ui/errors.js';

/** Characters that need no quoting anywhere in a word (no `=`, so no word reads as VAR=value). */
const SAFE_WORD = /^[A-Za-z0-9_\/.,:@%+-]+$/;

/** One word, POSIX single-quoted unless it is plainly safe. */
export function quoteWord(word: string): string {
  if (word.includes('\0')) throw new UserError(`cannot pass ${JSON.stringify(word)} to a shell: it contains a NUL byte`);
  if (SAFE_WORD.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A command line a remote `sh -c` splits back into exactly `argv`: no expansion, globbing or redirection. */
export function shellQuote(argv: readonly string[]): string {
  return argv.map(quoteWord).join(' ');
}

/** The first character outside `allowed`, described for an error message. */
function firstBadChar(value: string, allowed: RegExp): string | undefined {
  for (const ch of value) {
    if (!allowed.test(ch)) {
      if (ch === ' ') return 'a space';
      if (ch === '\n' || ch === '\r') return 'a newline';
      if (ch === '\t') return 'a tab';
      const code = ch.codePointAt(0) ?? 0;
      return code < 0x20 || code === 0x7f ? `a control character (U+${code.toString(16).padStart(4, '0')})` : `"${ch}"`;
    }
  }
  return undefined;
}

function reject(kind: string, value: string, problem: string, rule: string): never {
  throw new UserError(`invalid ${kind} ${JSON.stringify(value)}: ${problem}; ${rule}`);
}

const HOST_RULE = 'a host name or address uses letters, digits, ".", "-" and "_" and starts with a letter or digit';

/** Throws a one-line UserError unless `name` is a plain host name, IPv4 address or ssh alias. */
export function checkHostName(name: string): string {
  if (name === '') reject('host name', name, 'it is empty', HOST_RULE);
  const bad = firstBadChar(name, /[A-Za-z0-9._-]/);
  if (bad) reject('host name', name, `${bad} is not allowed`, HOST_RULE);
  if (!/^[A-Za-z0-9]/.test(name)) reject('host name', name, `it starts with "${name[0]}"`, HOST_RULE);
  if (name.includes('..')) reject('host name', name, 'it contains ".."', HOST_RULE);
  if (name.length > 253) reject('host name', name, 'it is longer than 253 characters', HOST_RULE);
  return name;
}

const USER_RULE = 'a user name uses letters, digits, ".", "-" and "_" and starts with a letter, digit or "_"';

/** Throws a one-line UserError unless `user` is a plain login name. */
export function checkUserName(user: string): string {
  const bad = firstBadChar(user, /[A-Za-z0-9._-]/);
  if (user === '') reject('user name', user, 'it is empty', USER_RULE);
  if (bad) reject('user name', user, `${bad} is not allowed`, USER_RULE);
  if (!/^[A-Za-z0-9_]/.test(user)) reject('user name', user, `it starts with "${user[0]}"`, USER_RULE);
  return user;
}

const PATH_RULE =
  'a remote path uses letters, digits and . _ - + , @ % =, separated by "/", absolute or relative to the remote home';

/** Throws a one-line UserError unless `p` is a remote path that is safe unquoted in ssh, rsync and tmux. */
export function checkRemotePath(p: string): string {
  if (p === '') reject('remote path', p, 'it is empty', PATH_RULE);
  if (p.startsWith('~')) reject('remote path', p, '"~" is not expanded', `${PATH_RULE} (write "${p.replace(/^~\/?/, '') || '.'}")`);
  const bad = firstBadChar(p, /[A-Za-z0-9._\/+,@%=-]/);
  if (bad) reject('remote path', p, `${bad} is not allowed`, PATH_RULE);
  if (p.startsWith('-')) reject('remote path', p, 'it starts with "-" and would read as an option', PATH_RULE);
  if (p.split('/').includes('..')) reject('remote path', p, 'it has a ".." segment', PATH_RULE);
  return p;
}

const NAME_RULE = 'use letters, digits, "-" and "_", starting with a letter or digit';

/** Throws unless `name` is a short identifier (tmux session and socket names). */
export function checkSimpleName(kind: string, name: string): string {
  const bad = firstBadChar(name, /[A-Za-z0-9_-]/);
  if (name === '') reject(kind, name, 'it is empty', NAME_RULE);
  if (bad) reject(kind, name, `${bad} is not allowed`, NAME_RULE);
  if (!/^[A-Za-z0-9]/.test(name)) reject(kind, name, `it starts with "${name[0]}"`, NAME_RULE);
  if (name.length > 100) reject(kind, name, 'it is longer than 100 characters', NAME_RULE);
  return name;
}
