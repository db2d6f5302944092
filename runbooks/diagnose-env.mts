#!/usr/bin/env zx
import { DIAGNOSE_ENV_HELP } from '../lib/flows/usage.ts';
// npx zx runbooks/diagnose-env.mts --help
import { runbookEntry } from '../lib/io/entry.ts';

await runbookEntry({
  importMetaUrl: import.meta.url,
  options: {},
  help: DIAGNOSE_ENV_HELP,
  run: async (ports, flags) => (await import('../lib/flows/diagnose-env.ts')).runDiagnoseEnv(ports, flags),
});
