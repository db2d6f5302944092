#!/usr/bin/env zx
// npx zx runbooks/debug-stuck-jobs.mts --help
import { DEBUG_STUCK_JOBS_HELP, DEBUG_STUCK_JOBS_OPTIONS } from '../lib/flows/usage.ts';
import { runbookEntry } from '../lib/io/entry.ts';

await runbookEntry({
  importMetaUrl: import.meta.url,
  options: DEBUG_STUCK_JOBS_OPTIONS,
  help: DEBUG_STUCK_JOBS_HELP,
  run: async (ports, flags, { signal, stopEndsNormally }) => {
    // Loaded only to run: --help needs no client library.
    const [debug, gather] = await Promise.all([
      import('../lib/flows/debug-stuck-jobs.ts'),
      import('../lib/evidence/gather.ts'),
    ]);
    return debug.runDebugStuckJobs(ports, flags, {
      signal,
      watchStarts: stopEndsNormally, // --watch: Ctrl-C leaves the live view, the diagnosis's exit code stands
      // The procedure: each step is a titled check in lib/evidence/gather.ts; an inner list runs at once.
      gather: [
        gather.configStep, // 1. check the laptop config (SUPABASE_URL, the key, SPARK_HOST)
        [
          gather.queueStep, // 2. read the queue: queued, running, failed, done
          gather.sparkStep, // 3. look at Spark: the worker process, its .env, its log (one SSH command)
          gather.appStep, // 4. read the app's env: where it writes its jobs
        ],
      ],
      // Then (lib/flows/debug-stuck-jobs.ts): 5. name the cause (findings, each with its fix) → 6. where requeue is
      // safe, confirm and hand over to the requeue steps (lib/flows/requeue.ts REQUEUE_STEPS) → 7. read the queue
      // again and judge again: the end line describes the world after the action.
    });
  },
});
