import { writeFileSync } from 'node:fs';
import type pg from 'pg';
import type { WorkerEnv, WorkerProcess } from './worker-process.ts';

/** What a scenario may touch: both databases as admin, the worker, the app's env file. */
export interface ScenarioRuntime {
  cloudDb: pg.Pool;
  localDb: pg.Pool;
  worker: WorkerProcess;
  appEnvFile: string;
  cloud: { url: string; anonKey: string; serviceRoleKey: string };
  local: { url: string; anonKey: string };
  /** The worker's .env for a healthy Spark. */
  healthyWorkerEnv: WorkerEnv;
}

/** Named incidents, applied to a running sandbox. Each starts from a clean, healthy state. */
export const SCENARIOS = {
  healthy: 'queue drained by a healthy worker; app, worker and laptop on the same project',
  'local-target': 'the app writes jobs to the local Supabase; the worker polls the cloud and sees none',
  'circular-metadata': 'import_assets_jsonl jobs fail with "Circular reference detected"',
  'worker-down': 'the worker process is not running; queued jobs pile up',
  'stale-running': 'a job has been "running" for two hours and will never finish',
  'wrong-key-role': 'the worker holds the anon key; row-level security hides every job from it',
  demo: 'jobs in several states with both known failures: the app on a local Supabase, circular metadata',
} as const;

export type ScenarioName = keyof typeof SCENARIOS;

export function isScenarioName(name: string): name is ScenarioName {
  return Object.hasOwn(SCENARIOS, name);
}

const JSONL = [
  { id: 'a-001', name: 'chair.glb', kind: 'mesh', bytes: 182_331, tags: ['furniture'], source: { bucket: 'uploads' } },
  { id: 'a-002', name: 'lamp.glb', kind: 'mesh', bytes: 99_120, tags: ['lighting'], source: { bucket: 'uploads' } },
  { id: 'a-003', name: 'rug.png', kind: 'texture', bytes: 4_211, tags: [], source: { bucket: 'uploads' } },
]
  .map((o) => JSON.stringify(o))
  .join('\n');

const ACCOUNT = '6f1c2a44-2d0e-4c55-9a51-3f6d3b1f0a10';

async function insertJobs(
  db: pg.Pool,
  jobs: Array<{ status: string; minutesAgo: number; jobType?: string; startedMinutesAgo?: number; attempts?: number }>,
): Promise<string[]> {
  const ids: string[] = [];
  for (const j of jobs) {
    const r = await db.query<{ id: string }>(
      `insert into public.hd_ingestion_jobs (account_id, job_type, status, attempts, payload, created_at, started_at)
       values ($1, $2, $3, $4, $5, now() - make_interval(mins => $6), case when $7::int is null then null else now() - make_interval(mins => $7::int) end)
       returning id`,
      [
        ACCOUNT,
        j.jobType ?? 'import_assets_jsonl',
        j.status,
        j.attempts ?? 0,
        { jsonl: JSONL, source: 'uploads/batch.jsonl' },
        j.minutesAgo,
        j.startedMinutesAgo ?? null,
      ],
    );
    ids.push(r.rows[0].id);
  }
  return ids;
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`scenario: timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function countStatus(db: pg.Pool, ids: string[], statuses: string[]): Promise<number> {
  const r = await db.query<{ n: number }>(
    'select count(*)::int as n from public.hd_ingestion_jobs where id = any($1::uuid[]) and status = any($2::text[])',
    [ids, statuses],
  );
  return r.rows[0].n;
}

function writeAppEnv(file: string, url: string, anonKey: string): void {
  writeFileSync(
    file,
    `# The app's environment (a Next.js app)\nNEXT_PUBLIC_SUPABASE_URL=${url}\nNEXT_PUBLIC_SUPABASE_ANON_KEY=${anonKey}\n`,
    { mode: 0o600 },
  );
}

