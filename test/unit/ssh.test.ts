import { describe, expect, it } from 'vitest';
import { hostKeyAlgorithms } from '../../scripts/lib/ssh/connect.js';
import { checkHostName, checkRemotePath, checkUserName, quoteWord, shellQuote } from '../../scripts/lib/quote.js';
import { SYNC_EXCLUDES, parseProgress, parseStats, rsyncArgv, rsyncShellString } from '../../scripts/lib/ssh/rsync.js';
import { connectError, hostKeyError, sshStderrError } from '../../scripts/lib/ssh/ssh-errors.js';
import { sshArgv, sshOptions, targetFromConfig, type SshTarget } from '../../scripts/lib/ssh/target.js';
import { tmuxHasSession, tmuxKillSession, tmuxNewSession } from '../../scripts/lib/ssh/tmux.js';
import { UserError } from '../../scripts/lib/ui/errors.js';

describe('shellQuote', () => {
  it('leaves plain words alone and quotes what a shell would read', () => {
    expect(shellQuote(['ls', '-la', '/tmp/a_b.c', 'x@y:1%2,3+4'])).toBe('ls -la /tmp/a_b.c x@y:1%2,3+4');
    expect(shellQuote(['echo', "it's", ''])).toBe(`echo 'it'\\''s' ''`);
    // A quoted VAR=value is a command name, never an assignment.
    expect(quoteWord('FOO=bar')).toBe("'FOO=bar'");
    expect(quoteWord('~')).toBe("'~'");
  });

  it('refuses NUL bytes', () => {
    expect(() => shellQuote(['a\0b'])).toThrow(UserError);
  });
});

