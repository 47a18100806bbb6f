// Remote files (log tails, status files) read over SFTP on the host's pooled connection: the
// session is a channel of the connection the probes already hold, driven by ssh2-sftp-client,
// so a read costs no handshake and no remote process.
import type { Client, SFTPWrapper } from 'ssh2';
import type SftpClient from 'ssh2-sftp-client';
import { openRemoteHost } from '../remote/open-host.js';
import { CALL_TIMEOUT_MS, type RemoteHost } from '../remote/remote-host.js';
import { UserError } from '../ui/errors.js';
import { formatBytes } from '../ui/format.js';
import type { Workspace } from '../workspace.js';

/** A read without tailBytes takes the whole file, up to this. */
export const WHOLE_FILE_LIMIT = 16 * 1024 * 1024;

const quiet = { error: () => {}, end: () => {}, close: () => {} };

/**
 * An ssh2-sftp-client on an SFTP session already open on a pooled connection. It never owns the
 * connection: `end()` (which would close it for every other caller) is never called.
 */
async function adopt(sftp: SFTPWrapper, client: Client): Promise<SftpClient> {
  const { default: Sftp } = await import('ssh2-sftp-client');
  const adopted = new Sftp('switchyard', quiet);
  Object.assign(adopted, { client, sftp });
  return adopted;
}

/**
 * The file at `remotePath` (relative paths from the login directory), or its last `tailBytes`
 * bytes. A missing file or a failure is a one-line error naming the host and the path.
 */
export async function readRemoteFile(project: Pick<Workspace, 'config'>, host: string, remotePath: string, opts: { tailBytes?: number } = {}): Promise<Buffer> {
  if (opts.tailBytes !== undefined && !(Number.isInteger(opts.tailBytes) && opts.tailBytes >= 0)) {
    throw new UserError(`readRemoteFile: tailBytes must be a whole number of bytes, not ${opts.tailBytes}`);
  }
  return readFileOnHost(await openRemoteHost(project, host), remotePath, opts);
}

/** readRemoteFile on a host already open (a backend's); `timeoutMs` bounds the read (default CALL_TIMEOUT_MS). */
export async function readFileOnHost(remote: RemoteHost, remotePath: string, opts: { tailBytes?: number; timeoutMs?: number } = {}): Promise<Buffer> {
  const host = remote.name;
  return remote.pool.sftp(
    remote.target,
    async (session, client) => {
      const sftp = await adopt(session, client);
      try {
        const { size } = await sftp.stat(remotePath);
        const start = opts.tailBytes === undefined ? 0 : Math.max(0, size - opts.tailBytes);
        if (opts.tailBytes === undefined && size > WHOLE_FILE_LIMIT) {
          throw new UserError(`ssh ${host}: ${remotePath} is ${formatBytes(size)}; read its tail (tailBytes) instead of the whole file`);
        }
        if (size === start) return Buffer.alloc(0);
        // (ssh2's read stream takes start/end; the client's types leave them out)
        return (await sftp.get(remotePath, undefined, { readStreamOptions: { start, end: size - 1 } as SftpClient.ReadStreamOptions })) as Buffer;
      } catch (err) {
        if (err instanceof UserError) throw err;
        throw new UserError(`ssh ${host}: cannot read ${remotePath} over SFTP: ${(err as Error).message.replace(/^[\w>-]+: /, '')}`);
      }
    },
    { timeoutMs: opts.timeoutMs ?? CALL_TIMEOUT_MS },
  );
}
