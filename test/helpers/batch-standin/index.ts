// A local stand-in for the Cloud Batch v1 REST API, so tests drive the real @google-cloud/batch
// client (Google Cloud is unreachable from here). For projects/{p}/locations/{l} it serves
// createJob (POST …/jobs?jobId=), getJob, listJobs, deleteJob (an Operation, already done),
// listTasks (pageSize/pageToken) and getTask of task group `group0`. Every request needs a Bearer
// token (the stand-in's own, see `clientOptions`). A created Job is checked field by field
// against the v1 messages shipped with the client (proto-check.ts) and against job-rules.ts;
// errors answer {error:{code,message,status}} as Google APIs do. Task group 0 runs as local
// processes (jobs.ts), or is held RUNNING without any (`holdTasks`). Replies are canonical REST
// JSON (enums as names, int64 as strings), which the client decodes whatever enum encoding it
// asked for. Beside Batch it answers the Resource Manager and Service Usage calls of
// `make gcp-setup` (project, service state, testIamPermissions) for the `projects` a test sets.
// Test side: `requests()` counts API calls by method, `waitFor` awaits a job or task event,
// `preempt` ends a running task as a Spot preemption, `close` kills every task and the server.
// Not simulated: VMs (allocationPolicy is checked, then ignored), volumes, Cloud Logging (a task's
// output goes to logFile()), cancelJob, list filters, requestId de-duplication.
import { randomBytes, randomUUID, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { checkJobRules, type JobSpec } from './job-rules.js';
import { Executor, Job, type StandinEvent } from './jobs.js';
import { checkMessage, InvalidArgument } from './proto-check.js';

export { PAST_MAX_RUN_DURATION, PREEMPTED, type StandinEvent } from './jobs.js';

export interface StandinOptions {
  /** Secret Manager version names (`projects/p/secrets/s/versions/1`) → values, for secretVariables */
  secrets?: Record<string, string>;
  /** run a container runnable's entrypoint + commands as a local command (otherwise such a job is refused) */
  runContainersLocally?: boolean;
  /** the environment tasks start from (default: PATH and HOME of this process) */
  env?: Record<string, string>;
  /**
   * service-account email → its public key (PEM): a self-signed JWT from that account is
   * accepted as a token too, as the client sends when it holds a service-account key file
   */
  serviceAccounts?: Record<string, string>;
  /** tasks go RUNNING and stay so without a process: a job of thousands of tasks costs no processes */
  holdTasks?: boolean;
}

/**
 * A project as Cloud Resource Manager and Service Usage see it, for `make gcp-setup`: the
 * services enabled in it and the permissions the caller holds there. A project not listed is
 * one the caller cannot see (403, as Google answers for a project that does not exist too).
 */
export interface StandinProject {
  state?: 'ACTIVE' | 'DELETE_REQUESTED';
  services: string[];
  granted: string[];
}

export interface BatchStandin {
  /** spread into openBatchClient: apiEndpoint, port, protocol and the access token it accepts */
  clientOptions: { apiEndpoint: string; port: number; protocol: 'http'; token: string };
  /** API requests received, by method (createJob, getJob, listJobs, deleteJob, listTasks, getTask, getProject, getService, testIamPermissions, unknown) */
  requests(): Record<string, number>;
  /** projects by ID, for the Resource Manager and Service Usage calls of `make gcp-setup`; change them at will */
  projects: Record<string, StandinProject>;
  /** every job and task state change so far, in order */
  history: readonly StandinEvent[];
  waitFor(pred: (e: StandinEvent) => boolean, opts?: { from?: number; timeoutMs?: number; what?: string }): Promise<StandinEvent>;
  /** a live job (undefined once deleted): its tasks, their retries and `peakRunning` */
  job(name: string): Job | undefined;
  /** SIGKILLs task `index`'s process group, reports exit 50001 and applies the lifecycle policy */
  preempt(jobName: string, index: number): Promise<StandinEvent>;
  /** where task `index` of a job writes its stdout and stderr */
  logFile(jobName: string, index: number): string;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly status: string,
    message: string,
  ) {
    super(message);
  }
}

