/**
 * `npm run sandbox -- seed`: millions of realistic jobs in the sandbox's cloud project, fast. The rows are made by
 * PostgreSQL itself (`insert … select … from generate_series(lo, hi)` in chunks, two connections at once): nothing
 * crosses the wire but the statements. COPY FROM STDIN would need a client-side CSV of the same rows and a
 * dependency (pg-copy-streams) the project does not have; generating on the server skips both.
 *
 * The shape follows issue #10's production scale: 1% failed in the last day (genuine error texts, below), 0.1%
 * queued (a backlog of the last two hours), a few running (started minutes ago), the rest done over 90 days.
 */
import pg from 'pg';

/** What to seed. Percentages are of `jobs`; the running jobs come out of the done ones. */
export interface SeedOptions {
  jobs: number;
  /** Percent failed, finished in the last day (default 1). */
  failedPercent?: number;
  /** Percent queued, created in the last two hours (default 0.1). */
  queuedPercent?: number;
  /** Running jobs, started in the last few minutes (default 3, never more than what is left). */
  running?: number;
  /** Days the done jobs are spread over (default 90). */
  days?: number;
  /** The seed's "now" (default the database's clock). */
  now?: Date;
  /** Rows per statement (default 250,000). */
  chunk?: number;
  /** Statements in flight at once, each on its own connection (default 2). */
  parallel?: number;
  /** Drop the table's secondary indexes during the load and build them after (default false: see README). */
  rebuildIndexes?: boolean;
}

/** A status group: how many rows, and the window their created_at is spread over (epoch seconds). */
export interface SeedGroup {
  status: 'done' | 'failed' | 'queued' | 'running';
  count: number;
  from: number;
  to: number;
}

/**
 * The failed jobs' errors, as the worker stores them (`Type: message`, Python's last traceback line), each from a
 * genuine traceback in test/fixtures/tracebacks (index.json: the case named here), with the job type it fails and
 * its share of the failures in percent. Circular reference (failure B) leads, as in the incident.
 */
export const SEED_ERRORS: ReadonlyArray<{ fixture: string; jobType: string; percent: number; error: string }> = [
  {
    fixture: 'json-circular',
    jobType: 'import_assets_jsonl',
    percent: 60,
    error: 'ValueError: Circular reference detected',
  },
  {
    fixture: 'json-decode-jsonl-line',
    jobType: 'import_assets_jsonl',
    percent: 10,
    error: 'json.decoder.JSONDecodeError: Expecting value: line 1 column 49 (char 48)',
  },
  {
    fixture: 'requests-read-timeout',
    jobType: 'thumbnail',
    percent: 10,
    error:
      "requests.exceptions.ReadTimeout: HTTPConnectionPool(host='127.0.0.1', port=50417): Read timed out. (read timeout=0.3)",
  },
  {
    fixture: 'disk-full-oserror',
    jobType: 'embed_assets',
    percent: 8,
    error: 'OSError: [Errno 28] No space left on device',
  },
  {
    fixture: 'httpx-connect-error',
    jobType: 'sync_account_assets',
    percent: 7,
    error: 'httpx.ConnectError: [Errno 111] Connection refused',
  },
  {
    fixture: 'module-not-found',
    jobType: 'embed_assets',
    percent: 5,
    error: "ModuleNotFoundError: No module named 'hd_worker_embeddings_v2'",
  },
];

/** Job types of the done, queued and running jobs (sandbox/scenarios.ts and the diagnosis corpus), in percent. */
export const SEED_JOB_TYPES: ReadonlyArray<{ jobType: string; percent: number }> = [
  { jobType: 'import_assets_jsonl', percent: 50 },
  { jobType: 'thumbnail', percent: 25 },
  { jobType: 'embed_assets', percent: 15 },
  { jobType: 'sync_account_assets', percent: 10 },
];

const HOUR = 3_600;
const DEFAULTS = { failedPercent: 1, queuedPercent: 0.1, running: 3, days: 90, chunk: 250_000, parallel: 2 };
const ACCOUNTS = 64;
const GOLDEN = '0.6180339887498949::float8';

