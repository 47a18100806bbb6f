// A submission file checked against the competition's sample submission before it is uploaded:
// the same columns and the same number of rows, which is what Kaggle's scorer refuses a file
// for after a wasted daily submission. Fields may be quoted (RFC 4180: "" inside quotes, commas
// and newlines within them); a trailing newline, CRLF line ends and a UTF-8 BOM are allowed.
import { withoutBom } from '../bom.js';

export interface CsvShape {
  columns: string[];
  /** data rows, the header not counted; blank lines are not rows */
  rows: number;
}

export function csvShape(text: string): CsvShape {
  const s = withoutBom(text);
  const columns: string[] = [];
  let field = '';
  let quoted = false;
  let inHeader = true;
  let rows = 0;
  let lineHasContent = false;
  const endField = () => {
    if (inHeader) columns.push(field.trim());
    field = '';
  };
  const endLine = () => {
    if (inHeader) {
      endField();
      inHeader = false;
    } else if (lineHasContent) rows++;
    lineHasContent = false;
  };
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quoted) {
      if (c === '"' && s[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') (quoted = true), (lineHasContent = true);
    else if (c === ',') endField(), (lineHasContent = true);
    else if (c === '\n') endLine();
    else if (c !== '\r') (field += c), (lineHasContent = true);
  }
  if (inHeader || lineHasContent) endLine();
  return { columns: columns.length === 1 && columns[0] === '' ? [] : columns, rows };
}

/**
 * Why `file` does not match the sample submission, in one line, or null when it does: a column
 * missing or extra is named, a wrong row count names both counts. Column order is not checked
 * (Kaggle matches columns by name).
 */
export function shapeMismatch(file: string, got: CsvShape, sample: CsvShape, sampleName: string): string | null {
  const missing = sample.columns.filter((c) => !got.columns.includes(c));
  const extra = got.columns.filter((c) => !sample.columns.includes(c));
  const header = `(${sampleName} has ${sample.columns.join(',')})`;
  if (missing.length) return `${file}: column ${missing.map((c) => JSON.stringify(c)).join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing ${header}; nothing was uploaded`;
  if (extra.length) return `${file}: column ${extra.map((c) => JSON.stringify(c)).join(', ')} ${extra.length === 1 ? 'is' : 'are'} not in the sample submission ${header}; nothing was uploaded`;
  const dup = got.columns.find((c, i) => got.columns.indexOf(c) !== i);
  if (dup !== undefined) return `${file}: column ${JSON.stringify(dup)} appears twice; nothing was uploaded`;
  if (got.rows !== sample.rows) return `${file}: ${got.rows} rows, but ${sampleName} has ${sample.rows}; nothing was uploaded`;
  return null;
}
