import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two files at a time: most of a test's time is spent waiting on the processes it started
    // (sshd, slurmd, runners, experiments), about 0.6 of a core on average. Every test waits for
    // events, not for time, so it passes beside another one on a loaded 2-core machine; the suite
    // takes ~16 minutes there instead of ~24. More at once would only queue for the same cores.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