/** The rows per status and their time windows; pure, so the tests can check it without a database. */
export function seedPlan(o: SeedOptions & { now: Date }): SeedGroup[] {
  const jobs = Math.floor(o.jobs);
  const pct = (p: number) => Math.round((jobs * p) / 100);
  const failed = Math.min(jobs, pct(o.failedPercent ?? DEFAULTS.failedPercent));
  const queued = Math.min(jobs - failed, pct(o.queuedPercent ?? DEFAULTS.queuedPercent));
  const running = Math.min(jobs - failed - queued, o.running ?? DEFAULTS.running);
  const now = Math.floor(o.now.getTime() / 1000);
  const days = o.days ?? DEFAULTS.days;
  // Windows end early enough that the finish times (created + wait + run, at most 150 s) stay in the past, and the
  // failures stay in "the last day" for the hours a bench at 10 million jobs takes.
  return [
    { status: 'done' as const, count: jobs - failed - queued - running, from: now - days * 24 * HOUR, to: now - 600 },
    { status: 'failed' as const, count: failed, from: now - 20 * HOUR, to: now - 300 },
    { status: 'queued' as const, count: queued, from: now - 2 * HOUR, to: now - 60 },
    { status: 'running' as const, count: running, from: now - 240, to: now - 180 },
  ].filter((g) => g.count > 0);
}

/**
 * `case` over the row's bucket `b` (0–99) picking from weighted choices; the values go in as parameters from
 * `first`. The buckets follow the golden-ratio sequence (the fractional part of i·0.618…), which spreads any run of
 * consecutive rows evenly: 50 failures get 30 of the 60% kind, as 100,000 get 60,000, and kinds alternate in time.
 */
function weighted(choices: ReadonlyArray<{ percent: number }>, first: number, value: (k: number) => string): string {
  let upTo = 0;
  const arms = choices.map((c, k) => {
    upTo += c.percent;
    return k === choices.length - 1 ? `else ${value(first + k)}` : `when b < ${upTo} then ${value(first + k)}`;
  });
  return `case ${arms.join(' ')} end`;
}

/**
 * One statement inserting rows `lo`..`hi` (1-based) of a group, oldest first: created_at spread evenly over the
 * window (with jitter), a wait of up to 30 s before started_at, a run of 2–120 s before finished_at.
 */
export function chunkStatement(g: SeedGroup, lo: number, hi: number): { text: string; values: unknown[] } {
  const errors = g.status === 'failed';
  const values: unknown[] = errors
    ? SEED_ERRORS.flatMap((e) => [e.jobType, e.error])
    : SEED_JOB_TYPES.map((t) => t.jobType);
  const jobType = errors
    ? weighted(SEED_ERRORS, 1, (k) => `$${2 * k - 1}::text`)
    : weighted(SEED_JOB_TYPES, 1, (k) => `$${k}::text`);
  const error = errors ? weighted(SEED_ERRORS, 1, (k) => `$${2 * k}::text`) : 'null::text';
  const started = g.status === 'queued' ? 'null::timestamptz' : `c + make_interval(secs => 30 * r1)`;
  const finished =
    g.status === 'done' || g.status === 'failed'
      ? `c + make_interval(secs => 30 * r1 + 2 + 118 * r2)`
      : 'null::timestamptz';
  // A few of the failures are retries (the worker counts its claims in attempts): 10% a second try, 2% a third.
  const attempts =
    g.status === 'queued'
      ? '0'
      : g.status === 'failed'
        ? 'case when i % 50 = 0 then 3 when i % 10 = 0 then 2 else 1 end'
        : '1';
  const debug =
    g.status === 'done' || g.status === 'failed'
      ? `jsonb_build_object('last_run', jsonb_build_object('worker_pid', 4242, 'started_at', ${started}, 'finished_at', ${finished}, 'assets', ${g.status === 'done' ? '1 + i % 7' : '0'}))`
      : `'{}'::jsonb`;
  const text = `insert into public.hd_ingestion_jobs
    (account_id, job_type, status, attempts, error, payload, debug, created_at, started_at, finished_at)
  select md5('account-' || (i % ${ACCOUNTS}))::uuid, ${jobType}, '${g.status}', ${attempts}, ${error},
    jsonb_build_object('source', 'uploads/acct-' || (i % ${ACCOUNTS}) || '/batch-' || i || '.jsonl'),
    ${debug}, c, ${started}, ${finished}
  from (
    select i, b, r1, r2, to_timestamp(${g.from} + ${g.to - g.from}::float8 * (i - 1 + random()) / ${g.count}) as c
    from (select i, floor(100 * (i * ${GOLDEN} - floor(i * ${GOLDEN})))::int as b, random() as r1, random() as r2
      from generate_series(${Math.floor(lo)}, ${Math.floor(hi)}) as i) s
  ) t`;
  return { text, values };
}

