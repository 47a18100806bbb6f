// s3:// store URLs: the bucket and key prefix they name, and the plain HTTP address of an
// object in them (what a worker without the SDK fetches, e.g. with curl). No SDK here, so any
// bundle may import it.
import type { S3Config } from '../config/load-config.js';
import { UserError } from '../ui/errors.js';

/** `s3://bucket/some/prefix` → bucket and the key prefix ("some/prefix/", or "" at the root). */
export function parseS3Url(url: string): { bucket: string; base: string } {
  const m = /^s3:\/\/([A-Za-z0-9][A-Za-z0-9._-]*)(?:\/(.*))?$/.exec(url);
  if (!m) throw new UserError(`store ${url}: not an s3://bucket/prefix URL; fix defaults.store in cluster_fleet_config.ts`);
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  return { bucket: m[1]!, base: prefix ? `${prefix}/` : '' };
}

/**
 * The HTTP(S) address of `key` in the store at `url`, as the SDK would reach it with these
 * settings: the endpoint's host (AWS's regional one when none is set), the bucket in the host
 * name or, with force_path_style (or a bucket name with dots, which TLS names cannot hold), in
 * the path.
 */
export function s3ObjectHttpUrl(url: string, s3: S3Config | null, key: string): string {
  const { bucket, base } = parseS3Url(url);
  const region = s3?.region ?? 'us-east-1';
  const endpoint = new URL(s3?.endpoint ?? `https://s3.${region}.amazonaws.com`);
  const path = `${base}${key}`.split('/').map(encodeURIComponent).join('/');
  const origin = endpoint.origin.replace(/\/$/, '');
  if (s3?.force_path_style || bucket.includes('.')) return `${origin}/${bucket}/${path}`;
  return `${endpoint.protocol}//${bucket}.${endpoint.host}/${path}`;
}
