import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests start real PostgreSQL and SSH servers; two cores, so keep the fan-out small.
    maxWorkers: 2,
    // The fault harness (test/faults) prints its table of cases tried and held after the run.
    reporters: ['default', './test/faults/table-reporter.ts', './test/reporters/summary.ts'],
  },
});
