// docs/experiment-spec.md is generated from the experiment schema: it must say what validation does.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderSpecReference, SPEC_DOC_FILE } from '../../scripts/lib/spec/spec-doc.js';
import { REPO } from '../helpers/sandbox.js';

describe('the spec reference page', () => {
  it('is exactly what the schema generates (run make spec-doc after changing the schema)', () => {
    expect(readFileSync(path.join(REPO, SPEC_DOC_FILE), 'utf8')).toBe(renderSpecReference());
  });

  it('lists every field with the example its error messages quote', () => {
    const page = renderSpecReference();
    expect(page).toContain('| `train.command` | a string or a list of strings | **required** | The training program. | `"python3 train.py"` |');
    expect(page).toMatch(/\| `train\.metrics_from` \|.*\| `'step \(\?<step>/);
    expect(page).toMatch(/\| `data\.include` \| a list of strings \| `\["\*\*"\]` \|/);
  });
});
