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
    // Integration tests start real PostgreSQL and SSH servers on two cores; much of a file's time is waiting on them
    // (timeouts, polls, a worker), so three files at a time keep the cores busy without starving the sandboxes.
    maxWorkers: 3,
    // Against a real Supabase (HD_TEST_SUPABASE_URL, test/helpers/external.ts) the files share one table: one file at a
    // time, so a file that compares a read with SQL over the whole table sees no other file's writes meanwhile.
    fileParallelism: !process.env.HD_TEST_SUPABASE_URL,
    // The fault harness (test/faults) prints its table of cases tried and held after the run.
    reporters: ['default', './test/faults/table-reporter.ts', './test/reporters/summary.ts'],
  },
});
