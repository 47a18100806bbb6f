// NODE_EXTRA_CA_CERTS narrowed to what it adds. Node 20 parses that file at every start, before
// any script runs, whether or not the process ever speaks TLS: ~0.1 ms a certificate on a 2-core
// VM, and a file such as the system's ca-certificates.crt (a common choice, to add one company
// CA) repeats most of the roots node bundles. Node trusts its bundled roots and the file's
// certificates; dropping only exact copies of bundled roots leaves that trust as it was.

import path from 'node:path';

/** Where make keeps the narrowed copy of the file at `source` (the Makefile's EXTRA_CA), in repository `root`. */
export const narrowedCaFile = (root: string, source: string): string => path.join(root, 'dist', 'extra-ca', path.resolve(root, source).replaceAll('/', '_'));

/** One PEM block, label and all; text between blocks is skipped (so OpenSSL reads it). */
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** A certificate's base64 body, whatever its line breaks: equal bodies are the same DER bytes. */
const body = (pem: string) => pem.replace(/-----(BEGIN|END) [A-Z0-9 ]+-----/g, '').replace(/\s+/g, '');

/**
 * The blocks of `pem` (a NODE_EXTRA_CA_CERTS file) that are not a certificate of `bundled`,
 * in their order: anything else (another root, a malformed block) is kept as it was written.
 */
export function narrowExtraCa(pem: string, bundled: readonly string[]): string {
  const known = new Set(bundled.map(body));
  const kept = [...pem.matchAll(PEM_BLOCK)].filter((m) => m[1] !== 'CERTIFICATE' || !known.has(body(m[0]))).map((m) => m[0]);
  return kept.length ? `${kept.join('\n')}\n` : '';
}

/**
 * Whether node's default trust is its bundled roots (which narrowing assumes) rather than
 * OpenSSL's store: a build made with --openssl-use-def-ca-store, or --use-openssl-ca given.
 */
export function trustsBundledRoots(execArgv: readonly string[], nodeOptions: string, usesDefaultStore: boolean): boolean {
  const flags = [...execArgv, ...nodeOptions.split(/\s+/)];
  const last = flags.filter((f) => f === '--use-openssl-ca' || f === '--use-bundled-ca').at(-1);
  return last ? last === '--use-bundled-ca' : !usesDefaultStore;
}
