// Where the agent keeps its few files: its lock and heartbeat (`agent.json`), the runs asked of
// it (`runs/<id>.json`) and the requests sent to it (`requests/`). Two homes, chosen by the
// inventory's `agent.home`:
//   local  `.switchyard/agent/` on this machine: one agent per state folder, carrying the runs
//          launched from it (the default);
//   store  `agent/` in the store: one agent per store, on any machine that has the repository
//          and the store, so an always-on host carries the runs a laptop launched and slept on.
// Names are relative POSIX paths; every write replaces a file whole.
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Workspace } from '../workspace.js';
import { writeFileAtomically } from '../store/atomic-file.js';

export interface AgentHome {
  readonly kind: 'local' | 'store';
  /** where it is, for people: a folder or a store URL */
  readonly location: string;
  /** how long a silent agent or shell is trusted before another takes its place */
  readonly staleMs: number;
  read(name: string): Promise<string | null>;
  write(name: string, text: string, opts?: { durable?: boolean }): Promise<void>;
  remove(name: string): Promise<void>;
  /** the names of the files directly in `dir`, sorted */
  list(dir: string): Promise<string[]>;
}

/** The agent's folder on this machine: its log lives there whatever the home. */
export const agentDir = (stateDir: string) => path.join(stateDir, 'agent');

export function agentHome(ws: Pick<Workspace, 'stateDir' | 'store' | 'config'>): AgentHome {
  const staleMs = ws.config.agent.stale_after_sec * 1000;
  return ws.config.agent.home === 'store' ? storeHome(ws.store, staleMs) : folderHome(agentDir(ws.stateDir), staleMs);
}

function folderHome(root: string, staleMs: number): AgentHome {
  const at = (name: string) => path.join(root, name);
  return {
    kind: 'local',
    location: root,
    staleMs,
    read: (name) => readFile(at(name), 'utf8').catch(() => null),
    async write(name, text, opts) {
      await mkdir(path.dirname(at(name)), { recursive: true });
      await writeFileAtomically(at(name), text, opts);
    },
    remove: (name) => rm(at(name), { force: true }),
    list: async (dir) => (await readdir(at(dir)).catch(() => [])).sort(),
  };
}

function storeHome(store: Workspace['store'], staleMs: number): AgentHome {
  const key = (name: string) => `agent/${name}`;
  return {
    kind: 'store',
    location: store.locate('agent/'),
    staleMs,
    read: async (name) => (await store.getBytes(key(name)))?.toString('utf8') ?? null,
    write: async (name, text) => void (await store.putBytes(key(name), text)),
    remove: (name) => store.delete(key(name)),
    list: async (dir) => (await store.list(key(`${dir}/`))).map((k) => k.slice(key(`${dir}/`).length)).filter((n) => n && !n.includes('/')),
  };
}
