// import() of a file outside the bundle (the compiled cluster_fleet_config.ts). A verb run from the
// code cache (scripts/boot/run-cached.ts) is a vm.Script, whose own import() has no loader to
// answer it; its runner leaves one under IMPORT_HOOK.
export const IMPORT_HOOK = Symbol.for('switchyard.import-file');

type Importer = (url: string) => Promise<unknown>;

export function importFile(url: string): Promise<unknown> {
  const hook = (globalThis as { [IMPORT_HOOK]?: Importer })[IMPORT_HOOK];
  return hook ? hook(url) : import(url);
}
