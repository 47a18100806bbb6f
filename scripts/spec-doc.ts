// make spec-doc: writes docs/experiment-spec.md, the reference of every experiment spec field,
// from the schema (scripts/lib/spec/spec-doc.ts). A unit test fails while the two differ.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { findRoot } from './lib/config/load-config.js';
import { renderSpecReference, SPEC_DOC_FILE } from './lib/spec/spec-doc.js';
import { runMain } from './lib/ui/errors.js';

await runMain(async () => {
  writeFileSync(path.join(findRoot(), SPEC_DOC_FILE), renderSpecReference());
  console.log(`wrote ${SPEC_DOC_FILE}`);
  return 0;
});
