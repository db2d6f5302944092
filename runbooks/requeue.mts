#!/usr/bin/env zx
import { EXIT_CODES_HELP } from '../lib/core/exit-codes.ts';
import { REQUEUE_HELP, REQUEUE_OPTIONS } from '../lib/flows/requeue-usage.ts';
// npx zx runbooks/requeue.mts --help
import { runbookEntry } from '../lib/io/entry.ts';

await runbookEntry({
  importMetaUrl: import.meta.url,
  options: REQUEUE_OPTIONS,
  help: REQUEUE_HELP,
  exitCodesHelp: EXIT_CODES_HELP.replace(
    'findings at warning level or above',
    'some jobs skipped, failed again or held back (findings)',
  ),
  run: async (ports, flags, extra) => (await import('../lib/flows/requeue.ts')).runRequeue(ports, flags, extra),
});
