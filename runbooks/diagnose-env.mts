#!/usr/bin/env zx
// npx zx runbooks/diagnose-env.mts --help
import { runbookEntry } from '../lib/entry.ts';
import { DIAGNOSE_ENV_HELP } from '../lib/runbooks/usage.ts';

await runbookEntry({
  importMetaUrl: import.meta.url,
  options: {},
  help: DIAGNOSE_ENV_HELP,
  run: async (ports, flags) => (await import('../lib/runbooks/diagnose-env.ts')).runDiagnoseEnv(ports, flags),
});
