import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseDotEnv, readDotEnv, requireSecrets } from '../../scripts/lib/secrets/dotenv.js';
import { readSecretsFile } from '../../scripts/lib/secrets/secrets-file.js';
import { UserError } from '../../scripts/lib/ui/errors.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'dotenv-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error('expected a UserError');
}

describe('.env', () => {
  it('reads what Node reads: export, comments, quotes holding # and spaces, $, CRLF, a repeated key, a multi-line value', () => {
    const text = '# store\nexport A=1\r\nB="x # y"  # note\nC=\'a$HOME b\'\nD=plain # comment\nA=2\nPEM="line1\n\n  \nline2"\nE=\n';
    expect(parseDotEnv(text, '.env')).toEqual({ A: '2', B: 'x # y', C: 'a$HOME b', D: 'plain', PEM: 'line1\n\n  \nline2', E: '' });
  });

  it('keeps the key after a byte-order mark or a line of spaces, which Node would lose', () => {
    expect(parseDotEnv('\uFEFFHF_TOKEN=hf_abcdefghijkl\n', '.env')).toEqual({ HF_TOKEN: 'hf_abcdefghijkl' });
    expect(parseDotEnv('X=1\n  \t\nHF_TOKEN=hf_abcdefghijkl\n', '.env')).toEqual({ X: '1', HF_TOKEN: 'hf_abcdefghijkl' });
  });

  it('refuses a line that is not KEY=value by its number, never showing its text (it may be a secret)', () => {
    for (const line of ['WANDB_KEY', 'HF_TOKEN hf_secretvalue', 'HF_TOKEN: hf_secretvalue', 'MY KEY=1', 'export  A=1']) {
      const message = errorOf(() => parseDotEnv(`A=1\n${line}\nHF_TOKEN=hf_abcdefghijkl\n`, '.env'));
      expect(message).toBe('.env:2: not a KEY=value line; write it as KEY=value (quote a value with spaces or #), or comment it out with #');
    }
  });

  it('says which line of .env is wrong rather than that a declared secret is missing from it', () => {
    writeFileSync(path.join(root, '.env'), 'WANDB_KEY\nHF_TOKEN=hf_abcdefghijkl\n');
    expect(errorOf(() => requireSecrets(root, 'competitions/toy/experiment.yaml', ['HF_TOKEN']))).toMatch(/^\.env:1: not a KEY=value line; /);
    writeFileSync(path.join(root, '.env'), '\uFEFFHF_TOKEN=hf_abcdefghijkl\n');
    expect(requireSecrets(root, 'competitions/toy/experiment.yaml', ['HF_TOKEN'])).toEqual({ HF_TOKEN: 'hf_abcdefghijkl' });
    expect(readSecretsFile(path.join(root, '.env'))).toEqual({ HF_TOKEN: 'hf_abcdefghijkl' });
  });

  it('refuses a folder named .env (a virtualenv) in one line, instead of failing with EISDIR', () => {
    mkdirSync(path.join(root, '.env'));
    expect(errorOf(() => readDotEnv(root))).toMatch(/^\.env: a folder, not the secrets file \(a virtualenv named \.env\?\); move it aside /);
  });
});
