// JSON-lines files that another process is still appending to (events, metrics): a line that
// does not parse (cut off mid-write, or not JSON at all) is skipped, never an error.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export function parseJsonLines<T>(text: string): T[] {
  return text.split('\n').flatMap((line) => {
    if (!line.trim().startsWith('{')) return [];
    try {
      return [JSON.parse(line) as T];
    } catch {
      return [];
    }
  });
}

/** The newest parsable line, reading only the file's tail (metrics files grow all run long). */
export function lastJsonLine(file: string, tailBytes = 64 * 1024): Record<string, unknown> | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(size, tailBytes);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    return parseJsonLines<Record<string, unknown>>(buf.toString('utf8')).at(-1) ?? null;
  } finally {
    closeSync(fd);
  }
}
