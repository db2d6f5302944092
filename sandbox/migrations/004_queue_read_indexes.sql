-- The indexes the runbooks' queue reads need: with them every read is an index range scan (or an ordered index scan
-- that stops at its limit), whatever the size of the table; without them, at 10 million jobs the reads on
-- finished_at scan every done row and come near Supabase's 8 s statement timeout (diagnose-env: queue-read-slow).
--
-- CONCURRENTLY builds each index without blocking the worker's writes, and cannot run inside a transaction block.
-- Apply it with psql, which runs each statement on its own:  psql "$SUPABASE_DB_URL" -f 004_queue_read_indexes.sql
-- or paste the statements one at a time into the SQL editor. (`supabase db push` runs a migration file in one
-- transaction, where CONCURRENTLY is refused: supabase/cli#2898.) A build that was interrupted leaves an INVALID
-- index that `if not exists` would keep: drop it (drop index concurrently <name>) and run the file again.

-- The latest done job and the failed jobs since a time (debug-stuck-jobs, diagnose-env, watch): newest finished
-- first, `order=finished_at.desc.nullslast`, the same order as the index.
create index concurrently if not exists hd_ingestion_jobs_status_finished_at
  on public.hd_ingestion_jobs (status, finished_at desc nulls last);

-- The requeue's selection and every paged read: keyset on (created_at, id) within a status.
create index concurrently if not exists hd_ingestion_jobs_status_created_at_id
  on public.hd_ingestion_jobs (status, created_at, id);

-- The oldest waiting jobs: `status in (queued, pending)` in created_at order across both statuses, which the
-- (status, …) indexes cannot give without sorting every waiting job.
create index concurrently if not exists hd_ingestion_jobs_waiting_created_at
  on public.hd_ingestion_jobs (created_at, id) where status in ('queued', 'pending');

-- The running jobs, longest running first (`order=started_at.asc.nullsfirst`).
create index concurrently if not exists hd_ingestion_jobs_running_started_at
  on public.hd_ingestion_jobs (started_at asc nulls first) where status = 'running';
