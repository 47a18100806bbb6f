// Pure renderers for the remote tmux commands of fleet launches: argv in, argv out, no I/O.
// Every argv is meant for SshPool.exec (which shell-quotes it); names and paths are validated here.
import { UserError } from '../ui/errors.js';
import { checkRemotePath, checkSimpleName, shellQuote } from '../quote.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function base(socketName: string): string[] {
  return ['tmux', '-L', checkSimpleName('tmux socket name', socketName)];
}

/** `=name` makes tmux match the session name exactly instead of by prefix. */
function exactTarget(session: string): string {
  return `=${checkSimpleName('tmux session name', session)}`;
}

function envFlags(env: Readonly<Record<string, string>>): string[] {
  return Object.entries(env).flatMap(([key, value]) => {
    if (!ENV_NAME.test(key)) throw new UserError(`invalid environment variable name ${JSON.stringify(key)}: use letters, digits and "_", not starting with a digit`);
    if (value.includes('\0')) throw new UserError(`environment variable ${key} contains a NUL byte`);
    return ['-e', `${key}=${value}`];
  });
}

/**
 * A detached session running exactly `argv` in `cwd` with `env` added. The command is one
 * `cd <cwd> && exec <quoted argv>` string: every tmux version and login shell runs the same argv,
 * a relative cwd is relative to the login directory, and a missing cwd fails instead of tmux
 * silently starting elsewhere (which `-c` does).
 */
export function tmuxNewSession(
  socketName: string,
  session: string,
  cwd: string,
  argv: readonly string[],
  env: Readonly<Record<string, string>> = {},
): string[] {
  checkSimpleName('tmux session name', session);
  return [...base(socketName), 'new-session', '-d', '-s', session, ...envFlags(env), tmuxSessionCommand(session, cwd, argv)];
}

/** The command line a session of tmuxNewSession runs: `cd <cwd> && exec <quoted argv>`. */
export function tmuxSessionCommand(session: string, cwd: string, argv: readonly string[]): string {
  if (argv.length === 0) throw new UserError(`tmux session ${session}: no command to run`);
  return `cd ${shellQuote([checkRemotePath(cwd)])} && exec ${shellQuote(argv)}`;
}

/** Exits 0 when the session exists, 1 when it does not (or no server runs on the socket). */
export function tmuxHasSession(socketName: string, session: string): string[] {
  return [...base(socketName), 'has-session', '-t', exactTarget(session)];
}

export function tmuxKillSession(socketName: string, session: string): string[] {
  return [...base(socketName), 'kill-session', '-t', exactTarget(session)];
}
