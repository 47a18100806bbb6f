// Plain aligned columns for terminal listings.
export function renderTable(headers: string[], rows: (string | number | null)[][]): string {
  const n = headers.length;
  const widths = headers.map((h) => h.length);
  // Cells as text, and the widths, in one pass: a listing can have thousands of rows.
  const cells = [headers];
  for (const row of rows) {
    const texts = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      const c = row[i];
      const text = c === null || c === undefined ? '-' : String(c);
      texts[i] = text;
      if (text.length > widths[i]!) widths[i] = text.length;
    }
    cells.push(texts);
  }
  // Each line is built by concatenation with slices of one run of spaces per column: padEnd and
  // join made two new strings a cell, which made the table of 5,000 runs twice as slow.
  const spaces = widths.map((w) => ' '.repeat(w + 2));
  const lines = new Array<string>(cells.length);
  for (let k = 0; k < cells.length; k++) {
    const texts = cells[k]!;
    let line = '';
    for (let i = 0; i < n - 1; i++) line += texts[i]! + spaces[i]!.slice(texts[i]!.length);
    lines[k] = (line + texts[n - 1]!).trimEnd();
  }
  return lines.join('\n');
}
