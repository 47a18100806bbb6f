import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Tests start real processes and share two cores: keep files serial to avoid timing flakes.
    fileParallelism: false,
  },
});
