// What `make init` asks, each answer one line: the store, then the hosts, fleets, SLURM clusters
// and Batch entries as space-separated `name=value` items. An answer given as a make variable
// (store=, hosts=, ...) is taken as it is; `-` is the empty list. Pure: parse, format, apply.
import type { SwitchyardConfig } from '../config/define-config.js';
import { UserError } from '../ui/errors.js';

export type RawConfig = SwitchyardConfig;

export interface Question {
  /** the make variable that answers it */
  key: 'store' | 's3_endpoint' | 'hosts' | 'identity_file' | 'fleets' | 'clusters' | 'batch';
  prompt: string;
  /** the current answer: what the config says now (empty: none) */
  current: (c: RawConfig) => string;
  /** asked only when it applies; given as a make variable when it does not, refused saying `why` */
  applies?: { when: (c: RawConfig) => boolean; why: string };
  apply: (c: RawConfig, answer: string) => RawConfig;
}

const items = (answer: string) => (answer.trim() === '-' ? [] : answer.split(/\s+/).filter(Boolean));

function pairs(key: string, answer: string, example: string): [string, string][] {
  const named = new Set<string>();
  return items(answer).map((item) => {
    const at = item.indexOf('=');
    if (at < 1 || at === item.length - 1) throw new UserError(`${key}: ${JSON.stringify(item)} is not name=value; e.g. ${key}="${example}"`);
    const name = item.slice(0, at);
    // Kept as an object, a name given twice would silently keep only its last value.
    if (named.has(name)) throw new UserError(`${key}: ${name} is given twice; give each name once, e.g. ${key}="${example}"`);
    named.add(name);
    return [name, item.slice(at + 1)];
  });
}

/** `[user@]host[:port]` */
function parseAddress(name: string, v: string): { host: string; port?: number; user?: string } {
  const m = /^(?:([^@\s]+)@)?([^@:\s]+)(?::(\d+))?$/.exec(v);
  if (!m) throw new UserError(`hosts: ${name}=${v} is not [user@]host[:port]; e.g. hosts="h1=root@10.0.0.5:2222"`);
  return { ...(m[1] ? { user: m[1] } : {}), host: m[2]!, ...(m[3] && m[3] !== '22' ? { port: Number(m[3]) } : {}) };
}

const address = (h: { host: string; port?: number; user?: string }) => `${h.user ? `${h.user}@` : ''}${h.host}${h.port && h.port !== 22 ? `:${h.port}` : ''}`;
const list = (entries: Record<string, unknown> | undefined, f: (name: string, e: never) => string) =>
  Object.entries(entries ?? {}).map(([n, e]) => `${n}=${f(n, e as never)}`).join(' ');

/** Keeps what an entry of the same name already had besides what the answer sets. */
function merged<T extends object>(old: Record<string, T> | undefined, next: [string, Partial<T>][]): Record<string, T> {
  return Object.fromEntries(next.map(([name, fields]) => [name, { ...(old?.[name] ?? {}), ...fields } as T]));
}

