// Calls of one fixed login-node script made in the same turn of the event loop go as one call:
// each adds its arguments after the shared leading ones, and all share its outcome. A stop of a
// run asks every unit's job in one turn; gathered, a thousand units are a round trip or two and
// no sshd session each on a login node that other users share.
import type { LoginNode, ShResult } from './login-node.js';
import { argBytes } from './scripts.js';

/**
 * The most bytes of arguments one call gathers. A call may take a channel of its own, whose
 * command is a single argument of the host's shell (128 KiB at most on Linux): past this, the
 * turn's calls make a second one.
 */
export const GATHERED_ARGS_MAX = 64 * 1024;

interface Gathering {
  args: string[];
  bytes: number;
  result: Promise<ShResult>;
}

export class GatheredCalls {
  private readonly open = new Map<string, Gathering>();

  constructor(private readonly login: Pick<LoginNode, 'sh'>) {}

  /** Runs `script` with `lead` then the arguments of every call gathered with it; never throws for an exit code. */
  call(script: string, lead: readonly string[], args: readonly string[]): Promise<ShResult> {
    const key = JSON.stringify([script, lead]);
    const bytes = argBytes(args);
    let g = this.open.get(key);
    if (!g || (g.args.length > lead.length && g.bytes + bytes > GATHERED_ARGS_MAX)) {
      const gathered: string[] = [...lead];
      // Sent once the turn's other calls have added theirs; a later one starts a new gathering.
      const result = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        if (this.open.get(key)?.args === gathered) this.open.delete(key);
        return this.login.sh(script, gathered, { allowFail: true });
      });
      g = { args: gathered, bytes: 0, result };
      this.open.set(key, g);
    }
    g.args.push(...args);
    g.bytes += bytes;
    return g.result;
  }
}
