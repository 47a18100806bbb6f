// The merging process the merge benches time: merge-child.ts bundled as build.mjs bundles the
// verbs, run in plain node, so its time and RSS are the shipped code's (tsx's transform wraps
// every closure it creates in a naming helper, and its loader adds resident memory).
import { fileURLToPath } from 'node:url';

/** Bundles the child to `outfile` and returns it. */
export async function bundleMergeChild(outfile: string): Promise<string> {
  const { build } = await import('esbuild');
  const entry = fileURLToPath(new URL('./merge-child.ts', import.meta.url));
  await build({ entryPoints: [entry], outfile, bundle: true, format: 'esm', platform: 'node', target: 'node20', logLevel: 'error' });
  return outfile;
}
