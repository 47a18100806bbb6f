// A bench's measured process, bundled as build.mjs bundles the verbs and the runner, and run in
// plain node, so its time and RSS are the shipped code's (tsx's transform wraps every closure it
// creates in a naming helper, and its loader adds resident memory).
import { fileURLToPath } from 'node:url';

/** Bundles `bench/lib/<name>.ts` to `outfile` and returns it. */
export async function bundleChild(name: string, outfile: string): Promise<string> {
  const { build } = await import('esbuild');
  const entry = fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
  // CommonJS packages bundled into an ES module require node's builtins: give them a require.
  const banner = { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" };
  await build({ entryPoints: [entry], outfile, bundle: true, format: 'esm', platform: 'node', target: 'node20', banner, logLevel: 'error' });
  return outfile;
}
