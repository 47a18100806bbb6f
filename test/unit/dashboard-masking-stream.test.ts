// The dashboard's masking stream (a log download goes through it): a secret is masked wherever
// the chunks that carry it are cut.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EnvSecrets } from '../../dashboard/secrets.js';

const SECRET = 'tok-0123456789abcdef';
let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'masking-stream-'));
  writeFileSync(path.join(root, '.env'), `API_TOKEN=${SECRET}\n`);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

async function through(chunks: Buffer[]): Promise<string> {
  const out: Buffer[] = [];
  for await (const b of Readable.from(chunks).pipe(new EnvSecrets(root).maskingStream())) out.push(b as Buffer);
  return Buffer.concat(out).toString('utf8');
}

describe('EnvSecrets.maskingStream', () => {
  it('masks a secret cut between two chunks, at every place it can be cut', async () => {
    const text = Buffer.from(`step 1 ${SECRET}\nstep 2 ünïcode ${SECRET}`);
    for (let cut = 1; cut < text.length; cut++) {
      expect(await through([text.subarray(0, cut), text.subarray(cut)])).toBe('step 1 [redacted API_TOKEN]\nstep 2 ünïcode [redacted API_TOKEN]');
    }
  });

  it('sends what it held back at the end: the start of a secret that was not one', async () => {
    expect(await through([Buffer.from(`ends ${SECRET.slice(0, 6)}`)])).toBe(`ends ${SECRET.slice(0, 6)}`);
  });
});