async function reset(rt: ScenarioRuntime): Promise<void> {
  for (const db of [rt.cloudDb, rt.localDb]) {
    await db.query('truncate public.hd_assets, public.hd_ingestion_jobs');
  }
  writeAppEnv(rt.appEnvFile, rt.cloud.url, rt.cloud.anonKey);
  // Each scenario is a fresh incident: the previous one's log lines would be evidence of something else.
  rt.worker.truncateLog();
  const env = rt.worker.readEnv();
  const healthy = rt.healthyWorkerEnv;
  const envChanged = (Object.keys(healthy) as Array<keyof WorkerEnv>).some((k) => env[k] !== healthy[k]);
  if (envChanged) rt.worker.writeEnv(healthy);
  if (envChanged || !rt.worker.running) await rt.worker.restart();
}

/** A few jobs that the healthy worker finishes, so the queue has history. */
async function drainSome(rt: ScenarioRuntime, n: number): Promise<void> {
  const ids = await insertJobs(
    rt.cloudDb,
    Array.from({ length: n }, (_, i) => ({
      status: 'queued',
      minutesAgo: 0,
      jobType: i % 2 ? 'thumbnail' : undefined,
    })),
  );
  await waitFor(async () => (await countStatus(rt.cloudDb, ids, ['done'])) === ids.length, 'the worker to drain jobs');
}

async function circular(rt: ScenarioRuntime): Promise<void> {
  rt.worker.writeEnv({ ...rt.healthyWorkerEnv, WORKER_SOURCE_LINE: 'full' });
  await rt.worker.restart();
  const ids = await insertJobs(rt.cloudDb, [
    { status: 'queued', minutesAgo: 0 },
    { status: 'queued', minutesAgo: 0 },
  ]);
  await waitFor(
    async () => (await countStatus(rt.cloudDb, ids, ['failed'])) === ids.length,
    'the worker to fail the import_assets_jsonl jobs',
  );
}

async function localTarget(rt: ScenarioRuntime): Promise<void> {
  writeAppEnv(rt.appEnvFile, rt.local.url, rt.local.anonKey);
  await insertJobs(rt.localDb, [
    { status: 'queued', minutesAgo: 42 },
    { status: 'queued', minutesAgo: 31 },
    { status: 'queued', minutesAgo: 20 },
  ]);
}

/** Applies a scenario; resolves once the sandbox shows it (the worker has done its part). */
export async function applyScenario(rt: ScenarioRuntime, name: ScenarioName): Promise<void> {
  await reset(rt);
  switch (name) {
    case 'healthy':
      await drainSome(rt, 3);
      return;
    case 'local-target':
      await drainSome(rt, 2);
      await localTarget(rt);
      return;
    case 'circular-metadata':
      await drainSome(rt, 2);
      await circular(rt);
      return;
    case 'worker-down':
      await drainSome(rt, 2);
      await rt.worker.stop();
      await insertJobs(rt.cloudDb, [
        { status: 'queued', minutesAgo: 38 },
        { status: 'queued', minutesAgo: 25 },
        { status: 'queued', minutesAgo: 2 },
      ]);
      return;
    case 'stale-running':
      await drainSome(rt, 2);
      await insertJobs(rt.cloudDb, [{ status: 'running', minutesAgo: 130, startedMinutesAgo: 125, attempts: 1 }]);
      return;
    case 'wrong-key-role':
      await drainSome(rt, 2);
      rt.worker.writeEnv({ ...rt.healthyWorkerEnv, SUPABASE_SERVICE_ROLE_KEY: rt.cloud.anonKey });
      await rt.worker.restart();
      await insertJobs(rt.cloudDb, [
        { status: 'queued', minutesAgo: 27 },
        { status: 'queued', minutesAgo: 19 },
      ]);
      return;
    case 'demo':
      await drainSome(rt, 4);
      await circular(rt);
      await localTarget(rt);
      return;
  }
}
