// A spec's resources against a backend's capabilities: refused before anything runs, naming
// what is missing and the configured places that have it.
import { describe, expect, it } from 'vitest';
import type { Backend } from '../../scripts/lib/backends/backend.js';
import { checkResources } from '../../scripts/lib/backends/index.js';
import { ConfigSchema } from '../../scripts/lib/config/config-schema.js';
import { ExperimentSchema } from '../../scripts/lib/spec/experiment-schema.js';

const config = ConfigSchema.parse({
  hosts: { vast: { host: 'vast.example', gpus: 2 }, cpu1: { host: 'c1' }, gpu8: { host: 'g8', gpus: 8 } },
  fleets: { gpus: ['vast', 'gpu8'], mixed: ['vast', 'cpu1'] },
});
const spec = (resources: object) => ExperimentSchema.parse({ train: { command: 'true' }, resources });
const backend = (name: Backend['name'], gpus: number, spot = false) => ({ name, title: name, capabilities: { gpus, spot, shards: false } }) as unknown as Backend;

describe('resources against capabilities', () => {
  it('passes what the backend has', () => {
    expect(() => checkResources('e.yaml', spec({ gpus: 2 }), backend('ssh', 2), config)).not.toThrow();
    expect(() => checkResources('e.yaml', spec({}), backend('local', 0), config)).not.toThrow();
  });

  it('refuses more GPUs than the backend has, naming every configured place with enough', () => {
    expect(() => checkResources('e.yaml', spec({ gpus: 2 }), backend('local', 0), config)).toThrow(
      'e.yaml: resources.gpus: 2 asked, this machine has 0; run it with backend=ssh host=vast or backend=ssh host=gpu8 or backend=fleet fleet=gpus',
    );
    expect(() => checkResources('e.yaml', spec({ gpus: 16 }), backend('fleet', 2), config)).toThrow(/^e\.yaml: resources\.gpus: 16 asked, backend fleet has 2; declare gpus: 16 on a host/);
  });

  it('refuses spot capacity where there is none', () => {
    expect(() => checkResources('e.yaml', spec({ spot: true }), backend('local', 0), config)).toThrow(/^e\.yaml: resources\.spot: this machine has no spot capacity/);
  });
});
