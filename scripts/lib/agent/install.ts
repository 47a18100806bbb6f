// Keeping the agent running across logins and reboots: a systemd user unit where systemd runs
// for this user, else a tmux session that restarts the agent when it exits. Both start
// `node dist/scripts/agent.js` in the project root; the unit's KillMode=process leaves the
// attempts' runners (processes of their own) running when the agent restarts, so the next
// one re-attaches. Names carry a hash of the root, so two clones keep two agents.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sha256Hex } from '../hash.js';
import { run } from '../proc.js';
import { agentDir } from './home.js';
import { UserError } from '../ui/errors.js';

export const agentName = (root: string) => `switchyard-agent-${sha256Hex(root).slice(0, 8)}`;
const unitPath = (root: string) => path.join(os.homedir(), '.config', 'systemd', 'user', `${agentName(root)}.service`);

// systemd expands %-specifiers in every value below, and $VARIABLES in ExecStart, whose words it
// splits on spaces unless quoted: a project path with a space, % or $ must be escaped to mean itself.
const specifiersEscaped = (text: string) => text.replace(/%/g, '%%');
const execWord = (word: string) => `"${specifiersEscaped(word.replace(/[\\"]/g, '\\$&')).replace(/\$/g, '$$$$')}"`;

/** The systemd user unit that runs the agent of the project at `root`. */
export function systemdUnit(root: string, node: string): string {
  if (/[\n\r]/.test(root + node)) throw new UserError(`agent: the project path ${JSON.stringify(root)} holds a line break, which a systemd unit cannot name: move the project`);
  return [
    '[Unit]',
    `Description=Switchyard agent for ${specifiersEscaped(root)}`,
    'After=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `WorkingDirectory=${specifiersEscaped(root)}`,
    `ExecStart=${execWord(node)} ${execWord(path.join(root, 'dist', 'scripts', 'agent.js'))}`,
    'Restart=always',
    'RestartSec=2',
    // the attempts' runners are processes of their own: a restart of the agent leaves them running
    'KillMode=process',
    '',
    '[Install]',
    'WantedBy=default.target',
    '',
  ].join('\n');
}

/** The tmux session's loop: the agent, started again 2 s after it exits; values are positional. */
export const TMUX_LOOP = 'cd "$1" || exit 1; while :; do "$2" dist/scripts/agent.js >>"$3" 2>&1; sleep 2; done';

async function systemdUsable(): Promise<boolean> {
  return run(['systemctl', '--user', 'show-environment'], { allowFail: true, timeout: 5000 }).then(
    (r) => r.code === 0,
    () => false,
  );
}

/** Installs and starts the agent; returns one line saying how. */
export async function installAgent(root: string, stateDir: string): Promise<string> {
  const name = agentName(root);
  if (await systemdUsable()) {
    const file = unitPath(root);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, systemdUnit(root, process.execPath));
    await run(['systemctl', '--user', 'daemon-reload']);
    await run(['systemctl', '--user', 'enable', '--now', `${name}.service`]);
    return `systemd user unit ${file} enabled and started (journalctl --user -u ${name} shows its log)`;
  }
  const log = path.join(agentDir(stateDir), 'agent.log');
  mkdirSync(path.dirname(log), { recursive: true });
  const has = await run(['tmux', 'has-session', '-t', `=${name}`], { allowFail: true });
  if (has.code === 0) return `tmux session ${name} runs already (its log: ${log})`;
  await run(['tmux', 'new-session', '-d', '-s', name, 'sh', '-c', TMUX_LOOP, 'switchyard-agent', root, process.execPath, log]);
  return `no systemd for this user: tmux session ${name} started, restarting the agent should it exit (its log: ${log})`;
}

/** How the agent is installed, if it is. */
export function installedAgent(root: string): string | null {
  return existsSync(unitPath(root)) ? `systemd user unit ${unitPath(root)}` : null;
}
