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

/**
 * The complete lines of an appended-to JSON-lines file (a cut-off last line is left for the next
 * read), one entry each: the value, or null for a line that does not parse. Readers count lines,
 * not values, so a damaged line never shifts what comes after it.
 */
export function parseEventLines<T>(text: string): (T | null)[] {
  const lines = text.split('\n');
  lines.pop(); // after the last newline: empty, or a line still being written
  return lines.map((line) => {
    try {
      const value: unknown = JSON.parse(line);
      return value !== null && typeof value === 'object' ? (value as T) : null;
    } catch {
      return null;
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