const LOCATION = String.raw`projects/[^/]+/locations/[^/]+`;
const JOB = `${LOCATION}/jobs/[^/:]+`;
const ROUTES = [
  { method: 'createJob', verb: 'POST', path: new RegExp(`^/v1/(${LOCATION})/jobs$`), request: 'CreateJobRequest' },
  { method: 'listJobs', verb: 'GET', path: new RegExp(`^/v1/(${LOCATION})/jobs$`), request: 'ListJobsRequest' },
  { method: 'getJob', verb: 'GET', path: new RegExp(`^/v1/(${JOB})$`), request: 'GetJobRequest' },
  { method: 'deleteJob', verb: 'DELETE', path: new RegExp(`^/v1/(${JOB})$`), request: 'DeleteJobRequest' },
  { method: 'listTasks', verb: 'GET', path: new RegExp(`^/v1/(${JOB})/taskGroups/([^/]+)/tasks$`), request: 'ListTasksRequest' },
  { method: 'getTask', verb: 'GET', path: new RegExp(`^/v1/(${JOB})/taskGroups/([^/]+)/tasks/([^/]+)$`), request: 'GetTaskRequest' },
] as const;
/** Cloud Resource Manager v1 and Service Usage v1, the calls `make gcp-setup` makes. */
const PROJECT_ROUTES = [
  { method: 'getProject', verb: 'GET', path: /^\/v1\/projects\/([^/:]+)$/ },
  { method: 'testIamPermissions', verb: 'POST', path: /^\/v1\/projects\/([^/:]+):testIamPermissions$/ },
  { method: 'getService', verb: 'GET', path: /^\/v1\/projects\/([^/:]+)\/services\/([^/:]+)$/ },
] as const;
const JOB_ID = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
const DEFAULT_PAGE_SIZE = 50;

