// What `make gcp-setup` checks before a first Batch run, each in one line that says what is wrong
// and the command that fixes it: the credentials, then per project of the `batch:` entries the
// project itself, the Batch and Secret Manager APIs, and the permissions the credentials hold
// there (testIamPermissions). Plain REST calls through the credentials' own client, to the
// Google APIs (or, with SWITCHYARD_BATCH_ENDPOINT, to the emulator the tests run).
import { CONFIG_FILE, type Config } from '../config/load-config.js';
import { UserError } from '../ui/errors.js';
import { openProjectGoogleAccess, type GoogleAccess } from './client.js';
import { entryNamed } from '../config/entry-named.js';

export interface SetupCheck {
  ok: boolean;
  /** what was checked and what was found; for a failure, the fix after `; ` */
  line: string;
}

/** APIs a Batch run uses, by service name, with what they are for. */
export const APIS: readonly [string, string][] = [
  ['batch.googleapis.com', 'Batch API'],
  ['secretmanager.googleapis.com', 'Secret Manager API'],
];

/** What the credentials submitting jobs need in the project: create, follow and delete jobs, and run them as the VMs' service account. */
export const PERMISSIONS: readonly string[] = [
  'batch.jobs.create',
  'batch.jobs.get',
  'batch.jobs.list',
  'batch.jobs.delete',
  'batch.tasks.list',
  'iam.serviceAccounts.actAs',
];

/** The roles that grant PERMISSIONS. */
const ROLES = ['roles/batch.jobsEditor', 'roles/iam.serviceAccountUser'];

type Call = (method: 'GET' | 'POST', url: string, body?: object) => Promise<{ status: number; data: Record<string, unknown> }>;

function caller(access: GoogleAccess): Call {
  return async (method, url, body) => {
    const res = await access.auth.request<Record<string, unknown>>({ method, url, data: body, validateStatus: () => true, retry: false, timeout: 20_000 });
    return { status: res.status, data: res.data ?? {} };
  };
}

const why = (r: { status: number; data: Record<string, unknown> }) => {
  const err = r.data.error as { status?: string; message?: string } | undefined;
  return `${r.status}${err?.status ? ` ${err.status}` : ''}${err?.message ? `: ${err.message.split('\n')[0]}` : ''}`;
};

/** The checks of one project, in order; a project that cannot be read ends its checks there. */
export async function checkProject(access: GoogleAccess, project: string, field: string): Promise<SetupCheck[]> {
  const call = caller(access);
  const crm = access.api('cloudresourcemanager');
  const got = await call('GET', `${crm}/v1/projects/${project}`);
  if (got.status === 401) return [{ ok: false, line: `credentials: refused by Google (${why(got)}); run \`gcloud auth application-default login\` again, or download a new service-account key` }];
  if (got.status !== 200) {
    return [{ ok: false, line: `project ${project}: not found, or these credentials cannot see it (${why(got)}); check ${field} (gcloud projects list names the ones you can use)` }];
  }
  const checks: SetupCheck[] = [{ ok: got.data.lifecycleState === 'ACTIVE', line: `project ${project}: ${String(got.data.lifecycleState ?? 'state unknown').toLowerCase()}` }];
  if (!checks[0]!.ok) checks[0]!.line += `; restore it: gcloud projects undelete ${project}`;
  const su = access.api('serviceusage');
  for (const [service, title] of APIS) {
    const r = await call('GET', `${su}/v1/projects/${project}/services/${service}`);
    const enabled = r.status === 200 && r.data.state === 'ENABLED';
    const state = r.status === 200 ? 'not enabled' : `cannot be checked (${why(r)})`;
    checks.push({ ok: enabled, line: enabled ? `${title} (${service}) enabled in ${project}` : `${title} (${service}) ${state} in ${project}; gcloud services enable ${service} --project ${project}` });
  }
  const r = await call('POST', `${crm}/v1/projects/${project}:testIamPermissions`, { permissions: PERMISSIONS });
  if (r.status !== 200) {
    checks.push({ ok: false, line: `permissions in ${project} cannot be checked (${why(r)}); the credentials need resourcemanager.projects.get there` });
    return checks;
  }
  const granted = new Set((r.data.permissions as string[] | undefined) ?? []);
  const missing = PERMISSIONS.filter((p) => !granted.has(p));
  const member = access.email ? `serviceAccount:${access.email}` : 'user:<your account>';
  checks.push(
    missing.length
      ? { ok: false, line: `permissions in ${project}: ${missing.join(', ')} missing; grant ${ROLES.join(' and ')}: ${ROLES.map((role) => `gcloud projects add-iam-policy-binding ${project} --member=${member} --role=${role}`).join(' && ')}` }
      : { ok: true, line: `permissions in ${project}: ${PERMISSIONS.length} of ${PERMISSIONS.length} (${PERMISSIONS.join(', ')})` },
  );
  return checks;
}

/**
 * Every check, each said as it lands: the credentials, then each project of the entries (the one
 * named, or all). Returns how many failed; without credentials nothing else is checked.
 */
export async function gcpSetup(opts: { root: string; config: Config; entry?: string; env?: NodeJS.ProcessEnv; say: (c: SetupCheck) => void }): Promise<number> {
  const { config, say } = opts;
  const entries = opts.entry ? [entryNamed(config, 'batch', opts.entry)] : Object.keys(config.batch);
  if (!entries.length) entryNamed(config, 'batch', undefined); // none configured: its one line
  let access: GoogleAccess;
  try {
    access = await openProjectGoogleAccess(opts.root, opts.env);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    say({ ok: false, line: `credentials: ${err.message}` });
    return 1;
  }
  say({ ok: true, line: `credentials: ${access.what}${access.email ? ` (${access.email})` : ''}` });
  const projects = new Map<string, string>();
  for (const e of entries) if (!projects.has(config.batch[e]!.project)) projects.set(config.batch[e]!.project, `${CONFIG_FILE}: batch.${e}.project`);
  let failed = 0;
  for (const [project, field] of projects) {
    for (const check of await checkProject(access, project, field)) {
      say(check);
      if (!check.ok) failed++;
    }
  }
  return failed;
}
