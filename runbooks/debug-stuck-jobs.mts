#!/usr/bin/env zx
// npx zx runbooks/debug-stuck-jobs.mts --help
import { runbookEntry } from '../lib/entry.ts';
import { DEBUG_STUCK_JOBS_HELP, DEBUG_STUCK_JOBS_OPTIONS } from '../lib/runbooks/usage.ts';

await runbookEntry({
  importMetaUrl: import.meta.url,
  options: DEBUG_STUCK_JOBS_OPTIONS,
  help: DEBUG_STUCK_JOBS_HELP,
  run: async (ports, flags, { signal }) => {
    const [{ runDebugStuckJobs }, { requeueJobs }] = await Promise.all([
      import('../lib/runbooks/debug-stuck-jobs.ts'),
      import('../lib/requeue/flow.ts'),
    ]);
    // An accepted recommendation hands over to the requeue flow, with all of its safety rules.
    return runDebugStuckJobs(ports, flags, (p, state, request) => requeueJobs(p, state, request, { signal }), signal);
  },
});
