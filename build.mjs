// Compiles the verb scripts to dist/ so `make <verb>` starts in ~0.1 s instead of tsx's ~0.5 s.
// Dependencies stay external (node resolves them); shared code lands in split chunks, and
// dynamic imports stay lazy, so heavy modules load only on the paths that need them.
import { build } from 'esbuild';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';

const entryPoints = readdirSync('scripts')
  .filter((f) => f.endsWith('.ts'))
  .map((f) => `scripts/${f}`);

rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints,
  outdir: 'dist/scripts',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  logLevel: 'warning',
});
writeFileSync('dist/.built', new Date().toISOString() + '\n');
