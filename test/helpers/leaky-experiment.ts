// An experiment that leaks its secret everywhere it can, for the tests that it shows nowhere.
import { readdirSync } from 'node:fs';
import path from 'node:path';

/** `python3 leak.py <KEY>`: prints that secret whole, cut in two, to stderr and into a metrics line, then its hash. */
export const LEAK_PY = `import hashlib, json, os, sys, time
v = os.environ[sys.argv[1]]
sys.stdout.write(v[:12]); sys.stdout.flush(); time.sleep(0.3)
print(v[12:], flush=True)
print("stderr:", v, file=sys.stderr, flush=True)
with open(os.environ["SWITCHYARD_METRICS"], "a") as m:
    m.write(json.dumps({"step": 0, "note": v}) + "\\n")
print("secret sha256", hashlib.sha256(v.encode()).hexdigest(), flush=True)
`;

/** Every file below `dir`. */
export function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

