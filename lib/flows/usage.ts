/** Options and --help of the runbooks: kept apart from the flows so `--help` loads no client library. */

export const DEBUG_STUCK_JOBS_OPTIONS = {
  'queued-minutes': { type: 'string' },
  'running-minutes': { type: 'string' },
  'max-attempts': { type: 'string' },
  'job-type-rule': { type: 'string', multiple: true },
  patterns: { type: 'string' },
} as const;

export const DEBUG_STUCK_JOBS_HELP = `Usage: npx zx runbooks/debug-stuck-jobs.mts [options]

Which jobs are stuck, why, and what to do. Reads the queue (counts, oldest queued, running, recent failures),
probes Spark over one SSH connection (worker process, log, its .env) and the app's env, matches the evidence
against the failure-pattern catalog and shows each finding with its fix. Where a requeue is safe once fixed, an
interactive run offers it (through the requeue flow's safety rules). Without a terminal, with --ci or CI set it is
a read-only smoke check.

Stuck rules (flags, else env, else defaults):
  --queued-minutes N       queued/pending longer than N min with no worker activity (STUCK_QUEUED_MINUTES, 15)
  --running-minutes N      running for longer than N min (STUCK_RUNNING_MINUTES, 60)
  --max-attempts N         failed with attempts >= N (MAX_ATTEMPTS, 3)
  --job-type-rule RULE     per job_type, repeatable: import_assets_jsonl:running=180,queued=30,attempts=5
  --patterns FILE          your own failure patterns (HD_RUNBOOKS_PATTERNS_FILE); see README`;

export const DIAGNOSE_ENV_HELP = `Usage: npx zx runbooks/diagnose-env.mts [options]

Checks every side's configuration in seconds: the laptop's .env and keys, Supabase from this machine, Spark over
SSH (the worker's folder, .env, key, process, log, clock, disk, and Supabase as seen from Spark), and the app's env.
Flags failure A (the app writing to a local Supabase) before it becomes an incident. Read-only.`;
