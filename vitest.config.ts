import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The run's own TMPDIR and state folder, the owner pid sandboxes watch, and the check for leftovers.
    globalSetup: ['./test/setup/global.ts'],
    // Each file gives back the folders and sandboxes it still holds when it ends.
    setupFiles: ['./test/setup/per-file.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests start real PostgreSQL and SSH servers; two cores, so keep the fan-out small.
    maxWorkers: 2,
    // The fault harness (test/faults) prints its table of cases tried and held after the run.
    reporters: ['default', './test/faults/table-reporter.ts', './test/reporters/summary.ts'],
  },
});
