// Turns the first zod issue into the one-line error users see:
//   competitions/penguins/experiment.yaml: train.command: required, e.g. "python3 train.py"
// The fix quoted after "e.g." is the field's own example, from the schema's metadata
// (`.meta({ example })`), the same one the generated reference page shows.
import { z } from 'zod';

type AnySchema = z.ZodType;
interface Def {
  type?: string;
  innerType?: AnySchema;
  shape?: Record<string, AnySchema>;
  valueType?: AnySchema;
  element?: AnySchema;
  options?: AnySchema[];
}

const defOf = (s: AnySchema): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** What a schema's `.meta()` says about a field: what it expects (where its type says too little), its meaning, an example value. */
interface FieldMeta {
  expects?: string;
  description?: string;
  example?: string;
}

/** The field's schema and every wrapper around it (default, optional, ...), outermost first. */
function chainAt(schema: AnySchema, keys: PropertyKey[]): AnySchema[] {
  let chain: AnySchema[] = [];
  const unwrap = (s: AnySchema | undefined) => {
    chain = [];
    for (let cur = s; cur; cur = defOf(cur).innerType) chain.push(cur);
  };
  unwrap(schema);
  for (const key of keys) {
    const def = chain.length ? defOf(chain.at(-1)!) : {};
    // Into a union (a command or an object form), through the option that has this key.
    const option = def.options?.find((o) => defOf(o).shape?.[String(key)]);
    unwrap(def.shape?.[String(key)] ?? (option && defOf(option).shape?.[String(key)]) ?? def.valueType ?? def.element);
  }
  return chain;
}

/** Follows a zod schema down an issue path, unwrapping defaults and optionals. */
function schemaAt(schema: AnySchema, keys: PropertyKey[]): AnySchema | undefined {
  return chainAt(schema, keys).at(-1);
}

/** The field's metadata, merged over its wrappers (the outermost wins). */
function metaAt(schema: AnySchema, keys: PropertyKey[]): FieldMeta {
  const metas = chainAt(schema, keys).map((s) => (z.globalRegistry.get(s) ?? {}) as FieldMeta);
  return Object.assign({}, ...metas.reverse());
}

const EXPECTED: Record<string, string> = {
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
};

function validKeys(schema: AnySchema, keys: PropertyKey[]): string[] {
  const at = schemaAt(schema, keys);
  return at ? Object.keys(defOf(at).shape ?? {}) : [];
}

function valueAt(raw: unknown, keys: PropertyKey[]): unknown {
  let cur = raw;
  for (const key of keys) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

/**
 * `raw` is the input that failed, used to tell a missing field from a wrong one. An unknown
 * key is reported first: a typo there usually explains the "required" that comes with it.
 */
export function formatZodIssue(file: string, error: z.ZodError, schema: AnySchema, raw: unknown): string {
  const issue = error.issues.find((i) => i.code === 'unrecognized_keys') ?? error.issues[0]!;
  const field = issue.path.map(String).join('.');
  const meta = metaAt(schema, issue.path);
  const example = meta.example ? `, e.g. ${meta.example}` : '';
  // A custom rule says in its own words what a missing field needs.
  if (issue.code !== 'unrecognized_keys' && issue.code !== 'custom' && valueAt(raw, issue.path) === undefined) {
    return `${file}: ${field}: required${example}`;
  }
  let problem: string;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const where = issue.path.length ? `${field}.` : '';
      const valid = validKeys(schema, issue.path);
      return `${file}: ${where}${issue.keys[0]}: unknown key; valid keys here: ${valid.join(', ')}`;
    }
    case 'invalid_type':
      problem = `expected ${EXPECTED[issue.expected] ?? issue.expected}${example}`;
      break;
    case 'invalid_union':
      problem = `expected ${meta.expects ?? 'one of the forms docs/experiment-spec.md shows'}${example}`;
      break;
    case 'invalid_value':
      problem = `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
      break;
    case 'custom':
      // A rule whose message already ends in its own fix ("...; add data: ...") needs no example.
      problem = issue.message.includes('; ') ? issue.message : `${issue.message}${example}`;
      break;
    default:
      problem = `${issue.message}${example}`;
  }
  return `${file}: ${field || '(top level)'}: ${problem}`;
}
