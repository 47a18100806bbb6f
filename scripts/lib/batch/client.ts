// Opens the Cloud Batch API client. Credentials: GOOGLE_APPLICATION_CREDENTIALS (a service-account
// key file; .env wins over the environment) or else Application Default Credentials; none found is
// a one-line UserError before any request. Tests pass `token` and a local endpoint instead.
// The client talks REST (`fallback: true`) everywhere, so the tests' stand-in sees the very
// requests production sends. Both libraries load lazily: only the Batch route pays for them.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { BatchServiceClient } from '@google-cloud/batch';
import type { AuthClient } from 'google-auth-library';
import { readDotEnv } from '../secrets/dotenv.js';
import { UserError } from '../ui/errors.js';

export interface BatchClientOptions {
  /** project root: where `.env` is read */
  root: string;
  /** an API host other than batch.googleapis.com (the tests' stand-in: 127.0.0.1) */
  apiEndpoint?: string;
  port?: number;
  protocol?: 'http' | 'https';
  /** a preset OAuth access token, used as is instead of looking for credentials */
  token?: string;
}

const SCOPES = ['https://www.googleapis.com/auth/cloud-platform'];

/**
 * The client for the project, pointed at a Batch API emulator when SWITCHYARD_BATCH_ENDPOINT
 * (`http://127.0.0.1:<port>`) is set, with SWITCHYARD_BATCH_TOKEN as its access token: the one
 * place the tests' stand-in comes in. Unset, it talks to Google with the project's credentials.
 */
export function openProjectBatchClient(root: string, env: NodeJS.ProcessEnv = process.env): Promise<BatchServiceClient> {
  return openBatchClient(projectClientOptions(root, env));
}

function projectClientOptions(root: string, env: NodeJS.ProcessEnv): BatchClientOptions {
  const endpoint = env.SWITCHYARD_BATCH_ENDPOINT;
  if (!endpoint) return { root };
  const url = URL.canParse(endpoint) ? new URL(endpoint) : null;
  if (!url || !/^https?:$/.test(url.protocol) || !url.port) throw new UserError(`SWITCHYARD_BATCH_ENDPOINT: ${JSON.stringify(endpoint)} is not http(s)://<host>:<port>; unset it to reach Google`);
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  return { root, apiEndpoint: url.hostname, port: Number(url.port), protocol, token: env.SWITCHYARD_BATCH_TOKEN ?? '' };
}

/** Google credentials as found for the project, with what they are, and where each Google API is reached. */
export interface GoogleAccess {
  auth: AuthClient;
  /** for people: which credentials these are */
  what: string;
  /** the service account's email, when the credentials are one's */
  email: string | null;
  /** the base URL of a Google API by its host name's first label (`serviceusage`, `cloudresourcemanager`) */
  api(name: string): string;
}

/** The project's credentials (or the emulator's token, as openProjectBatchClient): no credentials is one line. */
export async function openProjectGoogleAccess(root: string, env: NodeJS.ProcessEnv = process.env): Promise<GoogleAccess> {
  const opts = projectClientOptions(root, env);
  if (opts.token !== undefined) {
    const base = `${opts.protocol}://${opts.apiEndpoint}:${opts.port}`;
    return { auth: await tokenClient(opts.token), what: `the emulator's token (SWITCHYARD_BATCH_ENDPOINT ${base})`, email: null, api: () => base };
  }
  const found = await findCredentials(root);
  return { ...found, api: (name) => `https://${name}.googleapis.com` };
}

export async function openBatchClient(opts: BatchClientOptions): Promise<BatchServiceClient> {
  const authClient = opts.token === undefined ? (await findCredentials(opts.root)).auth : await tokenClient(opts.token);
  keepErrorResponses(authClient);
  const { BatchServiceClient } = await import('@google-cloud/batch');
  const endpoint = opts.apiEndpoint ? { apiEndpoint: opts.apiEndpoint, port: opts.port, protocol: opts.protocol } : {};
  // as never: the client types authClient with its own (older) copy of google-auth-library's classes
  return new BatchServiceClient({ fallback: true, authClient: authClient as never, ...endpoint });
}

async function tokenClient(token: string): Promise<AuthClient> {
  const { OAuth2Client } = await import('google-auth-library');
  const client = new OAuth2Client();
  client.setCredentials({ access_token: token });
  return client;
}

async function findCredentials(root: string): Promise<Omit<GoogleAccess, 'api'>> {
  const fromDotEnv = readDotEnv(root).GOOGLE_APPLICATION_CREDENTIALS;
  const keyFile = fromDotEnv || process.env.GOOGLE_APPLICATION_CREDENTIALS;
  const where = fromDotEnv ? '.env: GOOGLE_APPLICATION_CREDENTIALS' : 'GOOGLE_APPLICATION_CREDENTIALS';
  const keyFilename = keyFile ? path.resolve(root, keyFile) : undefined;
  if (keyFilename && !existsSync(keyFilename)) {
    throw new UserError(`${where}: no such file ${keyFilename}; set it to a service-account key file (JSON)`);
  }
  const { GoogleAuth } = await import('google-auth-library');
  try {
    // The key is read here, not by the library: given a file name, it would read it at the first request.
    const credentials = keyFilename ? (JSON.parse(readFileSync(keyFilename, 'utf8')) as { client_email?: string }) : undefined;
    const auth = new GoogleAuth({ credentials, scopes: SCOPES });
    const client = await auth.getClient();
    if (keyFilename) return { auth: client, what: `the service-account key ${keyFilename} (${where})`, email: credentials?.client_email ?? null };
    const email = (await auth.getCredentials().catch(() => ({ client_email: undefined }))).client_email ?? null;
    return { auth: client, what: 'Application Default Credentials', email };
  } catch (err) {
    const reason = (err as Error).message;
    if (keyFilename) throw new UserError(`${where}: ${keyFilename} is not a usable key file (${reason}); download a service-account key (JSON)`);
    if (!reason.startsWith('Could not load the default credentials')) {
      throw new UserError(`Application Default Credentials: ${reason}; run \`gcloud auth application-default login\` again`);
    }
    throw new UserError(
      'no Google Cloud credentials found; run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS=<service-account key file> in .env',
    );
  }
}

/**
 * The REST transport expects an error reply back as a response, which it turns into a GoogleError
 * with the gRPC status as `code` (3 INVALID_ARGUMENT, 5 NOT_FOUND, 6 ALREADY_EXISTS). The auth
 * client's fetch throws on any non-2xx instead, leaving the HTTP status on `code` and the gax
 * retries (which match gRPC codes) dead: googleapis/gax-nodejs#1803, in the gax 5 that
 * @google-cloud/batch 2.x uses. Letting every status through restores the designed path.
 */
function keepErrorResponses(client: AuthClient): void {
  const fetch = client.fetch.bind(client) as (input: unknown, init?: object) => Promise<Response>;
  client.fetch = ((input: unknown, init?: object) => fetch(input, { ...init, validateStatus: () => true })) as AuthClient['fetch'];
}
