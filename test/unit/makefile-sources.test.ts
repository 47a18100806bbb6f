// The Makefile lists the sources dist/.built depends on with $(wildcard) to a fixed depth (cheaper
// than a recursive search on every verb's start): a source deeper than that would not rebuild dist/.
// And every target that runs a cached verb is in CACHED_VERBS, which makes the narrowed CA file it
// starts with: one left out would start with a file make never wrote, trusting none of it.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/sandbox.js';

function tsFiles(dir: string): string[] {
  return readdirSync(path.join(REPO, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.posix.join(dir, f.split(path.sep).join('/')));
}

describe('Makefile SOURCES', () => {
  it('reaches every TypeScript source under scripts/ and dashboard/', () => {
    const line = readFileSync(path.join(REPO, 'Makefile'), 'utf8').split('\n').find((l) => l.startsWith('SOURCES := '))!;
    const globs = /addsuffix \*\.ts,([^)]*)\)/.exec(line)![1]!.trim().split(/\s+/).map((g) => new RegExp(`^${g.replaceAll('*', '[^/]+')}[^/]+\\.ts$`));
    const missed = [...tsFiles('scripts'), ...tsFiles('dashboard')].filter((f) => !globs.some((g) => g.test(f)));
    expect(missed).toEqual([]);
  });
});

describe('Makefile CACHED_VERBS', () => {
  it('names every target whose recipe runs $(CACHED_VERB)', () => {
    const text = readFileSync(path.join(REPO, 'Makefile'), 'utf8');
    const listed = /^CACHED_VERBS := (.*)$/m.exec(text)![1]!.trim().split(/\s+/).sort();
    const running = new Set<string>();
    let targets: string[] = [];
    for (const line of text.split('\n')) {
      const rule = /^([a-z0-9][a-z0-9 -]*):(?!=)/.exec(line);
      if (rule) targets = rule[1]!.trim().split(/\s+/);
      else if (line.startsWith('\t') && line.includes('$(CACHED_VERB)')) for (const t of targets) running.add(t);
    }
    expect([...running].sort()).toEqual(listed);
  });
});
