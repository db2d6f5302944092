#!/usr/bin/env zx
// npx zx runbooks/diagnose-env.mts --help
import { DIAGNOSE_ENV_HELP } from '../lib/flows/usage.ts';
import { runbookEntry } from '../lib/io/entry.ts';

await runbookEntry({
  importMetaUrl: import.meta.url,
  options: {},
  help: DIAGNOSE_ENV_HELP,
  run: async (ports, flags) => {
    // Loaded only to run: --help needs no client library.
    const [doctor, gather, catalog] = await Promise.all([
      import('../lib/flows/diagnose-env.ts'),
      import('../lib/evidence/gather.ts'),
      import('../lib/evidence/catalog-step.ts'),
    ]);
    // The procedure: each step is a titled check in lib/evidence/gather.ts; an inner list runs at once. Then the
    // findings (lib/findings/), each with its fix, and one verdict.
    return doctor.runDiagnoseEnv(ports, flags, [
      gather.configStep, // 1. check the laptop config (SUPABASE_URL, the key, SPARK_HOST)
      [
        gather.supabasePreflightStep, // 2. reach Supabase with the key: the jobs table answers
        gather.sparkStep, // 3. look at Spark: the worker process, its .env, its log (one SSH command)
        gather.appStep, // 4. read the app's env: where it writes its jobs
        catalog.catalogStep, // 5. with SUPABASE_DB_URL: the indexes, role timeouts and functions in the catalog
      ],
    ]);
  },
});
