// make's cached verbs start with NODE_EXTRA_CA_CERTS narrowed to what it adds to node's own roots
// (the Makefile, scripts/lib/extra-ca.ts). The trust must stay what the user set: a store reached
// over https with a certificate only that file vouches for still answers make train; the narrowed
// file holds that certificate and not the copy of a bundled root beside it; and the experiment
// gets the user's NODE_EXTRA_CA_CERTS as it was. A file at a path make cannot name as written
// goes to the verb as it is. Without the file the same store is refused.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { narrowedCaFile } from '../../scripts/lib/extra-ca.js';
import { addCompetition, createSandbox, type Sandbox } from '../helpers/sandbox.js';
import { startS3rver, useS3rverStore, type S3rver } from '../helpers/s3rver.js';

const certsIn = (text: string) => text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
const body = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s/g, '');

describe('NODE_EXTRA_CA_CERTS for the cached verbs', () => {
  let dir: string;
  let sb: Sandbox;
  let s3: S3rver;
  let extra: string;
  let testCa: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'extra-ca-'));
    const at = (f: string) => path.join(dir, f);
    const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    // A CA of the test's own, and a certificate for 127.0.0.1 that it signs.
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=switchyard test CA']);
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
    writeFileSync(at('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext']);
    testCa = readFileSync(at('ca.pem'), 'utf8');
    // As a system bundle does: a root node bundles as well, then the one node does not know.
    extra = at('bundle.pem');
    writeFileSync(extra, `${tls.rootCertificates[0]}\n${testCa}`);

    s3 = await startS3rver('switchyard-tls', '127.0.0.1', { key: at('server.key'), cert: at('server.pem') });
    sb = createSandbox();
    useS3rverStore(sb.dir, s3, 'runs');
    // An experiment that shows its environment.
    addCompetition(sb, 'envp', 'train:\n  command: \'echo "extra=[$NODE_EXTRA_CA_CERTS] hand-over=[${SWITCHYARD_NODE_EXTRA_CA_CERTS-unset}]"\'\n');
  });
  afterAll(async () => {
    sb?.cleanup();
    await s3?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('make train reaches an https store its certificate vouches for, narrowed, and the experiment sees the file as set', () => {
    const r = sb.make(['train', 'experiment=envp'], { env: { NODE_EXTRA_CA_CERTS: extra } });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`extra=[${extra}] hand-over=[unset]`);
    expect(r.stderr).not.toContain('Ignoring extra certs');
    const narrowed = certsIn(readFileSync(narrowedCaFile(sb.dir, extra), 'utf8'));
    expect(narrowed.map(body)).toEqual([body(testCa)]);
  });

  it('a file whose path make cannot name as written (a space in it) is given to the verb as it is, and still trusted', () => {
    const spaced = path.join(dir, 'company certs', 'bundle.pem');
    mkdirSync(path.dirname(spaced));
    copyFileSync(extra, spaced);
    const before = readdirSync(path.join(sb.dir, 'dist', 'extra-ca'));
    const r = sb.make(['train', 'experiment=envp', 'again=1'], { env: { NODE_EXTRA_CA_CERTS: spaced } });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`extra=[${spaced}] hand-over=[unset]`);
    expect(readdirSync(path.join(sb.dir, 'dist', 'extra-ca'))).toEqual(before);
  });

  it('without NODE_EXTRA_CA_CERTS the same store is refused: its certificate is vouched for by nothing node trusts', () => {
    const r = sb.make(['train', 'experiment=envp', 'again=1'], { env: { NODE_EXTRA_CA_CERTS: '' } });
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/certificate/i);
  });
});
