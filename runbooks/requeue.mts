#!/usr/bin/env zx
// npx zx runbooks/requeue.mts --help
import { runbookEntry } from '../lib/entry.ts';
import { EXIT_CODES_HELP } from '../lib/exit-codes.ts';
import { REQUEUE_HELP, REQUEUE_OPTIONS } from '../lib/requeue/options.ts';

await runbookEntry({
  importMetaUrl: import.meta.url,
  options: REQUEUE_OPTIONS,
  help: REQUEUE_HELP,
  exitCodesHelp: EXIT_CODES_HELP.replace(
    'findings at warning level or above',
    'some jobs skipped, failed again or held back (findings)',
  ),
  run: async (ports, flags, extra) => (await import('../lib/requeue/flow.ts')).runRequeue(ports, flags, extra),
});
