#!/usr/bin/env zx
// npx zx runbooks/diagnose-env.mts --help
import { runbookEntry } from '../lib/entry.ts';
import { DIAGNOSE_ENV_HELP, runDiagnoseEnv } from '../lib/runbooks/diagnose-env.ts';

await runbookEntry({
  importMetaUrl: import.meta.url,
  options: {},
  help: DIAGNOSE_ENV_HELP,
  run: (ports, flags) => runDiagnoseEnv(ports, flags),
});
