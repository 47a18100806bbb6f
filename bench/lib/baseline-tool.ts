// A baseline a bench measures beside Switchyard: a command, installed with apt-get when it is
// missing. A bench whose baseline cannot be had fails, saying why: no comparison drops out
// silently.
import { spawnSync } from 'node:child_process';

function versionOf(cmd: string): string | null {
  const r = spawnSync(cmd, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? ((r.stdout || r.stderr).split('\n')[0] ?? '').trim() : null;
}

/** The tool's version line, after installing `pkg` if `cmd` is missing; throws naming why it could not be had. */
export function requireTool(cmd: string, pkg = cmd): string {
  const had = versionOf(cmd);
  if (had) return had;
  process.stdout.write(`${cmd}, a baseline, is missing: apt-get install -y ${pkg} ...\n`);
  const apt = (args: string[]) => spawnSync('apt-get', args, { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  let r = apt(['install', '-y', '-q', pkg]);
  if (r.status !== 0) {
    apt(['update', '-q']); // a fresh machine's package lists may be empty
    r = apt(['install', '-y', '-q', pkg]);
  }
  const got = versionOf(cmd);
  if (got) return got;
  const why = r.error ? r.error.message : ((r.stderr || r.stdout).trim().split('\n').at(-1) ?? `exit ${r.status}`);
  throw new Error(`${cmd} is missing and apt-get install -y ${pkg} did not install it (${why}); install it by hand: every comparison must run`);
}
