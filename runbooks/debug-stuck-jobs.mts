#!/usr/bin/env zx
// npx zx runbooks/debug-stuck-jobs.mts --help
import { runbookEntry } from '../lib/entry.ts';
import { requeueJobs } from '../lib/requeue/flow.ts';
import {
  DEBUG_STUCK_JOBS_HELP,
  DEBUG_STUCK_JOBS_OPTIONS,
  runDebugStuckJobs,
} from '../lib/runbooks/debug-stuck-jobs.ts';

await runbookEntry({
  importMetaUrl: import.meta.url,
  options: DEBUG_STUCK_JOBS_OPTIONS,
  help: DEBUG_STUCK_JOBS_HELP,
  // An accepted recommendation hands over to the requeue flow, with all of its safety rules.
  run: (ports, flags, { signal }) =>
    runDebugStuckJobs(ports, flags, (p, state, request) => requeueJobs(p, state, request, { signal })),
});
