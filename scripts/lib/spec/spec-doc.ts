// docs/experiment-spec.md, rendered from the experiment schema itself (its JSON Schema, with
// each field's `.meta()`), so the reference cannot drift from what validation accepts. The
// "e.g." column is the example the field's error messages quote. `make spec-doc` writes it;
// a unit test fails when the file differs from what this renders.
import { z } from 'zod';
import { ExperimentSchema } from './experiment-schema.js';

export const SPEC_DOC_FILE = 'docs/experiment-spec.md';

interface Json {
  type?: string;
  expects?: string;
  description?: string;
  example?: string;
  default?: unknown;
  enum?: unknown[];
  anyOf?: Json[];
  properties?: Record<string, Json>;
  required?: string[];
  items?: Json;
  additionalProperties?: Json | boolean;
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  minItems?: number;
}

const INTRO = `# Experiment spec reference

<!-- Generated from the schema in scripts/lib/spec/experiment.ts by \`make spec-doc\`; do not edit. -->

An experiment spec is \`competitions/<slug>/experiment.yaml\` (the default experiment) or
\`competitions/<slug>/experiments/<name>.yaml\`. It is validated in full before anything runs:
an unknown key names the valid ones, and every other mistake is one line naming the file, the
field and, after "e.g.", the example in the last column. What the running program sees is
[experiment-contract.md](experiment-contract.md).

- A **command** is a string, run with \`bash -c\` (a one-command string is exec'd, so the
  program itself receives the signals), or a list, run as argv with no shell.
- Paths are relative to the competition folder, except \`code\` (relative to the repository
  root). A working folder (\`cwd\`) may be \`$data\` or \`$data/<sub-folder>\`: the staged,
  read-only view of the pinned data files.
- Fields added after a run was created are absent from its recorded spec, and a spec that does
  not use them pins the same as before.
`;

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function typeOf(s: Json): string {
  if (s.expects) return s.expects;
  if (s.enum) return `one of ${s.enum.map((v) => `\`${String(v)}\``).join(', ')}`;
  if (s.anyOf) return s.anyOf.map(typeOf).join(', or ');
  const bounds: string[] = [];
  if (s.exclusiveMinimum !== undefined) bounds.push(`> ${s.exclusiveMinimum}`);
  if (s.minimum !== undefined) bounds.push(`≥ ${s.minimum}`);
  if (s.maximum !== undefined && s.maximum < MAX_SAFE) bounds.push(`≤ ${s.maximum}`);
  const range = bounds.length ? ` ${bounds.join(', ')}` : '';
  switch (s.type) {
    case 'integer':
      return `a whole number${range}`;
    case 'number':
      return `a number${range}`;
    case 'boolean':
      return 'true or false';
    case 'string':
      return 'a string';
    case 'array': {
      const item = s.items ? typeOf(s.items).replace(/^an? /, '') : 'value';
      return `a list of ${s.items?.enum ? `values, each ${typeOf(s.items)}` : `${item}s`}${s.minItems ? ` (at least ${s.minItems})` : ''}`;
    }
    case 'object':
      return s.properties ? 'a mapping' : 'a mapping of names to strings';
    default:
      return 'a value';
  }
}

/** The object form of a field, if it has one: its own mapping, or one option of a union. */
function objectForm(s: Json): Json | undefined {
  if (s.properties) return s;
  return s.anyOf?.find((o) => o.properties);
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const code = (text: string) => (text.includes('`') ? `\`\` ${text} \`\`` : `\`${text}\``);

function rows(s: Json, prefix: string, out: string[]): void {
  const required = new Set(s.required ?? []);
  for (const [key, field] of Object.entries(s.properties ?? {})) {
    const name = `${prefix}${key}`;
    const dflt = required.has(key) ? '**required**' : field.default === undefined ? 'optional' : code(JSON.stringify(field.default));
    const example = field.example === undefined ? '' : code(field.example);
    out.push(`| \`${name}\` | ${cell(typeOf(field))} | ${dflt} | ${cell(field.description ?? '')} | ${cell(example)} |`);
    const inner = objectForm(field);
    if (inner) rows(inner, `${name}.`, out);
  }
}

export function renderSpecReference(): string {
  const json = z.toJSONSchema(ExperimentSchema, { io: 'input', unrepresentable: 'any' }) as Json;
  const out = ['| field | type | default | meaning | e.g. |', '| --- | --- | --- | --- | --- |'];
  rows(json, '', out);
  return `${INTRO}\n${out.join('\n')}\n`;
}
