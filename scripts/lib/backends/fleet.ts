// An rsync + tmux fleet: a named, ordered group of SSH hosts that one sharded search spreads
// over, one runner per shard in its own tmux session. Each member host is driven exactly as
// the ssh backend drives a rented box; this file adds what a group needs: the shard → host
// placement, the project pushed to every host at once (bounded), and handles that remember
// which host holds an attempt. The supervision (re-queueing, the progress table) lives in
// runs/drive-fleet.ts.
import type { FleetEntry } from '../config/load-config.js';
import type { AttemptSpec } from '../runner/attempt-spec.js';
import type { Handle } from '../runs/run-record.js';
import { RepoPacks } from '../ssh/repo-tar.js';
import type { Backend, PollResult } from './backend.js';
import type { Prepared, SshBackend, SshHandle } from './ssh.js';

export interface FleetHandle extends Omit<SshHandle, 'backend'> {
  backend: 'fleet';
  fleet: string;
}

export interface FleetBackendOptions {
  name: string;
  config: FleetEntry;
  /** the ssh backend of one member host (opened once, on first use) */
  openMember: (host: string) => Promise<SshBackend>;
}

/** Shard i starts on hosts[i % hosts.length]: explicit, stable, printed before launch. */
export function planShards(count: number, hosts: readonly string[]): string[] {
  return Array.from({ length: count }, (_, i) => hosts[i % hosts.length]!);
}

/** Runs `task` over `items`, at most `limit` at a time; one item's failure does not stop the others. */
async function boundedAll<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) {
      results[i] = await task(items[i]!).then(
        (value) => ({ status: 'fulfilled', value }) as const,
        (reason: unknown) => ({ status: 'rejected', reason }) as const,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export class FleetBackend implements Backend {
  readonly name = 'fleet' as const;
  readonly capabilities = { gpus: true, spot: false, shards: true, multiNode: false };
  private readonly members = new Map<string, Promise<SshBackend>>();

  constructor(private readonly opts: FleetBackendOptions) {}

  get fleet(): string {
    return this.opts.name;
  }

  get config(): FleetEntry {
    return this.opts.config;
  }

  get hosts(): readonly string[] {
    return this.opts.config.hosts;
  }

  member(host: string): Promise<SshBackend> {
    let m = this.members.get(host);
    if (!m) {
      m = this.opts.openMember(host);
      this.members.set(host, m);
      m.catch(() => this.members.delete(host));
    }
    return m;
  }

  /**
   * Pushes the project and the runner to `hosts`, `sync_parallel` at a time. Each host's outcome
   * is reported as it lands; a host that fails does not hold up the others. Hosts whose copy of
   * the project is still empty are all filled from one tar of the project, packed once here.
   */
  async prepare(hosts: readonly string[], onDone: (host: string, outcome: Prepared | Error, ms: number) => void): Promise<Map<string, Error | null>> {
    const packs = new RepoPacks();
    const results = await boundedAll(hosts, this.config.sync_parallel, async (host) => {
      const started = Date.now();
      try {
        onDone(host, await (await this.member(host)).prepare({ packs }), Date.now() - started);
      } catch (err) {
        onDone(host, err as Error, Date.now() - started);
        throw err;
      }
    });
    return new Map(hosts.map((h, i) => [h, results[i]!.status === 'rejected' ? ((results[i] as PromiseRejectedResult).reason as Error) : null]));
  }

  /** Starts one attempt of a shard on a named host of the fleet. */
  async submitOn(host: string, spec: AttemptSpec): Promise<FleetHandle> {
    const handle = await (await this.member(host)).submit(spec);
    return { ...handle, backend: 'fleet', fleet: this.fleet };
  }

  /** A shard's attempt on its planned host (see planShards). */
  submit(spec: AttemptSpec): Promise<FleetHandle> {
    return this.submitOn(planShards(spec.shard_index + 1, this.hosts)[spec.shard_index]!, spec);
  }

  /** Whether the host answers over SSH right now. */
  async reachable(host: string): Promise<boolean> {
    try {
      const m = await this.member(host);
      return (await m.host.run(['true'], { allowFail: true, timeoutMs: m.host.target.connectTimeoutSec * 1000 + 5000 })).code === 0;
    } catch {
      return false;
    }
  }

  /** Gives `host` the committed checkpoints this machine holds for a shard that moves there. */
  async pushCheckpoints(host: string, unitId: string): Promise<void> {
    await (await this.member(host)).pushCheckpoints(unitId);
  }

  private async on(handle: Handle): Promise<{ m: SshBackend; h: SshHandle }> {
    const h = handle as unknown as SshHandle;
    return { m: await this.member(h.host), h };
  }

  async poll(handle: Handle): Promise<PollResult> {
    try {
      const { m, h } = await this.on(handle);
      return await m.poll(h);
    } catch (err) {
      return { state: 'lost', reason: (err as Error).message, exit_code: null, restored_step: null, last_step: null, metrics: null, events: [], unanswered: true };
    }
  }

  async cancel(handle: Handle, opts?: { force?: boolean }): Promise<void> {
    const { m, h } = await this.on(handle);
    await m.cancel(h, opts);
  }

  async *logs(handle: Handle, opts: { follow: boolean; stream?: 'stdout' | 'stderr' }): AsyncIterable<string> {
    const { m, h } = await this.on(handle);
    yield* m.logs(h, opts);
  }

  async pull(handle: Handle): Promise<void> {
    const { m, h } = await this.on(handle);
    await m.pull(h);
  }
}
