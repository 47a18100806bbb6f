// Checks a REST (proto3 JSON) value against the Batch v1 message definitions that ship inside the
// client package (@google-cloud/batch/build/protos/protos.json), as the API's front end does: an
// unknown field, or a value of the wrong type, is an INVALID_ARGUMENT naming its path. Returns the
// value in the canonical form replies use (enums as names, 64-bit integers as strings, null and
// output-only fields dropped). Note that the client itself drops unknown fields before sending
// (protobufjs fromObject), so a typo in a rendered job only shows here when the JSON is checked
// directly: `checkMessage(job, 'Job', 'job')`.
import { createRequire } from 'node:module';

interface ProtoNode {
  nested?: Record<string, ProtoNode>;
  fields?: Record<string, FieldDef>;
  values?: Record<string, number>;
  oneofs?: Record<string, { oneof: string[] }>;
}
interface FieldDef {
  type: string;
  rule?: string;
  keyType?: string;
  options?: Record<string, unknown>;
}

const require = createRequire(import.meta.url);
const ROOT = require('@google-cloud/batch/build/protos/protos.json') as ProtoNode;
const V1 = ['google', 'cloud', 'batch', 'v1'];

export class InvalidArgument extends Error {}

const INT32 = new Set(['int32', 'sint32', 'sfixed32', 'uint32', 'fixed32']);
const INT64 = new Set(['int64', 'sint64', 'sfixed64', 'uint64', 'fixed64']);
const DURATION = /^-?\d+(\.\d{1,9})?s$/;
const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;

/** A type name as written in a field (`TaskGroup`, `AllocationPolicy.Disk`), resolved from `scope` outwards, as protoc does. */
function resolve(name: string, scope: string[]): string[] {
  const parts = name.replace(/^\./, '').split('.');
  for (let i = name.startsWith('.') ? 0 : scope.length; i >= 0; i--) {
    const full = [...scope.slice(0, i), ...parts];
    if (node(full)) return full;
  }
  throw new Error(`protos.json: cannot resolve ${name} from ${scope.join('.')}`);
}

function node(path: string[]): ProtoNode | undefined {
  let n: ProtoNode | undefined = ROOT;
  for (const p of path) n = n?.nested?.[p];
  return n;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function invalid(at: string, kind: string, value: unknown): InvalidArgument {
  return new InvalidArgument(`Invalid value at '${at}' (${kind}), ${JSON.stringify(value)}`);
}

/** `message` is a google.cloud.batch.v1 message name (`Job`, `ListTasksRequest`); `at` names the value in errors. */
export function checkMessage(value: unknown, message: string, at: string): Record<string, unknown> {
  return checkType(value, [...V1, message], at) as Record<string, unknown>;
}

function checkType(value: unknown, type: string[], at: string): unknown {
  const full = type.join('.');
  if (full === 'google.protobuf.Duration' || full === 'google.protobuf.Timestamp') {
    if (typeof value === 'string' && (full.endsWith('Duration') ? DURATION : TIMESTAMP).test(value)) return value;
    throw invalid(at, full, value);
  }
  const def = node(type)!;
  if (def.values) return checkEnum(value, def.values, full, at);
  if (!isObject(value)) throw invalid(at, full, value);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const field = def.fields?.[key];
    if (!field) throw new InvalidArgument(`Invalid JSON payload received. Unknown name "${key}" at '${at}': Cannot find field.`);
    if (v === null || field.options?.['(google.api.field_behavior)'] === 'OUTPUT_ONLY') continue;
    out[key] = checkField(v, field, type, `${at}.${key}`);
  }
  for (const [name, { oneof }] of Object.entries(def.oneofs ?? {})) {
    const set = oneof.filter((f) => f in out);
    if (set.length > 1) throw new InvalidArgument(`Invalid value at '${at}': oneof ${name} takes one of ${oneof.join(', ')}, got ${set.join(' and ')}`);
  }
  return out;
}

function checkField(value: unknown, field: FieldDef, scope: string[], at: string): unknown {
  if (field.keyType) {
    if (!isObject(value)) throw invalid(at, `map<${field.keyType}, ${field.type}>`, value);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, checkValue(v, field.type, scope, `${at}[${JSON.stringify(k)}]`)]));
  }
  if (field.rule === 'repeated') {
    if (!Array.isArray(value)) throw invalid(at, `repeated ${field.type}`, value);
    return value.map((v, i) => checkValue(v, field.type, scope, `${at}[${i}]`));
  }
  return checkValue(value, field.type, scope, at);
}

function checkValue(value: unknown, type: string, scope: string[], at: string): unknown {
  const kind = `TYPE_${type.toUpperCase()}`;
  if (type === 'string') {
    if (typeof value === 'string') return value;
  } else if (type === 'bool') {
    if (typeof value === 'boolean') return value;
  } else if (INT32.has(type) || INT64.has(type)) {
    const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
    const unsigned = type.startsWith('u') || type.startsWith('fixed');
    const bits = INT32.has(type) ? 32 : 64;
    if (typeof n === 'number' && Number.isSafeInteger(n) && (!unsigned || n >= 0) && Math.abs(n) < 2 ** (bits - 1) * (unsigned ? 2 : 1)) {
      return bits === 32 ? n : String(n);
    }
  } else if (type === 'double' || type === 'float') {
    if (typeof value === 'number' || (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)))) return Number(value);
  } else if (type === 'bytes') {
    if (typeof value === 'string' && /^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) return value;
  } else {
    return checkType(value, resolve(type, scope), at);
  }
  throw invalid(at, kind, value);
}

function checkEnum(value: unknown, values: Record<string, number>, type: string, at: string): string {
  const byNumber = Object.entries(values).find(([, n]) => n === value)?.[0];
  if (typeof value === 'string' && value in values) return value;
  if (byNumber !== undefined) return byNumber;
  throw invalid(at, `type.googleapis.com/${type}`, value);
}
