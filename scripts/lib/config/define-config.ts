// The typed shape of cluster_fleet_config.ts. defineConfig() only gives editors the types;
// load-config.ts validates the exported object with zod before anything uses it.

export type BackendName = 'local' | 'ssh' | 'fleet' | 'gcp-batch' | 'slurm';

export interface HostConfig {
  /** ssh host name, address or ~/.ssh/config alias */
  host: string;
  port?: number;
  user?: string;
  identity_file?: string;
  /** where the project lives on the host */
  root?: string;
  labels?: Record<string, string | number>;
  python?: 'uv' | 'venv';
}

export interface SwitchyardConfig {
  defaults?: {
    backend?: BackendName;
    /** `file://<dir>` (relative to the repo) or `s3://bucket/prefix` */
    store?: string;
    /** attempts per run before a preempted or lost run gives up */
    max_attempts?: number;
  };
  hosts?: Record<string, HostConfig>;
  fleets?: Record<string, string[]>;
}

export function defineConfig(config: SwitchyardConfig): SwitchyardConfig {
  return config;
}
