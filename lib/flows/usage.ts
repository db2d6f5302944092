/** Options and --help of the runbooks: kept apart from the flows so `--help` loads no client library. */

export const DEBUG_STUCK_JOBS_OPTIONS = {
  'queued-minutes': { type: 'string' },
  'running-minutes': { type: 'string' },
  'max-attempts': { type: 'string' },
  'job-type-rule': { type: 'string', multiple: true },
  patterns: { type: 'string' },
  watch: { type: 'boolean', default: false },
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
  --patterns FILE          your own failure patterns (HD_RUNBOOKS_PATTERNS_FILE); see README

After the diagnosis:
  --watch                  stay on the live queue view (runbooks/watch.mts, every 5 s) on the same connections
                           instead of exiting; Ctrl-C leaves`;

export const DIAGNOSE_ENV_HELP = `Usage: npx zx runbooks/diagnose-env.mts [options]

Checks every side's configuration in seconds: the laptop's .env and keys, Supabase from this machine, Spark over
SSH (the worker's folder, .env, key, process, log, clock, disk, and Supabase as seen from Spark), and the app's env.
Flags an app writing to a local Supabase (or any project the worker does not read) before it becomes an incident.
Read-only.

Optional: with SUPABASE_DB_URL (the project's Postgres connection string, Dashboard > Connect) it also reads the
catalog: the indexes on hd_ingestion_jobs against those sandbox/migrations/*.sql create, the statement_timeout of
service_role, authenticator, authenticated and anon, and whether hd_requeue_jobs is installed; what is missing is a
finding (index-missing, requeue-function-missing). The string holds a password: it is never printed.`;

export const WATCH_OPTIONS = {
  every: { type: 'string' },
  for: { type: 'string' },
  once: { type: 'boolean', default: false },
  'queued-minutes': { type: 'string' },
  'running-minutes': { type: 'string' },
  'job-type-rule': { type: 'string', multiple: true },
} as const;

export const WATCH_HELP = `Usage: npx zx runbooks/watch.mts [options]

The queue, live: counts by status and by job_type (queued, running, failed), done and failed per minute over the
last 5 minutes, time in queue p50/p95 (started_at - created_at of the jobs started in those 5 minutes), the oldest
queued job's age, the ETA to drain the backlog (queued/pending over done per minute; "not draining" when nothing
finishes), and the worker on Spark (pid, up since, log last written) over one SSH connection kept open for the whole
watch (without SPARK_HOST: the queue only). Each refresh is one parallel round of seven bounded reads (counts and
lists of at most 100 narrow rows) and one small command on Spark. On a terminal the view is redrawn in place;
otherwise one block per refresh. Read-only.

  --every SECONDS          refresh every SECONDS (default 5)
  --for SECONDS            stop after SECONDS (scripts, tests); the end line says what was seen
  --once                   one refresh, then exit: 0, or 1 when the queue is stalled (queued jobs over the rule
                           and nothing done in the last 5 minutes)
  --json FILE|-            with --once: the refresh as JSON (fields in README, "watch"); otherwise the last refresh
                           and the watch's summary, at the end
  --queued-minutes N       the queued rule (STUCK_QUEUED_MINUTES, 15)
  --running-minutes N      the running rule (STUCK_RUNNING_MINUTES, 60)
  --job-type-rule RULE     per job_type, repeatable: import_assets_jsonl:running=180,queued=30

Ctrl-C (or q on a terminal) leaves, exit 0, with a line saying what was seen:
  watched 2 min (25 refreshes): backlog 40 → 0, drained; 40 done, 0 failed meanwhile`;
