// Hosts probed on a timer for a live view: each tick starts a probe of every host whose previous
// probe has finished (a slow or dead host skips ticks instead of piling probes up, and never
// delays the others), and keeps a bounded history per host for a utilisation timeline.
import type { Workspace } from '../workspace.js';
import { probeHost, type HostHealth } from './probe-hosts.js';

export interface HostPoint {
  /** ms since the epoch, when the probe started */
  t: number;
  /** the mean utilisation of the host's GPUs that report one; null without any */
  utilPct: number | null;
  load1: number | null;
}

export interface HostView {
  latest: HostHealth;
  history: HostPoint[];
}

export interface HostWatchOptions {
  /** ms between ticks (default 5000) */
  intervalMs?: number;
  /** points kept per host (default 720: an hour at 5 s) */
  historyLength?: number;
  /** the hosts watched (default: the whole inventory) */
  hosts?: readonly string[];
}

/** The mean of the GPUs' utilisation that is known, or null. */
export function meanUtil(h: HostHealth): number | null {
  const known = h.gpus.map((g) => g.utilPct).filter((u): u is number => u !== null);
  return known.length ? known.reduce((a, b) => a + b, 0) / known.length : null;
}

export class HostWatch {
  private readonly intervalMs: number;
  private readonly historyLength: number;
  private readonly names: readonly string[];
  private readonly views = new Map<string, HostView>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly roundListeners = new Set<(hosts: HostHealth[]) => void>();
  private readonly hostListeners = new Set<(host: HostHealth) => void>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    private readonly project: Pick<Workspace, 'config'>,
    opts: HostWatchOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 5000;
    this.historyLength = opts.historyLength ?? 720;
    this.names = opts.hosts ?? Object.keys(project.config.hosts);
  }

  /** Probes now, then every intervalMs until stop(). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.tick();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** No new probes; resolves once the ones in flight have ended (each within its host's deadline). */
  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all(this.inFlight.values());
  }

  /** Every host probed so far, in inventory order, with its history (oldest first). */
  snapshot(): HostView[] {
    return this.names.flatMap((n) => {
      const v = this.views.get(n);
      return v ? [{ latest: v.latest, history: [...v.history] }] : [];
    });
  }

  /** Called with every probed host's latest state once the probes a tick started have all ended. */
  onRound(fn: (hosts: HostHealth[]) => void): () => void {
    this.roundListeners.add(fn);
    return () => this.roundListeners.delete(fn);
  }

  /** Called with each host's state as soon as its probe ends. */
  onHost(fn: (host: HostHealth) => void): () => void {
    this.hostListeners.add(fn);
    return () => this.hostListeners.delete(fn);
  }

  private tick(): void {
    const started = this.names.filter((n) => !this.inFlight.has(n)).map((n) => this.probe(n));
    if (!started.length) return;
    void Promise.all(started).then(() => {
      const hosts = this.snapshot().map((v) => v.latest);
      for (const fn of this.roundListeners) fn(hosts);
    });
  }

  private probe(name: string): Promise<void> {
    const work = probeHost(this.project, name).then((h) => {
      this.record(h);
      for (const fn of this.hostListeners) fn(h);
    }).finally(() => this.inFlight.delete(name));
    this.inFlight.set(name, work);
    return work;
  }

  private record(h: HostHealth): void {
    const view = this.views.get(h.host) ?? { latest: h, history: [] };
    view.latest = h;
    view.history.push({ t: Date.parse(h.probedAt), utilPct: meanUtil(h), load1: h.load1 });
    if (view.history.length > this.historyLength) view.history.splice(0, view.history.length - this.historyLength);
    this.views.set(h.host, view);
  }
}
