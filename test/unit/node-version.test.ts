// The oldest Node Switchyard takes, here and on a host: 20.12, whose directory entries carry parentPath.
import { describe, expect, it } from 'vitest';
import { NODE_MIN, nodeFits } from '../../scripts/lib/node-version.js';

describe('nodeFits', () => {
  it(`takes Node ${NODE_MIN} and newer, with or without the v`, () => {
    for (const v of ['v20.12.0', '20.12.0', 'v20.20.2', 'v21.0.0', 'v22.11.0', 'v100.1.1']) expect(nodeFits(v), v).toBe(true);
  });

  it('refuses an older Node 20, older majors, and what is not a version', () => {
    for (const v of ['v20.11.1', 'v20.0.0', 'v18.20.4', 'v8.9.0', '', 'node', null]) expect(nodeFits(v), String(v)).toBe(false);
  });

  it('is what this machine runs (the tests run on a Node it takes)', () => {
    expect(nodeFits(process.version)).toBe(true);
  });
});
