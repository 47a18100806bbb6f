// S3 plumbing for S3Store: settings from config + .env, the SDK client, and the translation of
// configuration failures (bad keys, missing bucket, unreachable endpoint) into one-line UserErrors.
import { S3Client } from '@aws-sdk/client-s3';
import type { S3Config } from '../config/load-config.js';
import { UserError } from '../ui/errors.js';

export { parseS3Url } from './s3-url.js';

export interface S3ClientSettings {
  /** `http(s)://host:port` of an S3-compatible server; undefined for AWS itself */
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  /** undefined: the SDK's default chain (~/.aws, SSO, instance roles) */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** what to tell people to fix when the endpoint is unreachable */
  endpointSetting?: string;
}

/** Settings for an s3:// store. AWS_REGION / AWS_ENDPOINT_URL_S3 override the config, as in the AWS tools. */
export function s3Settings(config: S3Config | undefined, env: Record<string, string | undefined>): S3ClientSettings {
  const endpoint = env.AWS_ENDPOINT_URL_S3 || config?.endpoint;
  const keyId = env.AWS_ACCESS_KEY_ID;
  const secret = env.AWS_SECRET_ACCESS_KEY;
  return {
    endpoint,
    endpointSetting: env.AWS_ENDPOINT_URL_S3 ? 'AWS_ENDPOINT_URL_S3' : 'defaults.s3.endpoint',
    region: env.AWS_REGION || config?.region || 'us-east-1',
    forcePathStyle: config?.force_path_style ?? false,
    credentials: keyId && secret ? { accessKeyId: keyId, secretAccessKey: secret, sessionToken: env.AWS_SESSION_TOKEN || undefined } : undefined,
  };
}

/** `socketTimeout`: ms without a byte before a request fails (and is retried). */
export function makeClient(s: S3ClientSettings, maxAttempts: number, socketTimeout = 120_000): S3Client {
  // Node 20 is supported here; the SDK's notice that its 2027 releases need Node 22 is for maintainers.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const client = new S3Client({
    region: s.region,
    endpoint: s.endpoint,
    forcePathStyle: s.forcePathStyle,
    credentials: s.credentials,
    maxAttempts,
    retryMode: 'standard',
    // Only checksums an operation requires: some S3-compatible servers store aws-chunked framing
    // inside objects sent with the default CRC32 trailers. Integrity is checked with SHA-256 instead.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: 5_000, socketTimeout },
  });
  client.middlewareStack.add(unsignedWhenMd5 as never, { step: 'build', name: 'switchyardUnsignedWhenMd5' });
  return client;
}

/**
 * A body sent with Content-MD5 is checked by the server byte for byte, and by us again through
 * its SHA-256: signing its SHA-256 as well (SigV4's default) costs a third hash of every byte.
 * Such requests are signed with UNSIGNED-PAYLOAD; the headers, and so the MD5, stay signed.
 */
const unsignedWhenMd5 =
  (next: (args: { request: unknown }) => Promise<unknown>) =>
  async (args: { request: unknown }) => {
    const headers = (args.request as { headers?: Record<string, string> }).headers;
    if (headers?.['content-md5']) headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
    return next(args);
  };

const ACCESS = new Set(['AccessDenied', 'Forbidden', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'TokenRefreshRequired']);
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT']);

interface SdkError {
  name?: string;
  message?: string;
  code?: string;
  errors?: { code?: string }[];
  $metadata?: { httpStatusCode?: number };
}

/** The one-line UserError for a failure the user must fix in config or .env, else null. */
export function configProblem(err: unknown, url: string, bucket: string, s: S3ClientSettings): UserError | null {
  const e = (err ?? {}) as SdkError;
  const name = e.name ?? '';
  const code = e.code ?? e.errors?.find((x) => x.code)?.code ?? '';
  const status = e.$metadata?.httpStatusCode;
  const say = (what: string) => new UserError(`store ${url}: ${what}`);
  if (name === 'NoSuchBucket') return say(`bucket "${bucket}" does not exist; create it or fix defaults.store in cluster_fleet_config.ts`);
  if (ACCESS.has(name) || status === 403) {
    const why = name && name !== 'AccessDenied' && name !== 'Forbidden' ? ` (${name})` : '';
    return say(`access denied${why}; check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in .env`);
  }
  if (name === 'CredentialsProviderError') return say('no AWS credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in .env');
  const where = s.endpoint ?? `https://s3.${s.region}.amazonaws.com`;
  const connectTimeout = name === 'TimeoutError' && /establish a connection/.test(e.message ?? '');
  if (UNREACHABLE.has(code) || connectTimeout) {
    const fix = s.endpoint ? `check ${s.endpointSetting ?? 'defaults.s3.endpoint'}` : 'check the network and defaults.s3.region';
    return say(`cannot reach ${where} (${connectTimeout ? 'connect timeout' : code}); ${fix}`);
  }
  if (name === 'TimeoutError') return say(`${where} stopped answering (${e.message?.match(/\d+ ms/)?.[0] ?? 'timeout'} without data); try again, or check the server`);
  if (name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed' || status === 301) {
    return say(`bucket "${bucket}" is not in region ${s.region}; set defaults.s3.region (or AWS_REGION)`);
  }
  return null;
}

/** configProblem for the first listing of a store, where a bare 404 (no S3 error code) means no such bucket here. */
export function probeProblem(err: unknown, url: string, bucket: string, s: S3ClientSettings): UserError | null {
  const known = configProblem(err, url, bucket, s);
  if (known || (err as SdkError)?.$metadata?.httpStatusCode !== 404) return known;
  const where = s.endpoint ?? `https://s3.${s.region}.amazonaws.com`;
  return new UserError(`store ${url}: ${where} has no bucket "${bucket}" (HTTP 404, not an S3 reply?); check defaults.s3.endpoint and defaults.store`);
}
