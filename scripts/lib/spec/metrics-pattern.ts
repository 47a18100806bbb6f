// `train.metrics_from`: a regular expression with named groups that turns a line the experiment
// prints into a metrics line, e.g. `step (?<step>\d+) / \d+ \| loss (?<loss>[\d.]+)`.
// Python's `(?P<name>...)` spelling is accepted too, since that is what most training code uses.

/** Compiles the pattern, or throws an Error whose message says what is wrong with it. */
export function compileMetricsPattern(source: string): RegExp {
  let re: RegExp;
  try {
    re = new RegExp(source.replace(/\(\?P</g, '(?<'));
  } catch (err) {
    throw new Error(`not a regular expression (${(err as Error).message.replace(/^Invalid regular expression: /, '')})`);
  }
  if (!/\(\?<[A-Za-z_$][\w$]*>/.test(re.source)) throw new Error('has no named group like (?<loss>[\\d.]+) to take a metric from');
  return re;
}

/**
 * The metrics line for one line of output, or null when the pattern does not match. A group
 * that reads as a finite number becomes a number; one that did not take part is left out.
 */
export function metricsOfLine(re: RegExp, line: string): Record<string, number | string> | null {
  const groups = re.exec(line)?.groups;
  if (!groups) return null;
  const out: Record<string, number | string> = {};
  for (const [name, value] of Object.entries(groups)) {
    if (value === undefined) continue;
    const n = value.trim() === '' ? NaN : Number(value);
    out[name] = Number.isFinite(n) ? n : value;
  }
  return Object.keys(out).length ? out : null;
}
