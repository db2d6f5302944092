-- The job queue and the assets it produces, as on the Supabase project.
-- Safe to apply to a real Supabase project (roles anon, authenticated and service_role already exist there)
-- and to the sandbox's bare PostgreSQL (where they are created here).

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
end
$$;

create table if not exists public.hd_ingestion_jobs (
  id uuid primary key default gen_random_uuid(),
  account_id uuid,
  job_type text not null,
  status text not null default 'queued'
    check (status in ('queued', 'pending', 'running', 'done', 'failed')),
  attempts integer not null default 0 check (attempts >= 0),
  error text,
  debug jsonb not null default '{}'::jsonb,
  payload jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz
);

-- The worker claims the oldest queued job; the runbooks count and list by status and age.
create index if not exists hd_ingestion_jobs_status_created_at on public.hd_ingestion_jobs (status, created_at);
create index if not exists hd_ingestion_jobs_created_at on public.hd_ingestion_jobs (created_at desc);

create table if not exists public.hd_assets (
  id uuid primary key default gen_random_uuid(),
  account_id uuid,
  job_id uuid references public.hd_ingestion_jobs (id) on delete cascade,
  name text not null,
  metadata jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);

create index if not exists hd_assets_job_id on public.hd_assets (job_id);

alter table public.hd_ingestion_jobs enable row level security;
alter table public.hd_assets enable row level security;

grant usage on schema public to anon, authenticated, service_role;
grant all on public.hd_ingestion_jobs, public.hd_assets to service_role;
-- The app inserts jobs with the anon/authenticated key; without a select policy those roles read nothing back,
-- which is exactly how a worker holding the wrong key sees an empty queue.
grant select, insert on public.hd_ingestion_jobs to anon, authenticated;
grant select on public.hd_assets to anon, authenticated;

drop policy if exists hd_ingestion_jobs_app_insert on public.hd_ingestion_jobs;
create policy hd_ingestion_jobs_app_insert on public.hd_ingestion_jobs
  for insert to anon, authenticated with check (status in ('queued', 'pending'));
