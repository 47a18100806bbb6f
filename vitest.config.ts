import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Two files share the cores (below): beside a heavy one (SLURM, a fleet of hosts) a test can
    // take three times as long as it does alone. A limit only ends a test that is stuck.
    testTimeout: 180_000,
    hookTimeout: 240_000,
    // Two files at a time: most of a test's time is spent waiting on the processes it started
    // (sshd, slurmd, runners, experiments), about 0.6 of a core on average. Every test waits for
    // events, not for time, so it passes beside another one on a loaded 2-core machine; the suite
    // takes ~17 minutes there instead of ~24. More at once would only queue for the same cores.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
