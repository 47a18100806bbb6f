// Calls of one fixed login-node script made in the same turn of the event loop go as one call:
// each adds its arguments after the shared leading ones, and all share its outcome. A stop of a
// run asks every unit's job in one turn; gathered, a thousand units are one round trip and no
// sshd session each on a login node that other users share.
import type { LoginNode, ShResult } from './login-node.js';

interface Gathering {
  args: string[];
  result: Promise<ShResult>;
}

export class GatheredCalls {
  private readonly open = new Map<string, Gathering>();

  constructor(private readonly login: Pick<LoginNode, 'sh'>) {}

  /** Runs `script` with `lead` then the arguments of every call gathered with it; never throws for an exit code. */
  call(script: string, lead: readonly string[], args: readonly string[]): Promise<ShResult> {
    const key = JSON.stringify([script, lead]);
    let g = this.open.get(key);
    if (!g) {
      const gathered = [...lead];
      // Sent once the turn's other calls have added theirs; a later one starts a new gathering.
      const result = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.open.delete(key);
        return this.login.sh(script, gathered, { allowFail: true });
      });
      g = { args: gathered, result };
      this.open.set(key, g);
    }
    g.args.push(...args);
    return g.result;
  }
}
