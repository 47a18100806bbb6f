// The hosts page's data: every inventory host as the watcher last probed it (on a timer, through
// the pooled ssh connections; a dead host is down within its connect timeout and holds up
// nothing), its utilisation timeline, and the runs placed there with what they cost; and the
// agent's health (make agent), as make status says it.
import { Router } from 'express';
import type { Project } from '../../scripts/lib/project.js';
import { describeAgent, lookAtAgent } from '../../scripts/lib/agent/agent-lock.js';
import { agentHome } from '../../scripts/lib/agent/home.js';
import { HostWatch } from '../../scripts/lib/probe/index.js';
import type { RunsCache } from '../runs-view.js';

/** The watcher over the inventory, started; null when there are no hosts. */
export function startHostWatch(project: Project, intervalMs = Number(process.env.SWITCHYARD_PROBE_INTERVAL_MS) || 5000): HostWatch | null {
  if (!Object.keys(project.config.hosts).length) return null;
  const watch = new HostWatch(project, { intervalMs });
  watch.start();
  return watch;
}

const LIVE = new Set(['running', 'pending', 'unreachable']);

export function hostsRoutes(project: Project, watch: HostWatch | null, runs: RunsCache): Router {
  const r = Router();
  r.get('/api/hosts', async (_req, res) => {
    const rows = runs.costed((await runs.rows()).filter((row) => LIVE.has(row.state) && row.hosts.length));
    const names = Object.keys(project.config.hosts);
    const views = new Map((watch?.snapshot() ?? []).map((v) => [v.latest.host, v]));
    const agent = await lookAtAgent(agentHome(project));
    res.json({
      // the agent that carries runs no shell follows: running, silent (stale) or stopped
      agent: { state: agent.state, line: describeAgent(agent), heartbeat_at: agent.info?.heartbeat_at ?? null },
      interval_ms: watch ? Number(process.env.SWITCHYARD_PROBE_INTERVAL_MS) || 5000 : null,
      hosts: names.map((name) => {
        const entry = project.config.hosts[name]!;
        const view = views.get(name);
        return {
          name,
          address: `${entry.user ? `${entry.user}@` : ''}${entry.host}:${entry.port}`,
          fleets: Object.entries(project.config.fleets).filter(([, f]) => f.hosts.includes(name)).map(([f]) => f),
          connect_timeout_sec: entry.connect_timeout,
          price_per_hour: entry.price_per_hour ?? null,
          health: view?.latest ?? null,
          history: view?.history ?? [],
          runs: rows
            .filter((row) => row.hosts.includes(name))
            .map((row) => ({ run_id: row.run_id, experiment: row.experiment, state: row.state, cost: row.cost })),
        };
      }),
    });
  });
  return r;
}
