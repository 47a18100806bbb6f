// node dist/scripts/narrow-extra-ca.js: run by make before a cached verb (see the Makefile). Writes
// the certificates of NODE_EXTRA_CA_CERTS that this node does not bundle to SWITCHYARD_EXTRA_CA,
// which the cached verbs start with in its place (scripts/lib/extra-ca.ts says why). Under
// OpenSSL's store the file is copied whole: there, bundled roots are not trusted by default.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { narrowExtraCa, trustsBundledRoots } from './lib/extra-ca.js';

const source = process.env.NODE_EXTRA_CA_CERTS;
const dest = process.env.SWITCHYARD_EXTRA_CA;
if (!source || !dest) {
  console.error('narrow-extra-ca: run by make, with NODE_EXTRA_CA_CERTS and SWITCHYARD_EXTRA_CA set');
  process.exit(2);
}
let pem = '';
try {
  pem = readFileSync(source, 'latin1');
} catch (err) {
  // Node itself would warn and trust nothing from it: so does the narrowed (empty) file.
  console.error(`switchyard: NODE_EXTRA_CA_CERTS ${source} cannot be read (${(err as NodeJS.ErrnoException).code}): its certificates are not trusted`);
}
const usesDefaultStore = (process.config.variables as { openssl_use_def_ca_store?: boolean }).openssl_use_def_ca_store === true;
const narrowed = trustsBundledRoots(process.execArgv, process.env.NODE_OPTIONS ?? '', usesDefaultStore) ? narrowExtraCa(pem, tls.rootCertificates) : pem;
mkdirSync(path.dirname(dest), { recursive: true });
const tmp = `${dest}.${process.pid}.tmp`;
writeFileSync(tmp, narrowed, 'latin1');
renameSync(tmp, dest); // whole or not at all, when two makes start at once
