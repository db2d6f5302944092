#!/usr/bin/env zx
// npx zx runbooks/requeue.mts --help
import { EXIT_CODES_HELP } from '../lib/core/exit-codes.ts';
import { REQUEUE_HELP, REQUEUE_OPTIONS } from '../lib/flows/requeue-usage.ts';
import { runbookEntry } from '../lib/io/entry.ts';

await runbookEntry({
  importMetaUrl: import.meta.url,
  options: REQUEUE_OPTIONS,
  help: REQUEUE_HELP,
  exitCodesHelp: EXIT_CODES_HELP.replace(
    'findings at warning level or above',
    'some jobs skipped, failed again or held back (findings)',
  ),
  run: async (ports, flags, extra) => {
    // Loaded only to run: --help needs no client library.
    const { runRequeue, steps } = await import('../lib/flows/requeue.ts');
    // First the laptop config and Spark (the worker's start time is the fix gate's evidence); then these steps,
    // in order. Every question comes before the first write.
    return runRequeue(ports, flags, extra, [
      steps.guardTarget, // 1. which project, with which key: a key row-level security binds stops here
      steps.selectJobs, // 2. read the jobs asked for (--id, or a filter)
      steps.preview, // 3. the planned writes, the fix gate's verdict, the audit file
      steps.endOfPreview, // 4. a dry run ends here, with the command that applies it
      steps.confirmRunning, // 5. running jobs are confirmed on their own (default No)
      steps.confirm, // 6. a reason, then yes (default No); with --yes the fix gate decides
      steps.openAudit, // 7. the intent goes to the audit file first; an interrupted run is settled
      steps.canary, // 8. --canary N: a few first, the rest only when they pass
      steps.applyWrites, // 9. compare-and-set on what the preview showed (or the SQL function), each audited
      steps.showResult, // 10. what was written, what changed since the preview
      steps.verify, // 11. watch the jobs: done, failed again, or never picked up
      steps.conclude, // 12. the end line and the exit code
    ]);
  },
});
