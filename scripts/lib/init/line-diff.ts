// What would change in a file, line by line: `- old` and `+ new` with a line of context around
// each change (a longest-common-subsequence diff; config files are a few hundred lines at most).

export function lineDiff(before: string, after: string, context = 1): string[] {
  const a = before.split('\n');
  const b = after.split('\n');
  // lcs[i][j]: the common subsequence length of a[i..] and b[j..]
  const lcs = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  }
  const ops: { mark: ' ' | '-' | '+'; line: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) ops.push({ mark: ' ', line: a[i++]! }), j++;
    else if (i < a.length && (j === b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) ops.push({ mark: '-', line: a[i++]! });
    else ops.push({ mark: '+', line: b[j++]! });
  }
  const near = (k: number) => ops.slice(Math.max(0, k - context), k + context + 1).some((o) => o.mark !== ' ');
  const out: string[] = [];
  let gap = false;
  ops.forEach((o, k) => {
    if (!near(k)) return void (gap = out.length > 0);
    if (gap) out.push('  ...');
    gap = false;
    out.push(`${o.mark} ${o.line}`);
  });
  return out;
}
