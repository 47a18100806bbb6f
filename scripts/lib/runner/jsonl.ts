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

/** The last `max` bytes of a file (metrics files and logs grow all run long); empty when it cannot be opened. */
export function fileTail(file: string, max: number): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(size, max));
    return buf.subarray(0, readSync(fd, buf, 0, buf.length, size - buf.length));
  } finally {
    closeSync(fd);
  }
}

/** The newest parsable line, reading only the file's tail. */
export function lastJsonLine(file: string, tailBytes = 64 * 1024): Record<string, unknown> | null {
  return parseJsonLines<Record<string, unknown>>(fileTail(file, tailBytes).toString('utf8')).at(-1) ?? null;
}
