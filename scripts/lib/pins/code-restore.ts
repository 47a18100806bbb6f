// The commands that give a working tree a recorded run's code, for make replay's refusal.
import { run } from '../proc.js';
import type { Pins } from './digest.js';

/**
 * The changes here set aside, the recorded commit checked out (fetched first where this clone
 * lacks it), its recorded changes applied (`diff`: where the run's source.diff is kept); nothing
 * where the code is the run's already.
 */
export async function codeRestore(repoRoot: string, recorded: Pins['code'], here: Pins['code'], diff: string): Promise<string> {
  const git = (args: string[]) => run(['git', ...args], { cwd: repoRoot, allowFail: true }).catch(() => null);
  if (here.commit === recorded.commit && here.dirty_sha256 === recorded.dirty_sha256) return '';
  const steps: string[] = [];
  if (here.dirty_sha256) steps.push('git stash -u');
  if (here.commit !== recorded.commit) {
    if ((await git(['cat-file', '-e', `${recorded.commit}^{commit}`]))?.code !== 0) {
      // Not in this clone (rebased away, or never fetched): from the remote it was pushed to.
      const remotes = (await git(['remote']))?.stdout.toString().split('\n').filter(Boolean) ?? [];
      steps.push(`git fetch ${remotes.includes('origin') ? 'origin' : (remotes[0] ?? '<the remote that has it>')} ${recorded.commit}`);
    }
    steps.push(`git checkout ${recorded.commit.slice(0, 12)}`);
  }
  if (recorded.dirty_sha256) steps.push(`git apply ${diff}`);
  return steps.join(' && ');
}
