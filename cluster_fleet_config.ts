// Switchyard's inventory: where runs execute and where they are kept.
// Edit freely; it is validated on every command.
import { defineConfig } from './scripts/lib/config/define-config.js';

export default defineConfig({
  defaults: {
    backend: 'local',
    store: 'file://.switchyard/store',
    max_attempts: 5,
  },
  hosts: {},
  fleets: {},
});
