// What a cached verb (make train, status, ...) loads as it starts: every module its entry reaches
// through static imports. The config's and the spec's schemas are built only to validate
// (scripts/lib/validation-cache.ts); one of them imported statically again would put their
// ~8 ms back into every verb's start, unseen by any other test.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/sandbox.js';

/** The verbs build.mjs bundles to run from a code cache, as its `cachedVerbs` names them. */
const CACHED_VERBS = [...(/const cachedVerbs = \[([^\]]*)\]/.exec(readFileSync(path.join(REPO, 'build.mjs'), 'utf8'))?.[1] ?? '').matchAll(/'([a-z-]+)'/g)].map((m) => m[1]!);
const VALIDATE_ONLY = ['config/config-schema.ts', 'config/batch-config.ts', 'config/cluster-config.ts', 'spec/experiment-schema.ts'].map((f) => path.join(REPO, 'scripts/lib', f));

/** The repository files `file` imports for their values: `import type`, and imports of types alone, are left out. */
function staticImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)(\s+type\b)?([^'"]*?)from\s+['"](\.[^'"]+)['"]/gm)) {
    const [, typeOnly, names, spec] = m;
    const braces = /\{([^}]*)\}/.exec(names!);
    const onlyTypes = braces !== null && !names!.replace(braces[0], '').replace(/[\s,]/g, '') && braces[1]!.split(',').every((n) => !n.trim() || /^type\s/.test(n.trim()));
    if (typeOnly || onlyTypes) continue;
    found.push(path.resolve(path.dirname(file), spec!.replace(/\.js$/, '.ts')));
  }
  for (const m of text.matchAll(/^\s*import\s+['"](\.[^'"]+)['"]/gm)) found.push(path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts')));
  return found;
}

/** Every repository module `entry` loads before it runs: its static imports, followed through. */
function loadedAtStart(entry: string): Set<string> {
  const seen = new Set<string>([entry]);
  const queue = [entry];
  for (let file = queue.shift(); file; file = queue.shift()) {
    for (const next of staticImports(file)) {
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return seen;
}

describe('what a cached verb loads as it starts', () => {
  it('reaches the modules it runs, through static imports, for each verb build.mjs caches', () => {
    expect(CACHED_VERBS).toContain('train');
    const train = loadedAtStart(path.join(REPO, 'scripts/train.ts'));
    for (const f of ['config/load-config.ts', 'spec/experiment.ts', 'validation-cache.ts', 'backends/local.ts']) expect(train).toContain(path.join(REPO, 'scripts/lib', f));
  });

  it.each(CACHED_VERBS)('make %s: no schema that is only built to validate', (verb) => {
    const loaded = loadedAtStart(path.join(REPO, 'scripts', `${verb}.ts`));
    expect(VALIDATE_ONLY.filter((f) => loaded.has(f)).map((f) => path.relative(REPO, f))).toEqual([]);
  });
});
