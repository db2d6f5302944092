#!/usr/bin/env zx
import { DEBUG_STUCK_JOBS_HELP, DEBUG_STUCK_JOBS_OPTIONS } from '../lib/flows/usage.ts';
// npx zx runbooks/debug-stuck-jobs.mts --help
import { runbookEntry } from '../lib/io/entry.ts';

await runbookEntry({
  importMetaUrl: import.meta.url,
  options: DEBUG_STUCK_JOBS_OPTIONS,
  help: DEBUG_STUCK_JOBS_HELP,
  run: async (ports, flags, { signal }) => {
    const [{ runDebugStuckJobs }, { requeueJobs }] = await Promise.all([
      import('../lib/flows/debug-stuck-jobs.ts'),
      import('../lib/flows/requeue.ts'),
    ]);
    // An accepted recommendation hands over to the requeue flow, with all of its safety rules.
    return runDebugStuckJobs(ports, flags, (p, state, request) => requeueJobs(p, state, request, { signal }), signal);
  },
});