function rejects(fn: () => unknown, ...parts: string[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(UserError);
  const message = (err as Error).message;
  expect(message).not.toContain('\n');
  for (const p of parts) expect(message).toContain(p);
}

describe('validators', () => {
  it('accepts plain host names and addresses', () => {
    for (const h of ['h1', 'gpu-box.example.com', '10.213.0.11', 'my_alias']) expect(checkHostName(h)).toBe(h);
  });

  it('rejects hostile host names with one line naming the value and the rule', () => {
    rejects(() => checkHostName('h1;id'), '"h1;id"', '";" is not allowed', 'letters, digits');
    rejects(() => checkHostName('$(id)'), '"$(id)"', '"$" is not allowed');
    rejects(() => checkHostName('`id`'), '"`" is not allowed');
    rejects(() => checkHostName('a b'), 'a space is not allowed');
    rejects(() => checkHostName('a\nb'), '"a\\nb"', 'a newline is not allowed');
    rejects(() => checkHostName('-oProxyCommand=x'), '"=" is not allowed');
    rejects(() => checkHostName('-host'), 'starts with "-"');
    rejects(() => checkHostName('a..b'), '".."');
    rejects(() => checkHostName(''), 'empty');
    rejects(() => checkUserName('root;id'), 'user name', '";"');
  });

  it('accepts plain remote paths', () => {
    for (const p of ['/srv/switchyard', 'switchyard/repo', 'a/b/', '.', 'x/.hidden', '/a/b-c_d.e+f,g@h%i=j']) {
      expect(checkRemotePath(p)).toBe(p);
    }
  });

  it('rejects hostile remote paths', () => {
    rejects(() => checkRemotePath('/srv/x;rm -rf /'), 'remote path', '";" is not allowed');
    rejects(() => checkRemotePath('/srv/$(id)'), '"$" is not allowed');
    rejects(() => checkRemotePath('/srv/`id`'), '"`" is not allowed');
    rejects(() => checkRemotePath('/srv/a b'), 'a space is not allowed');
    rejects(() => checkRemotePath('/srv/(x)'), '"(" is not allowed');
    rejects(() => checkRemotePath('/srv/../etc'), '".." segment');
    rejects(() => checkRemotePath('..'), '".." segment');
    rejects(() => checkRemotePath('a\nb'), 'a newline');
    rejects(() => checkRemotePath('-rf'), 'starts with "-"');
    rejects(() => checkRemotePath('~/x'), '"~" is not expanded', 'write "x"');
    rejects(() => checkRemotePath('host:path'), '":" is not allowed');
    rejects(() => checkRemotePath(''), 'empty');
  });
});

describe('known_hosts', () => {
  it('prefers the host key algorithms known_hosts holds', () => {
    expect(hostKeyAlgorithms(['ssh-rsa']).slice(0, 4)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519']);
    expect(hostKeyAlgorithms([])[0]).toBe('ssh-ed25519');
    expect(hostKeyAlgorithms(['ecdsa-sha2-nistp256'])[0]).toBe('ecdsa-sha2-nistp256');
  });
});

const TARGET: SshTarget = {
  name: 'h1',
  host: '10.213.0.11',
  port: 2222,
  user: 'root',
  identityFile: '/keys/id_ed25519',
  knownHosts: '/keys/known_hosts',
  connectTimeoutSec: 5,
};

describe('targets and ssh argv', () => {
  it('resolves a host entry with known_hosts precedence and ~ expansion', () => {
    const home = '/home/me';
    const base = { host: 'box', identity_file: '~/.ssh/id' };
    expect(targetFromConfig('b', base, { home, env: {} })).toEqual({
      name: 'b', host: 'box', port: 22, identityFile: '/home/me/.ssh/id', knownHosts: '/home/me/.ssh/known_hosts', connectTimeoutSec: 10,
    });
    const env = { SWITCHYARD_KNOWN_HOSTS: '/ci/known_hosts' };
    expect(targetFromConfig('b', base, { home, env }).knownHosts).toBe('/ci/known_hosts');
    expect(targetFromConfig('b', { ...base, known_hosts: '~/kh' }, { home, env }).knownHosts).toBe('/home/me/kh');
    expect(targetFromConfig('b', { ...base, known_hosts: '~/kh' }, { home, env, knownHosts: '/x/kh' }).knownHosts).toBe('/x/kh');
    expect(targetFromConfig('b', { host: 'box', port: 2200, user: 'u' }, { home, env: {}, connectTimeoutSec: 3 })).toMatchObject({ port: 2200, user: 'u', connectTimeoutSec: 3 });
  });

  it('validates the host entry before anything connects', () => {
    rejects(() => targetFromConfig('b', { host: 'box;id' }), 'host name', '"box;id"');
    rejects(() => targetFromConfig('b', { host: 'box', user: '$(id)' }), 'user name');
  });

  it('renders the system ssh argv (golden)', () => {
    expect(sshArgv(TARGET, ['sh', '-c', 'echo "$HOME"; ls'])).toEqual([
      'ssh',
      '-o', 'BatchMode=yes',
      '-o', 'ConnectTimeout=5',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'UserKnownHostsFile=/keys/known_hosts',
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'ServerAliveInterval=15',
      '-o', 'ServerAliveCountMax=3',
      '-o', 'IdentitiesOnly=yes',
      '-i', '/keys/id_ed25519',
      '-p', '2222',
      '--',
      'root@10.213.0.11',
      `sh -c 'echo "$HOME"; ls'`,
    ]);
    const bare = { name: 'b', host: 'box', port: 22, knownHosts: '/kh', connectTimeoutSec: 10 };
    expect(sshArgv(bare)).toEqual([
      'ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'StrictHostKeyChecking=yes',
      '-o', 'UserKnownHostsFile=/kh', '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'ServerAliveInterval=15',
      '-o', 'ServerAliveCountMax=3', '-p', '22', '--', 'box',
    ]);
  });

  it('refuses file paths that ssh would split or expand', () => {
    rejects(() => sshOptions({ ...TARGET, knownHosts: '/my keys/known_hosts' }), 'known_hosts file', 'space');
    rejects(() => sshOptions({ ...TARGET, identityFile: '/keys/%h' }), 'identity file');
  });
});

describe('rsync argv', () => {
  it('renders push and pull (golden)', () => {
    const e =
      "ssh -o 'BatchMode=yes' -o 'ConnectTimeout=5' -o 'StrictHostKeyChecking=yes' -o 'UserKnownHostsFile=/keys/known_hosts' " +
      "-o 'GlobalKnownHostsFile=/dev/null' -o 'ServerAliveInterval=15' -o 'ServerAliveCountMax=3' -o 'IdentitiesOnly=yes' -i /keys/id_ed25519 -p 2222";
    expect(rsyncArgv({ src: './repo/', dest: 'switchyard/repo/', target: TARGET, direction: 'push', excludes: ['node_modules', '*.pyc'], delete: true, progress: true })).toEqual([
      'rsync', '-a', '--partial', '--delete-after', '--info=progress2', '--no-inc-recursive',
      '-e', e,
      '--exclude=node_modules', '--exclude=*.pyc',
      '--', './repo/', 'root@10.213.0.11:switchyard/repo/',
    ]);
    expect(rsyncArgv({ src: '/srv/out/', dest: 'local/out', target: TARGET, direction: 'pull', excludes: [] })).toEqual([
      'rsync', '-a', '--partial', '-e', e, '--', 'root@10.213.0.11:/srv/out/', 'local/out',
    ]);
  });

  it('validates the remote path', () => {
    rejects(() => rsyncArgv({ src: '.', dest: 'x;id', target: TARGET, direction: 'push', excludes: [] }), 'remote path');
    rejects(() => rsyncArgv({ src: '../x', dest: '.', target: TARGET, direction: 'pull', excludes: [] }), '".." segment');
  });

  it('quotes -e parts for rsync\'s own splitter', () => {
    expect(rsyncShellString(['ssh', '-o', 'A=b c'])).toBe("ssh -o 'A=b c'");
    expect(rsyncShellString(['it\'s'])).toBe("'it''s'");
  });

  it('has one shared exclude list', () => {
    for (const x of ['node_modules', '.git', '.switchyard', 'dist', 'outputs', '__pycache__', '*.pyc', '.env', '/bench/.tmp', 'data-cache']) {
      expect(SYNC_EXCLUDES).toContain(x);
    }
  });

  it('parses progress2 records and --stats', () => {
    expect(parseProgress('     20,000,003 100%  264.48MB/s    0:00:00 (xfr#2, to-chk=0/4)')).toEqual({ bytes: 20000003, percent: 100 });
    expect(parseProgress('          32,768   0%    0.00kB/s    0:00:00  ')).toEqual({ bytes: 32768, percent: 0 });
    expect(parseProgress('sending incremental file list')).toBeUndefined();
    const stats = 'Number of files: 4 (reg: 2, dir: 2)\nNumber of deleted files: 1\nNumber of regular files transferred: 2\nTotal transferred file size: 20,000,003 bytes\n';
    expect(parseStats(stats)).toEqual({ filesTransferred: 2, bytesTransferred: 20000003, deleted: 1 });
  });
});

describe('tmux renderers', () => {
  it('renders new-session, has-session and kill-session (golden)', () => {
    expect(tmuxNewSession('switchyard', 'run-1-shard-0', 'switchyard/repo', ['python', 'train.py', '--lr', '1e-3', "it's"], { SWITCHYARD_RUN_ID: 'r1', MSG: 'a b' })).toEqual([
      'tmux', '-L', 'switchyard', 'new-session', '-d', '-s', 'run-1-shard-0',
      '-e', 'SWITCHYARD_RUN_ID=r1', '-e', 'MSG=a b',
      `cd switchyard/repo && exec python train.py --lr 1e-3 'it'\\''s'`,
    ]);
    expect(tmuxHasSession('switchyard', 's1')).toEqual(['tmux', '-L', 'switchyard', 'has-session', '-t', '=s1']);
    expect(tmuxKillSession('switchyard', 's1')).toEqual(['tmux', '-L', 'switchyard', 'kill-session', '-t', '=s1']);
  });

  it('validates names, paths and env', () => {
    rejects(() => tmuxHasSession('sw', 'a:b'), 'tmux session name', '":"');
    rejects(() => tmuxKillSession('sw', 'a.b'), '"."');
    rejects(() => tmuxHasSession('-x', 's'), 'tmux socket name');
    rejects(() => tmuxNewSession('sw', 's', '/srv/$(id)', ['true']), 'remote path');
    rejects(() => tmuxNewSession('sw', 's', '.', ['true'], { 'A B': '1' }), 'environment variable name');
    rejects(() => tmuxNewSession('sw', 's', '.', []), 'no command');
  });
});

describe('ssh error messages', () => {
  it('are one line, name the host and say what to do', () => {
    const unknown = hostKeyError(TARGET, 'unknown', 'ssh-ed25519', 'SHA256:abc').message;
    expect(unknown).toBe(
      'ssh h1 (root@10.213.0.11:2222): host key is not in /keys/known_hosts (server offered the ssh-ed25519 key SHA256:abc); verify it and add it with: ssh-keyscan -p 2222 10.213.0.11 >> /keys/known_hosts',
    );
    const changed = hostKeyError(TARGET, 'changed', 'ssh-ed25519', 'SHA256:abc').message;
    expect(changed).toContain('HOST KEY CHANGED (possible man-in-the-middle)');
    expect(changed).toContain("ssh-keygen -R '[10.213.0.11]:2222' -f /keys/known_hosts");
    const refused = connectError(TARGET, Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })).message;
    expect(refused).toBe('ssh h1 (root@10.213.0.11:2222): connection refused (is sshd running and listening on that port?)');
    expect(sshStderrError(TARGET, 'Host key verification failed.\r\n')?.message).toContain('host key is not in /keys/known_hosts');
    expect(sshStderrError(TARGET, 'root@x: Permission denied (publickey).')?.message).toContain('authentication failed with the key /keys/id_ed25519');
    for (const m of [unknown, changed, refused]) expect(m).not.toContain('\n');
  });
});
