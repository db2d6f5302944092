-- hd_requeue_jobs, second version: idempotence follows the job's state, not the command.
--
-- 002 refused a job that already carried a requeue_history entry of the same command (p_entry.op_id). A job that
-- this command requeued and that the worker then failed again could never be requeued by the same command: after
-- the fix was deployed, the hand-over from debug-stuck-jobs (always the same command) was a dead end. A rerun after
-- an interruption needs no such rule: the guard (status, attempts, started_at as the operator saw them) already
-- leaves alone a job that was written (it is queued) or has moved since. This version keeps everything else of 002
-- (guard, locking, the history entry, grants) and drops that rule. Apply it after 002; create or replace is
-- idempotent.

create or replace function public.hd_requeue_jobs(p_jobs jsonb, p_entry jsonb, p_reset_attempts boolean default false)
returns table (
  id uuid,
  account_id uuid,
  job_type text,
  status text,
  attempts integer,
  error text,
  debug jsonb,
  created_at timestamptz,
  started_at timestamptz,
  finished_at timestamptz
)
language sql
volatile
security invoker
set search_path = pg_catalog, public
as $$
  with guard as (
    select distinct on (g.id) g.id, g.status, g.attempts, g.started_at
    from jsonb_to_recordset(coalesce(p_jobs, '[]'::jsonb)) as g(id uuid, status text, attempts integer, started_at timestamptz)
    where g.id is not null
  ),
  target as (
    -- Lock the rows first, so the values copied into the history are the ones the update replaces.
    select j.id,
           j.status as from_status,
           j.error as from_error,
           j.attempts as from_attempts,
           j.started_at as from_started_at,
           j.finished_at as from_finished_at,
           case
             when j.debug is null or jsonb_typeof(j.debug) = 'null' then '{}'::jsonb
             when jsonb_typeof(j.debug) = 'object' then j.debug
             else jsonb_build_object('previous_debug', j.debug)
           end as base_debug
    from public.hd_ingestion_jobs j
    join guard g on g.id = j.id
    where j.status = g.status
      and j.attempts = g.attempts
      and j.started_at is not distinct from g.started_at
      and j.status in ('failed', 'running', 'done')
    for update of j
  ),
  prepared as (
    select t.*,
           case
             when t.base_debug -> 'requeue_history' is null then '[]'::jsonb
             when jsonb_typeof(t.base_debug -> 'requeue_history') = 'array' then t.base_debug -> 'requeue_history'
             else jsonb_build_array(t.base_debug -> 'requeue_history')
           end as history
    from target t
  )
  update public.hd_ingestion_jobs j
  set status = 'queued',
      error = null,
      started_at = null,
      finished_at = null,
      attempts = case when coalesce(p_reset_attempts, false) then 0 else j.attempts end,
      debug = p.base_debug || jsonb_build_object(
        'requeue_history',
        p.history || jsonb_build_array(
          coalesce(p_entry, '{}'::jsonb) || jsonb_build_object(
            'from_status', p.from_status,
            'from_error', p.from_error,
            'from_attempts', p.from_attempts,
            'started_at', p.from_started_at,
            'finished_at', p.from_finished_at
          )
        )
      )
  from prepared p
  where j.id = p.id
  returning j.id, j.account_id, j.job_type, j.status, j.attempts, j.error, j.debug, j.created_at, j.started_at,
            j.finished_at;
$$;

comment on function public.hd_requeue_jobs(jsonb, jsonb, boolean) is
  'Guarded bulk requeue for runbooks/requeue.mts: compare-and-set on status, attempts, started_at; appends debug.requeue_history.';

-- Functions are executable by PUBLIC by default, and Supabase's default privileges also grant anon and
-- authenticated: this one writes the queue, so only the service role may call it.
revoke all on function public.hd_requeue_jobs(jsonb, jsonb, boolean) from public;
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'anon') then
    revoke all on function public.hd_requeue_jobs(jsonb, jsonb, boolean) from anon;
  end if;
  if exists (select 1 from pg_roles where rolname = 'authenticated') then
    revoke all on function public.hd_requeue_jobs(jsonb, jsonb, boolean) from authenticated;
  end if;
end
$$;
grant execute on function public.hd_requeue_jobs(jsonb, jsonb, boolean) to service_role;
