// YAML text to a plain value, every failure one line naming the file: bytes that are not UTF-8,
// a syntax error or a duplicate key with its line and column, nesting too deep, aliases that
// expand too much.
// The yaml module is loaded on first use (it costs ~35 ms of a verb's start-up).
import { isUtf8 } from 'node:buffer';
import type { CST, Document, LineCounter } from 'yaml';
import { UserError } from '../ui/errors.js';

type Yaml = typeof import('yaml');

/** Alias expansions a document may make (yaml's default): more is a "billion laughs" document. */
const MAX_ALIASES = 100;
/**
 * Collections nested in one another. A spec needs four or five; yaml composes nested
 * collections recursively, and a few thousand levels (6 KiB of `[`) end the process.
 */
const MAX_DEPTH = 64;

/** How deep the parsed tokens nest, walked without recursion. */
function depthOf(tokens: CST.Token[]): number {
  let max = 0;
  const stack: [CST.Token | undefined | null, number][] = tokens.map((t) => [t, 0]);
  while (stack.length) {
    const [token, depth] = stack.pop()!;
    if (!token) continue;
    max = Math.max(max, depth);
    if (token.type === 'document') stack.push([token.value, depth]);
    if ('items' in token) for (const item of token.items) stack.push(['key' in item ? item.key : null, depth + 1], [item.value, depth + 1]);
  }
  return max;
}

/**
 * Two keys alike in one mapping (alike as the parsed value's property names: `1e2` and `100`
 * collide there), found in one pass: yaml's own `uniqueKeys` check compares every key with
 * every other, and 32k keys took 42 s.
 */
function checkDuplicateKeys(yaml: Yaml, doc: Document, lines: LineCounter, file: string): void {
  yaml.visit(doc, {
    Map(_, map) {
      const seen = new Map<string, number>();
      for (const { key } of map.items) {
        if (!yaml.isScalar(key)) continue;
        const name = String(key.value);
        const offset = key.range?.[0] ?? 0;
        const first = seen.get(name);
        if (first === undefined) {
          seen.set(name, offset);
          continue;
        }
        const at = lines.linePos(offset);
        throw new UserError(`${file}:${at.line}:${at.col}: duplicate key ${JSON.stringify(name)} (also on line ${lines.linePos(first).line}); keep one`);
      }
    },
  });
}

/**
 * A file's bytes as text, refusing what is not UTF-8: decoded leniently, a Latin-1 `é` in a
 * command or a path would become U+FFFD and run, or be looked for, as something never written.
 */
export function strictUtf8Text(file: string, bytes: Buffer): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  const line = bytes.toString('latin1').split('\n').findIndex((l) => !isUtf8(Buffer.from(l, 'latin1'))) + 1;
  throw new UserError(`${file}:${line}: not UTF-8 text; save the file as UTF-8`);
}

export async function parseYaml(file: string, text: string): Promise<unknown> {
  const mod = await import('yaml');
  // Bundled into dist/, the CommonJS yaml package arrives as a default export.
  const yaml = 'parseDocument' in mod ? mod : (mod as unknown as { default: Yaml }).default;
  // What yaml's parseDocument does, with the nesting checked between its two steps.
  const lines = new yaml.LineCounter();
  const tokens = [...new yaml.Parser(lines.addNewLine).parse(text)];
  if (depthOf(tokens) > MAX_DEPTH) throw new UserError(`${file}: YAML nested more than ${MAX_DEPTH} levels deep; flatten it`);
  const docs = [...new yaml.Composer({ uniqueKeys: false }).compose(tokens, true, text.length)];
  const doc = docs[0]!;
  const err = doc.errors[0];
  if (err) {
    const at = lines.linePos(err.pos[0]);
    throw new UserError(`${file}:${at.line}:${at.col}: malformed YAML: ${err.message.split('\n')[0]}`);
  }
  if (docs.length > 1) {
    const at = lines.linePos(docs[1]!.range[0]);
    throw new UserError(`${file}:${at.line}:${at.col}: more than one YAML document; keep the first`);
  }
  checkDuplicateKeys(yaml, doc, lines, file);
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIASES }) ?? {};
  } catch (e) {
    if (e instanceof ReferenceError && /^Excessive alias count/.test(e.message)) {
      throw new UserError(`${file}: YAML aliases expand too much (over ${MAX_ALIASES} times); write the values out instead of nesting anchors`);
    }
    throw new UserError(`${file}: malformed YAML: ${(e as Error).message.split('\n')[0]}`);
  }
}