/** Definitions of the table's indexes that no constraint owns (the primary key stays: hd_assets refers to it). */
async function secondaryIndexes(c: pg.Client): Promise<Array<{ name: string; def: string }>> {
  const r = await c.query<{ name: string; def: string }>(
    `select i.relname as name, pg_get_indexdef(i.oid) as def
       from pg_index x join pg_class i on i.oid = x.indexrelid
      where x.indrelid = 'public.hd_ingestion_jobs'::regclass
        and not exists (select 1 from pg_constraint k where k.conindid = x.indexrelid)`,
  );
  return r.rows;
}

/** What a seed did. */
export interface SeedResult {
  counts: Record<string, number>;
  insertSeconds: number;
  indexSeconds: number;
  analyzeSeconds: number;
  totalSeconds: number;
}

const fmtInt = (n: number) => n.toLocaleString('en');

/**
 * Seeds the jobs into the database at `connectionString` (a superuser's: it may drop and build indexes) and
 * ANALYZEs the table, since planned and estimated counts read its statistics. Progress lines go to `progress`.
 */
export async function seedJobs(
  connectionString: string,
  options: SeedOptions,
  progress: (line: string) => void = () => {},
): Promise<SeedResult> {
  const t0 = performance.now();
  const parallel = Math.max(1, Math.min(8, options.parallel ?? DEFAULTS.parallel));
  const chunk = Math.max(1_000, options.chunk ?? DEFAULTS.chunk);
  const clients = Array.from({ length: parallel }, () => new pg.Client({ connectionString }));
  for (const c of clients) c.on('error', () => {});
  try {
    await Promise.all(clients.map((c) => c.connect()));
    const [main] = clients;
    const now = options.now ?? (await main.query<{ now: Date }>('select now() as now')).rows[0].now;
    const groups = seedPlan({ ...options, now });
    const total = groups.reduce((n, g) => n + g.count, 0);
    const dropped = options.rebuildIndexes ? await secondaryIndexes(main) : [];
    for (const ix of dropped) await main.query(`drop index if exists public.${pg.escapeIdentifier(ix.name)}`);
    const tasks = groups.flatMap((g) => {
      const out: Array<{ g: SeedGroup; lo: number; hi: number }> = [];
      for (let lo = 1; lo <= g.count; lo += chunk) out.push({ g, lo, hi: Math.min(g.count, lo + chunk - 1) });
      return out;
    });
    let done = 0;
    let next = 0;
    const tInsert = performance.now();
    await Promise.all(
      clients.map(async (c) => {
        while (next < tasks.length) {
          const { g, lo, hi } = tasks[next++];
          const s = chunkStatement(g, lo, hi);
          await c.query(s.text, s.values);
          done += hi - lo + 1;
          const secs = (performance.now() - tInsert) / 1000;
          progress(
            `seed: ${fmtInt(done)} / ${fmtInt(total)} jobs (${Math.floor((100 * done) / total)}%), ${secs.toFixed(0)} s, ${fmtInt(Math.round(done / Math.max(secs, 0.001)))} jobs/s`,
          );
        }
      }),
    );
    const insertSeconds = (performance.now() - tInsert) / 1000;
    const tIndex = performance.now();
    // Built two at a time, one per connection (each build is one backend's sort).
    const pending = [...dropped];
    await Promise.all(
      clients.map(async (c) => {
        for (let ix = pending.shift(); ix; ix = pending.shift()) {
          progress(`seed: building index ${ix.name}`);
          await c.query(ix.def);
        }
      }),
    );
    const indexSeconds = (performance.now() - tIndex) / 1000;
    progress('seed: analyze public.hd_ingestion_jobs');
    const tAnalyze = performance.now();
    await main.query('analyze public.hd_ingestion_jobs');
    const analyzeSeconds = (performance.now() - tAnalyze) / 1000;
    return {
      counts: Object.fromEntries(groups.map((g) => [g.status, g.count])),
      insertSeconds,
      indexSeconds,
      analyzeSeconds,
      totalSeconds: (performance.now() - t0) / 1000,
    };
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
  }
}
