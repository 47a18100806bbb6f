// Turns the first zod issue into the one-line error users see:
//   competitions/penguins/experiment.yaml: train.command: required, e.g. "python3 train.py"
import type { z } from 'zod';

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

/** Follows a zod schema down an issue path, unwrapping defaults and optionals. */
function schemaAt(schema: AnySchema, keys: PropertyKey[]): AnySchema | undefined {
  let cur: AnySchema | undefined = schema;
  const unwrap = () => {
    while (cur && defOf(cur).innerType) cur = defOf(cur).innerType;
  };
  unwrap();
  for (const key of keys) {
    if (!cur) return undefined;
    const def = defOf(cur);
    cur = def.shape?.[String(key)] ?? def.valueType ?? def.element;
    unwrap();
  }
  return cur;
}

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
export function formatZodIssue(
  file: string,
  error: z.ZodError,
  schema: AnySchema,
  raw: unknown,
  examples: Record<string, string> = {},
): string {
  const issue = error.issues.find((i) => i.code === 'unrecognized_keys') ?? error.issues[0]!;
  const field = issue.path.map(String).join('.');
  const example = examples[field] ? `, e.g. ${examples[field]}` : '';
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
      problem = `expected ${issue.expected}${example}`;
      break;
    case 'invalid_value':
      problem = `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
      break;
    default:
      problem = `${issue.message}${example}`;
  }
  return `${file}: ${field || '(top level)'}: ${problem}`;
}
