// make sync: pushes the project to a host (rsync delta transfer, one exclude list).
import type { Project } from '../project.js';
import { openRemoteHost } from '../remote/open-host.js';

export interface SyncResult {
  host: string;
  /** the project's folder on the host */
  repo: string;
  filesTransferred: number;
  bytesTransferred: number;
  ms: number;
}

export async function syncHost(project: Project, name: string | undefined, onProgress?: (bytes: number, percent: number) => void): Promise<SyncResult> {
  const host = await openRemoteHost(project, name);
  const t0 = Date.now();
  const r = await host.syncRepo(project.root, { onProgress });
  return { host: host.name, repo: host.layout.repo, filesTransferred: r.filesTransferred, bytesTransferred: r.bytesTransferred, ms: Date.now() - t0 };
}
