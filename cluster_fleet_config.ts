// Switchyard's inventory: where runs execute and where they are kept.
// Edit freely; it is validated on every command.
import { defineConfig } from './scripts/lib/config/define-config.js';

export default defineConfig({
  defaults: {
    backend: 'local',
    store: 'file://.switchyard/store',
    max_attempts: 5,
  },
  // One entry per box; `make bootstrap host=<name>` makes it ready. For example:
  //   h1: { host: 'ssh4.vast.ai', port: 22222, user: 'root', identity_file: '~/.ssh/id_ed25519' },
  hosts: {},
  // A fleet: inventory hosts that one sharded search spreads over, shard i starting on
  // hosts[i % hosts.length]; make fleet-search experiment=knn/fleet fleet=lab. For example:
  //   lab: ['h1', 'h2', 'h3'],        // the short form: all defaults
  //   lab: {
  //     hosts: ['h1', 'h2', 'h3'],
  //     per_host: 1,                  // shards running at once on one host
  //     root: 'switchyard',           // the project's folder on every host (default: each host's root)
  //     output_dir: '/data/results',  // shard outputs: <output_dir>/<run>/shards/<i> (default: scratch)
  //     session_prefix: 'sy',         // tmux sessions <prefix>-<run>-s<shard>-<attempt>
  //     sync_excludes: ['data/raw'],  // rsync excludes on top of the built-in ones
  //     sync_parallel: 8,             // hosts synced at once
  //     requeue: true,                // move a lost host's unfinished shards to the healthy ones
  //     lost_after_sec: 30,           // unreachable this long: the host is lost
  //   },
  fleets: {},
});