export const QUESTIONS: Question[] = [
  {
    key: 'store',
    prompt: 'store: where runs are kept (file://<folder> or s3://bucket/prefix)',
    current: (c) => c.defaults?.store ?? 'file://.switchyard/store',
    apply: (c, a) => ({ ...c, defaults: { ...c.defaults, store: a.trim() } }),
  },
  {
    key: 's3_endpoint',
    prompt: 's3_endpoint: an S3-compatible server (http(s)://host:port), - for AWS',
    current: (c) => c.defaults?.s3?.endpoint ?? '-',
    applies: { when: (c) => Boolean(c.defaults?.store?.startsWith('s3://')), why: 'the store is not s3://; give store=s3://<bucket>/<prefix> too' },
    apply: (c, a) => {
      const { endpoint: _, ...s3 } = c.defaults?.s3 ?? {};
      const endpoint = a.trim() === '-' ? undefined : a.trim();
      // a server of its own is addressed host/bucket/key by almost every S3-compatible server
      const next = endpoint ? { ...s3, endpoint, force_path_style: s3.force_path_style ?? true } : s3;
      const { s3: __, ...defaults } = c.defaults ?? {};
      return { ...c, defaults: { ...defaults, ...(Object.keys(next).length ? { s3: next } : {}) } };
    },
  },
  {
    key: 'hosts',
    prompt: 'hosts: ssh boxes as name=[user@]host[:port], space-separated, - for none',
    current: (c) => list(c.hosts, (_, h: { host: string; port?: number; user?: string }) => address(h)) || '-',
    apply: (c, a) => ({ ...c, hosts: merged(c.hosts, pairs('hosts', a, 'h1=root@10.0.0.5:2222').map(([n, v]) => [n, parseAddress(n, v)])) }),
  },
  {
    key: 'identity_file',
    prompt: 'identity_file: the ssh key for hosts that name none, - for the ssh-agent',
    current: () => '-',
    applies: { when: (c) => Object.values(c.hosts ?? {}).some((h) => !h.identity_file), why: 'no host is left without an identity_file of its own; give hosts= too' },
    apply: (c, a) => (a.trim() === '-' ? c : { ...c, hosts: Object.fromEntries(Object.entries(c.hosts ?? {}).map(([n, h]) => [n, h.identity_file ? h : { ...h, identity_file: a.trim() }])) }),
  },
  {
    key: 'fleets',
    prompt: 'fleets: groups of hosts as name=h1,h2, space-separated, - for none',
    current: (c) => list(c.fleets, (_, f: string[] | { hosts: string[] }) => (Array.isArray(f) ? f : f.hosts).join(',')) || '-',
    applies: { when: (c) => Object.keys(c.hosts ?? {}).length > 0, why: 'there are no hosts to group; give hosts= too, e.g. hosts="h1=root@10.0.0.5 h2=10.0.0.6"' },
    apply: (c, a) => ({
      ...c,
      fleets: Object.fromEntries(
        pairs('fleets', a, 'lab=h1,h2').map(([n, v]) => {
          const hosts = v.split(',').filter(Boolean);
          const old = c.fleets?.[n];
          return [n, old && !Array.isArray(old) ? { ...old, hosts } : hosts];
        }),
      ),
    }),
  },
  {
    key: 'clusters',
    prompt: 'clusters: SLURM clusters as name=<login host or local>[:partition], - for none',
    current: (c) => list(c.clusters, (_, k: { login?: string; partition?: string }) => `${k.login ?? 'local'}${k.partition ? `:${k.partition}` : ''}`) || '-',
    apply: (c, a) => ({
      ...c,
      clusters: merged(
        c.clusters,
        pairs('clusters', a, 'hpc=local:gpu').map(([n, v]) => {
          const [login, partition, extra] = v.split(':');
          if (!login || partition === '' || extra !== undefined) throw new UserError(`clusters: ${n}=${v} is not <login host or local>[:partition]; e.g. clusters="hpc=local:gpu"`);
          return [n, { ...(login && login !== 'local' ? { login } : {}), ...(partition ? { partition } : {}) }];
        }),
      ),
    }),
  },
  {
    key: 'batch',
    prompt: 'batch: Google Cloud Batch targets as name=<project>/<region>/<machine type>, - for none',
    current: (c) => list(c.batch, (_, b: { project: string; region: string; machine_type: string }) => `${b.project}/${b.region}/${b.machine_type}`) || '-',
    apply: (c, a) => ({
      ...c,
      batch: merged(
        c.batch,
        pairs('batch', a, 'gpu=my-project/us-central1/n2-standard-4').map(([n, v]) => {
          const [project, region, machine_type, extra] = v.split('/');
          if (!project || !region || !machine_type || extra !== undefined) throw new UserError(`batch: ${n}=${v} is not <project>/<region>/<machine type>; e.g. batch="gpu=my-project/us-central1/n2-standard-4"`);
          const old = c.batch?.[n];
          // The store's keys as Secret Manager versions to create (a job never holds a value).
          const secrets = old?.secrets ?? {
            AWS_ACCESS_KEY_ID: `projects/${project}/secrets/store-key-id/versions/latest`,
            AWS_SECRET_ACCESS_KEY: `projects/${project}/secrets/store-secret-key/versions/latest`,
          };
          return [n, { project, region, machine_type, secrets }];
        }),
      ),
    }),
  },
];
