// The programs this machine needs: Node (running this), git, python3, and rsync where runs go to
// ssh hosts (the project is pushed with it). tmux is needed on the hosts, not here.
import { NODE_MIN, nodeFits } from '../node-version.js';
import { run } from '../proc.js';
import { fail, pass, type Check, type Finding } from './row.js';

const TIMEOUT_MS = 5_000;

interface Tool {
  name: string;
  argv: string[];
  fix: string;
  required: boolean;
}

async function probe(tool: Tool): Promise<Finding> {
  const r = await run(tool.argv, { allowFail: true, timeout: TIMEOUT_MS - 500 }).catch((err: NodeJS.ErrnoException) => ({ code: -1, stdout: Buffer.from(''), stderr: err.code ?? err.message }));
  if (r.code !== 0) return fail(tool.name, r.stderr === 'ENOENT' ? 'not installed' : `${tool.argv.join(' ')} exited ${r.code}`, tool.fix);
  const version = (r.stdout.toString() + r.stderr).split('\n')[0]!.trim();
  return pass(tool.name, version);
}

function nodeCheck(): Check {
  return {
    group: 'tools',
    name: 'node',
    required: true,
    timeoutMs: TIMEOUT_MS,
    run: async () => {
      return [nodeFits(process.version) ? pass('node', process.version) : fail('node', `${process.version}: older than ${NODE_MIN}`, `install Node.js ${NODE_MIN} or newer (https://nodejs.org)`)];
    },
  };
}

/** `remote`: hosts, fleets or clusters over ssh are configured, so rsync is needed here. */
export function toolChecks(opts: { remote: boolean }): Check[] {
  const tools: Tool[] = [
    { name: 'git', argv: ['git', '--version'], fix: 'apt-get install -y git', required: true },
    { name: 'python3', argv: ['python3', '--version'], fix: 'apt-get install -y python3', required: true },
    { name: 'rsync', argv: ['rsync', '--version'], fix: 'apt-get install -y rsync', required: opts.remote },
    { name: 'tmux', argv: ['tmux', '-V'], fix: 'apt-get install -y tmux (runs use it on the hosts; here only to follow them by hand)', required: false },
  ];
  return [
    nodeCheck(),
    ...tools.map((tool): Check => ({ group: 'tools', name: tool.name, required: tool.required, timeoutMs: TIMEOUT_MS, run: async () => [await probe(tool)] })),
  ];
}
