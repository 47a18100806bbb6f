// Runs every doctor check at once, each under its own timeout, and renders the rows as one
// table: the whole doctor takes as long as its slowest check, never the sum of them.
import { renderTable } from '../ui/table.js';
import { splitFix, type Check, type Row } from './row.js';

/** Settles with `work`, or with `late()` once `ms` have passed (work is then abandoned). */
export function withTimeout<T>(work: Promise<T>, ms: number, late: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(late()), ms);
    timer.unref();
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

const seconds = (ms: number) => (ms < 1000 ? `${ms} ms` : `${+(ms / 1000).toFixed(1)}s`);

async function runOne(check: Check): Promise<Row[]> {
  const t0 = performance.now();
  const whole = (ok: false, detail: string, fix: string) => [{ name: check.name, ok, detail, fix }];
  const found = await withTimeout(
    check.run().catch((err: Error) => {
      const { detail, fix } = splitFix(err.message.split('\n')[0]!);
      return whole(false, detail, fix || 'fix what the message says, then make doctor');
    }),
    check.timeoutMs,
    () => whole(false, `no answer within ${seconds(check.timeoutMs)}`, `check what ${check.group} ${check.name} depends on, then make doctor`),
  );
  const ms = Math.round(performance.now() - t0);
  return found.map((f) => ({ group: check.group, required: check.required, fix: '', ...f, ms }));
}

/** Every check's rows, in the order the checks were given. */
export async function runChecks(checks: readonly Check[]): Promise<Row[]> {
  return (await Promise.all(checks.map(runOne))).flat();
}

/** ✗ only for what is needed: a ✗ in the table and a failed doctor are the same thing. */
const mark = (r: Row) => (r.ok === 'skip' ? '-' : r.ok ? '✓' : r.required ? '✗' : '!');

/** What the marks mean, under the table. */
export const LEGEND = 'marks: ✓ works, ✗ needed and broken, ! broken but not needed now, - not checked';

export function renderRows(rows: readonly Row[]): string {
  return renderTable(
    ['', 'CHECK', '', 'RESULT', 'TIME', 'FIX'],
    rows.map((r) => [
      mark(r),
      r.group,
      r.name,
      r.detail,
      `${r.ms} ms`,
      r.ok === false ? r.fix : '',
    ]),
  );
}
