// What every doctor check reports: rows of one table, each ✓, ✗ or not applicable, with the
// exact fix for a ✗. A check says whether it is required: a required ✗ fails `make doctor`.

export interface Row {
  /** what the row belongs to: `tools`, `host h1`, `store`, `cluster hpc`, ... */
  group: string;
  name: string;
  /** 'skip': not checked (nothing to check, or an earlier row of the same thing failed) */
  ok: boolean | 'skip';
  detail: string;
  /** the command or edit that fixes a ✗ ('' otherwise) */
  fix: string;
  /** a ✗ here means something needed is broken: the doctor exits non-zero */
  required: boolean;
  /** how long the check that produced the row took */
  ms: number;
}

/** A row as a check returns it; the runner adds its group, timing and (unless said) requiredness. */
export type Finding = Omit<Row, 'group' | 'ms' | 'required' | 'fix'> & { fix?: string; required?: boolean };

export interface Check {
  group: string;
  /** names the row that stands for the whole check when it times out or fails unexpectedly */
  name: string;
  required: boolean;
  /** the check's own limit: past it its one row is ✗ and the doctor goes on without it */
  timeoutMs: number;
  run(): Promise<Finding[]>;
}

export const pass = (name: string, detail: string): Finding => ({ name, ok: true, detail });
export const fail = (name: string, detail: string, fix: string): Finding => ({ name, ok: false, detail, fix });
export const skip = (name: string, detail: string): Finding => ({ name, ok: 'skip', detail });

/** `what happened; how to fix it` (the shape of the project's one-line messages) as detail and fix. */
export function splitFix(line: string): { detail: string; fix: string } {
  const at = line.indexOf('; ');
  return at < 0 ? { detail: line, fix: '' } : { detail: line.slice(0, at), fix: line.slice(at + 2) };
}

/** The rows that fail the doctor: required and ✗. */
export const broken = (rows: readonly Row[]): Row[] => rows.filter((r) => r.ok === false && r.required);
