// A vitest reporter that ends a suite one of whose files has run past any sane length, or that
// has not ended long after every file did. A test's own timeout cannot fire while its worker is
// blocked (a synchronous spawn that never returns), nor can vitest end a worker that never
// exits, and vitest then waits forever: CI would only see its own limit, with nothing said.
// Instead this names each file still running, its current test, and the processes under the
// suite, kills them, and exits 1, so the last lines of the log say what hung.
import { readdirSync, readFileSync } from 'node:fs';
import type { Reporter, TestCase, TestModule } from 'vitest/node';

/** No file of the suite takes more than a few minutes, even beside another one. */
const FILE_LIMIT_MS = Number(process.env.SWITCHYARD_TEST_FILE_LIMIT_MIN ?? 25) * 60_000;
/** The whole suite takes about 20 minutes on two cores. */
const SUITE_LIMIT_MS = Number(process.env.SWITCHYARD_TEST_SUITE_LIMIT_MIN ?? 50) * 60_000;

interface Running {
  since: number;
  test?: { name: string; since: number };
}

export default class StuckReporter implements Reporter {
  private readonly running = new Map<string, Running>();
  private readonly started = Date.now();
  private readonly timer = setInterval(() => this.check(), Math.min(30_000, FILE_LIMIT_MS / 4)).unref();

  onTestModuleStart(m: TestModule): void {
    this.running.set(m.relativeModuleId, { since: Date.now() });
  }

  onTestCaseReady(t: TestCase): void {
    const r = this.running.get(t.module.relativeModuleId);
    if (r) r.test = { name: t.fullName, since: Date.now() };
  }

  onTestModuleEnd(m: TestModule): void {
    this.running.delete(m.relativeModuleId);
  }

  onTestRunEnd(): void {
    clearInterval(this.timer);
  }

  private check(): void {
    const now = Date.now();
    const min = (ms: number) => (ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`);
    const lines: string[] = [];
    if ([...this.running.values()].some((r) => now - r.since > FILE_LIMIT_MS)) lines.push(`test: a file ran past ${min(FILE_LIMIT_MS)}; ending the suite.`);
    else if (now - this.started > SUITE_LIMIT_MS) lines.push(`test: the suite ran past ${min(SUITE_LIMIT_MS)}; ending it.`);
    else return;
    lines.push(this.running.size ? 'Still running:' : 'Every file has ended.');
    for (const [file, r] of this.running) lines.push(`  ${file} for ${min(now - r.since)}${r.test ? `: "${r.test.name}" for ${min(now - r.test.since)}` : ''}`);
    const under = descendants(process.pid);
    lines.push(`processes under the suite (${under.length}):`);
    for (const p of under.slice(0, 20)) lines.push(`  ${p.pid} ${p.state} ${p.args.slice(0, 160)}`);
    process.stderr.write(`${lines.join('\n')}\n`);
    for (const p of under) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    process.exit(1);
  }
}

interface Proc {
  pid: number;
  ppid: number;
  state: string;
  args: string;
}

/** Every process whose parent chain reaches `root`, parents before children. */
function descendants(root: number): Proc[] {
  const all: Proc[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      all.push({ pid: Number(entry), ppid: Number(ppid), state: state!, args });
    } catch {
      // exited while listed
    }
  }
  const out: Proc[] = [];
  const frontier = [root];
  while (frontier.length) {
    const parent = frontier.shift()!;
    for (const p of all) if (p.ppid === parent) (out.push(p), frontier.push(p.pid));
  }
  return out;
}