export async function startBatchStandin(opts: StandinOptions = {}): Promise<BatchStandin> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'batch-standin-'));
  const token = randomBytes(16).toString('hex');
  const exec = new Executor({
    dir,
    secrets: opts.secrets ?? {},
    env: opts.env ?? { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' },
    holdTasks: opts.holdTasks,
  });
  const counts: Record<string, number> = {};
  const projects: Record<string, StandinProject> = {};

  const handle = async (req: http.IncomingMessage): Promise<{ code: number; body: unknown }> => {
    const url = new URL(req.url ?? '/', 'http://standin');
    const route = ROUTES.find((r) => r.verb === req.method && r.path.test(url.pathname));
    const projectRoute = PROJECT_ROUTES.find((r) => r.verb === req.method && r.path.test(url.pathname));
    const method = route?.method ?? projectRoute?.method ?? 'unknown';
    counts[method] = (counts[method] ?? 0) + 1;
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    if (bearer !== token && !isSignedBy(bearer, opts.serviceAccounts ?? {})) {
      throw new HttpError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials. Expected OAuth 2 access token.');
    }
    if (projectRoute) return projectCall(projectRoute.method, projectRoute.path.exec(url.pathname)!, req);
    if (!route) throw new HttpError(404, 'NOT_FOUND', `no Batch v1 method for ${req.method} ${url.pathname}`);
    const m = route.path.exec(url.pathname)!;
    const params = Object.fromEntries([...url.searchParams].filter(([k]) => !k.startsWith('$')));
    const query = checkMessage(params, route.request, route.request) as { jobId?: string; pageSize?: number; pageToken?: string; filter?: string; orderBy?: string };
    if (query.filter || query.orderBy) throw new HttpError(501, 'UNIMPLEMENTED', 'filter and orderBy are not supported by the stand-in');
    switch (route.method) {
      case 'createJob':
        return { code: 200, body: jobJson(createJob(m[1]!, query.jobId, await readJson(req))) };
      case 'listJobs': {
        const jobs = [...exec.jobs.values()].filter((j) => j.name.startsWith(`${m[1]}/jobs/`));
        const { items, nextPageToken } = page(jobs, query);
        return { code: 200, body: { jobs: items.map(jobJson), nextPageToken } };
      }
      case 'getJob':
        return { code: 200, body: jobJson(findJob(m[1]!)) };
      case 'deleteJob':
        return { code: 200, body: await deleteJob(findJob(m[1]!)) };
      case 'listTasks': {
        const job = findGroup(m[1]!, m[2]!);
        const { items, nextPageToken } = page(job.tasks, query);
        return { code: 200, body: { tasks: items.map((t) => taskJson(job, t)), nextPageToken } };
      }
      case 'getTask': {
        const job = findGroup(m[1]!, m[2]!);
        const task = job.tasks[Number(m[3])];
        if (!task || !/^\d+$/.test(m[3]!)) throw new HttpError(404, 'NOT_FOUND', `Task "${url.pathname.slice(4)}" not found`);
        return { code: 200, body: taskJson(job, task) };
      }
    }
  };

  const projectCall = async (method: (typeof PROJECT_ROUTES)[number]['method'], m: RegExpExecArray, req: http.IncomingMessage) => {
    const project = projects[m[1]!];
    if (!project) throw new HttpError(403, 'PERMISSION_DENIED', `The caller does not have permission, or project ${m[1]} does not exist`);
    switch (method) {
      case 'getProject':
        return { code: 200, body: { projectId: m[1], projectNumber: '123456789012', name: m[1], lifecycleState: project.state ?? 'ACTIVE' } };
      case 'getService': {
        const state = project.services.includes(m[2]!) ? 'ENABLED' : 'DISABLED';
        return { code: 200, body: { name: `projects/123456789012/services/${m[2]}`, parent: 'projects/123456789012', state } };
      }
      case 'testIamPermissions': {
        const asked = ((await readJson(req)) as { permissions?: string[] }).permissions ?? [];
        return { code: 200, body: { permissions: asked.filter((p) => project.granted.includes(p)) } };
      }
    }
  };

  const createJob = (parent: string, jobId: string | undefined, body: unknown): Job => {
    if (jobId !== undefined && !JOB_ID.test(jobId)) {
      throw new InvalidArgument(`Invalid value at 'job_id': "${jobId}" must be 1-63 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen`);
    }
    const id = jobId ?? `job-${randomUUID().slice(0, 8)}`;
    const name = `${parent}/jobs/${id}`;
    if (exec.jobs.has(name)) throw new HttpError(409, 'ALREADY_EXISTS', `Resource "${name}" already exists`);
    const spec = checkMessage(body, 'Job', 'job') as JobSpec;
    checkJobRules(spec, opts.runContainersLocally ?? false);
    const job = new Job(name, id, `${id}-${randomUUID()}`, spec);
    exec.add(job);
    return job;
  };

  const findJob = (name: string): Job => {
    const job = exec.jobs.get(name);
    if (!job) throw new HttpError(404, 'NOT_FOUND', `Job "${name}" not found`);
    return job;
  };
  const findGroup = (jobName: string, group: string): Job => {
    const job = findJob(jobName);
    if (group !== 'group0') throw new HttpError(404, 'NOT_FOUND', `TaskGroup "${jobName}/taskGroups/${group}" not found`);
    return job;
  };

  const deleteJob = async (job: Job) => {
    const createTime = new Date().toISOString();
    await exec.delete(job);
    const parent = job.name.slice(0, job.name.indexOf('/jobs/'));
    return {
      name: `${parent}/operations/operation-${randomUUID()}`,
      done: true,
      metadata: {
        '@type': 'type.googleapis.com/google.cloud.batch.v1.OperationMetadata',
        createTime,
        endTime: new Date().toISOString(),
        target: job.name,
        verb: 'delete',
        apiVersion: 'v1',
      },
      response: { '@type': 'type.googleapis.com/google.protobuf.Empty' },
    };
  };

  const server = http.createServer((req, res) => {
    handle(req).then(
      ({ code, body }) => reply(res, code, body),
      (err: unknown) => {
        const e = err instanceof HttpError ? err : err instanceof InvalidArgument ? new HttpError(400, 'INVALID_ARGUMENT', err.message) : null;
        if (!e) process.stderr.write(`batch stand-in: ${(err as Error).stack}\n`);
        const { code, status, message } = e ?? { code: 500, status: 'INTERNAL', message: String(err) };
        reply(res, code, { error: { code, message, status } });
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  const liveJob = (name: string) => {
    const job = exec.jobs.get(name);
    if (!job) throw new Error(`batch stand-in: no job ${name}`);
    return job;
  };
  let closed: Promise<void> | null = null;
  return {
    clientOptions: { apiEndpoint: '127.0.0.1', port, protocol: 'http', token },
    requests: () => ({ ...counts }),
    projects,
    history: exec.history,
    waitFor: (pred, o) => exec.waitFor(pred, o),
    job: (name) => exec.jobs.get(name),
    preempt: (name, index) => exec.preempt(liveJob(name), index),
    logFile: (name, index) => exec.logFile(liveJob(name), liveJob(name).tasks[index]!),
    close: () =>
      (closed ??= (async () => {
        server.close();
        server.closeAllConnections();
        await exec.close();
        rmSync(dir, { recursive: true, force: true });
      })()),
  };
}

/** A JWT (RS256) whose issuer is one of `accounts`, signed with its key, not expired. */
function isSignedBy(jwt: string, accounts: Record<string, string>): boolean {
  const [header, payload, signature] = jwt.split('.');
  if (!header || !payload || !signature) return false;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { iss?: string; exp?: number };
    const key = accounts[claims.iss ?? ''];
    return !!key && (claims.exp ?? 0) * 1000 > Date.now() && verify('RSA-SHA256', Buffer.from(`${header}.${payload}`), key, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}

function reply(res: http.ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify(body));
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new InvalidArgument('Invalid JSON payload received.');
  }
}

/** One page of `items` from the offset a page token holds. */
function page<T>(items: T[], q: { pageSize?: number; pageToken?: string }): { items: T[]; nextPageToken?: string } {
  const start = q.pageToken ? Number(Buffer.from(q.pageToken, 'base64url').toString()) : 0;
  if (!Number.isSafeInteger(start) || start < 0 || start > items.length) throw new InvalidArgument(`Invalid value at 'page_token': "${q.pageToken}"`);
  const end = start + (q.pageSize && q.pageSize > 0 ? q.pageSize : DEFAULT_PAGE_SIZE);
  return { items: items.slice(start, end), nextPageToken: end < items.length ? Buffer.from(String(end)).toString('base64url') : undefined };
}

function jobJson(job: Job): Record<string, unknown> {
  const counts: Record<string, string> = {};
  for (const t of job.tasks) counts[t.state] = String(Number(counts[t.state] ?? 0) + 1);
  const seconds = job.endTime ? (Date.parse(job.endTime) - Date.parse(job.createTime)) / 1000 : undefined;
  return {
    ...job.spec,
    name: job.name,
    uid: job.uid,
    taskGroups: [{ ...job.group, name: `${job.name}/taskGroups/group0`, taskCount: String(job.tasks.length), parallelism: String(job.parallelism) }],
    status: {
      state: job.state,
      statusEvents: job.events,
      taskGroups: { group0: { counts } },
      ...(seconds === undefined ? {} : { runDuration: `${seconds}s` }),
    },
    createTime: job.createTime,
    updateTime: job.updateTime,
  };
}

function taskJson(job: Job, task: Job['tasks'][number]): Record<string, unknown> {
  return { name: `${job.name}/taskGroups/group0/tasks/${task.index}`, status: { state: task.state, statusEvents: task.events } };
}
