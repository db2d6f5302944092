/**
 * The db port: every read and write of `hd_ingestion_jobs`, through supabase-js. Filters, counts and limits run
 * on the server, so a diagnosis costs the same requests for a hundred jobs or a million. Failures are values.
 */
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import { JOB_COLUMNS, type Job, type JobStatus } from '../core/job.ts';
import { classifyDbError, type DbFailure, JOBS_TABLE, type PgError } from './db-failure.ts';
import { guardedFetch } from './http.ts';
import {
  assembleWatchReads,
  type Counted,
  listLimits,
  type WatchAnswers,
  type WatchReads,
  type WatchReadsOptions,
} from './watch-reads.ts';

export { JOB_COLUMNS, JOB_STATUSES, type Job, type JobStatus } from '../core/job.ts';
export { classifyDbError, type DbFailure, type DbFailureKind, JOBS_TABLE } from './db-failure.ts';

export type DbResult<T> = { ok: true; value: T; ms: number } | { ok: false; failure: DbFailure; ms: number };

export interface QueueSnapshot {
  queued: { count: number; oldest: Job[] };
  running: { count: number; jobs: Job[] };
  failed: { count: number; recent: Job[]; since: string };
  done: { count: number; latest: Job | null };
}

export interface JobFilter {
  ids?: string[];
  statuses?: JobStatus[];
  jobType?: string;
  accountId?: string;
  /** created_at before this instant */
  createdBefore?: Date;
  /** created_at at or after this instant */
  createdAfter?: Date;
  /** Server-side substring match on error (ilike); regexes are applied by the caller on the result. */
  errorContains?: string;
  limit: number;
}

/** Above this, a job's debug is not part of the compare-and-set (it would make the URL too long for gateways). */
export const MAX_DEBUG_GUARD_CHARS = 6_000;

/** The fields a compare-and-set write is conditioned on: what the operator saw. */
export type JobGuard = Pick<Job, 'id' | 'status' | 'attempts' | 'started_at'>;

export interface JobsDb {
  readonly url: string;
  queueSnapshot(o: { failedSince: Date; listLimit: number }): Promise<DbResult<QueueSnapshot>>;
  /** Count of queued/pending jobs and the oldest one: the evidence for failure A on the local instance. */
  queuedSummary(): Promise<DbResult<{ count: number; oldest: Job | null }>>;
  findJobs(filter: JobFilter): Promise<DbResult<{ jobs: Job[]; total: number }>>;
  /** The watch view's refresh: seven reads in one parallel round, counts and narrow `limit`ed lists only. */
  watchReads(o: WatchReadsOptions): Promise<DbResult<WatchReads>>;
  /**
   * Updates one job only while it still matches `guard` (and, with `also.debug`, while its debug is still that
   * value: a note another writer added is never overwritten); resolves to the new row, or null when the job changed
   * meanwhile (nothing written).
   */
  compareAndSet(
    guard: JobGuard,
    patch: Partial<Omit<Job, 'id'>>,
    also?: { debug: unknown },
  ): Promise<DbResult<Job | null>>;
  /** Calls a SQL function through /rest/v1/rpc. */
  rpc<T>(fn: string, args: Record<string, unknown>): Promise<DbResult<T>>;
}

export interface JobsDbOptions {
  url: string;
  key: string;
  timeoutMs: number;
  readRetries?: number;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
  fetch?: typeof fetch;
}

type PgAnswer = PromiseLike<{ data: unknown; error: PgError | null; status: number; count?: number | null }>;

/** What every request goes through: the client, the clock that times it, and the URL failures name. */
interface Conn {
  client: SupabaseClient;
  url: string;
  now: () => number;
}

/** Realtime is never used, but supabase-js builds its client at once and Node 20 has no global WebSocket. */
class NoRealtime {
  constructor() {
    throw new Error('the runbooks do not use Supabase Realtime');
  }
}

function createSupabase(o: JobsDbOptions): SupabaseClient {
  return createClient(o.url, o.key, {
    // The key itself is the bearer token (what supabase-js sends when there is no session): with accessToken the
    // client builds no auth client, and asks no session store before each request.
    accessToken: async () => o.key,
    // A transport that is never called instead of the ws package: nothing to load for a feature the runbooks lack.
    realtime: { transport: NoRealtime as unknown as never },
    global: {
      fetch: guardedFetch({
        timeoutMs: o.timeoutMs,
        readRetries: o.readRetries ?? 2,
        backoffMs: (n) => 250 * 2 ** n,
        sleep: o.sleep,
        fetch: o.fetch,
      }),
    },
  });
}

const table = (c: Conn) => c.client.from(JOBS_TABLE);

async function run<T>(
  c: Conn,
  query: PgAnswer,
  pick: (data: unknown, count: number | null) => T,
): Promise<DbResult<T>> {
  const started = c.now();
  const r = await query;
  const ms = c.now() - started;
  if (r.error) return { ok: false, failure: classifyDbError(r.status, r.error, c.url), ms };
  return { ok: true, value: pick(r.data, r.count ?? null), ms };
}

/** Table reads and writes always answer a JSON array; an empty or non-array body is a broken proxy, not data. */
function rows<T>(c: Conn, query: PgAnswer, pick: (data: Job[], count: number | null) => T): Promise<DbResult<T>> {
  return run(
    c,
    Promise.resolve(query).then((r) =>
      r.error || Array.isArray(r.data) ? r : { ...r, error: { message: 'not a JSON array' }, status: r.status || 200 },
    ),
    (d, count) => pick(d as Job[], count),
  );
}

/** The queue in four parallel reads: queued (oldest first), running, failed since, and the latest done. */
async function queueSnapshot(
  c: Conn,
  { failedSince, listLimit }: { failedSince: Date; listLimit: number },
): Promise<DbResult<QueueSnapshot>> {
  const started = c.now();
  const [queued, running, failed, done] = await Promise.all([
    rows(
      c,
      table(c)
        .select(JOB_COLUMNS, { count: 'exact' })
        .in('status', ['queued', 'pending'])
        .order('created_at', { ascending: true })
        .limit(listLimit)
        .retry(false),
      (d, n) => ({ count: n ?? 0, oldest: d as Job[] }),
    ),
    rows(
      c,
      table(c)
        .select(JOB_COLUMNS, { count: 'exact' })
        .eq('status', 'running')
        .order('started_at', { ascending: true, nullsFirst: true })
        .limit(listLimit)
        .retry(false),
      (d, n) => ({ count: n ?? 0, jobs: d as Job[] }),
    ),
    rows(
      c,
      table(c)
        .select(JOB_COLUMNS, { count: 'exact' })
        .eq('status', 'failed')
        .gte('finished_at', failedSince.toISOString())
        .order('finished_at', { ascending: false })
        .limit(listLimit)
        .retry(false),
      (d, n) => ({ count: n ?? 0, recent: d as Job[], since: failedSince.toISOString() }),
    ),
    rows(
      c,
      table(c)
        .select(JOB_COLUMNS, { count: 'exact' })
        .eq('status', 'done')
        .order('finished_at', { ascending: false, nullsFirst: false })
        .limit(1)
        .retry(false),
      (d, n) => ({ count: n ?? 0, latest: ((d as Job[])[0] ?? null) as Job | null }),
    ),
  ]);
  const ms = c.now() - started;
  for (const r of [queued, running, failed, done]) if (!r.ok) return { ok: false, failure: r.failure, ms };
  return {
    ok: true,
    ms,
    value: {
      queued: (queued as { value: QueueSnapshot['queued'] }).value,
      running: (running as { value: QueueSnapshot['running'] }).value,
      failed: (failed as { value: QueueSnapshot['failed'] }).value,
      done: (done as { value: QueueSnapshot['done'] }).value,
    },
  };
}

function queuedSummary(c: Conn): Promise<DbResult<{ count: number; oldest: Job | null }>> {
  return rows(
    c,
    table(c)
      .select(JOB_COLUMNS, { count: 'exact' })
      .in('status', ['queued', 'pending'])
      .order('created_at', { ascending: true })
      .limit(1)
      .retry(false),
    (d, n) => ({ count: n ?? 0, oldest: ((d as Job[])[0] ?? null) as Job | null }),
  );
}

/** Lists without id, error or debug, ordered by indexed columns; counts as HEAD requests (no body). */
async function watchReads(c: Conn, { since, limit }: WatchReadsOptions): Promise<DbResult<WatchReads>> {
  const started = c.now();
  const at = since.toISOString();
  const { backlog: first, others } = listLimits(limit);
  type Builder = ReturnType<typeof from>;
  const from = (cols: string, count: 'exact' | 'estimated' = 'exact', head = false) =>
    table(c).select(cols, { count, head }).retry(false);
  const list = (cols: string, n: number, q: (b: Builder) => Builder) =>
    rows(c, q(from(cols)).limit(n), (d, count): Counted<Job> => ({ count: count ?? 0, rows: d }));
  const head = (count: 'exact' | 'estimated', q: (b: Builder) => Builder) =>
    run(c, q(from('id', count, true)), (_d, n) => n ?? 0);
  const desc = { ascending: false };
  const answers = await Promise.all([
    list('job_type,status,created_at', first, (b) => b.in('status', ['queued', 'pending']).order('created_at')),
    head('exact', (b) => b.eq('status', 'pending')),
    list('job_type,created_at,started_at', others, (b) =>
      b.eq('status', 'running').order('started_at', { nullsFirst: true }),
    ),
    list('job_type', others, (b) => b.eq('status', 'failed').order('created_at', desc)),
    head('estimated', (b) => b.eq('status', 'done')),
    list('created_at,started_at', others, (b) =>
      b.in('status', ['done', 'failed']).gte('finished_at', at).order('finished_at', desc),
    ),
    head('exact', (b) => b.eq('status', 'failed').gte('finished_at', at)),
  ]);
  const bad = answers.find((r) => !r.ok);
  if (bad && !bad.ok) return { ok: false, failure: bad.failure, ms: c.now() - started };
  const values = answers.map((r) => (r as { value: unknown }).value) as WatchAnswers;
  return { ok: true, ms: c.now() - started, value: assembleWatchReads(since, values) };
}

function findJobs(c: Conn, f: JobFilter): Promise<DbResult<{ jobs: Job[]; total: number }>> {
  let q = table(c).select(JOB_COLUMNS, { count: 'exact' });
  if (f.ids?.length) q = q.in('id', f.ids);
  if (f.statuses?.length) q = q.in('status', f.statuses);
  if (f.jobType) q = q.eq('job_type', f.jobType);
  if (f.accountId) q = q.eq('account_id', f.accountId);
  if (f.createdBefore) q = q.lt('created_at', f.createdBefore.toISOString());
  if (f.createdAfter) q = q.gte('created_at', f.createdAfter.toISOString());
  if (f.errorContains) q = q.ilike('error', `%${escapeLike(f.errorContains)}%`);
  return rows(c, q.order('created_at', { ascending: true }).order('id').limit(f.limit).retry(false), (d, n) => ({
    jobs: d as Job[],
    total: n ?? (d as Job[]).length,
  }));
}

function compareAndSet(
  c: Conn,
  guard: JobGuard,
  patch: Partial<Omit<Job, 'id'>>,
  also?: { debug: unknown },
): Promise<DbResult<Job | null>> {
  let q = table(c).update(patch).eq('id', guard.id).eq('status', guard.status).eq('attempts', guard.attempts);
  q = guard.started_at === null ? q.is('started_at', null) : q.eq('started_at', guard.started_at);
  if (also) {
    // jsonb equality on the server (key order does not matter); debug=eq.{…} rides in the URL, so a debug too
    // large for a URL is guarded by the fields above alone.
    const text = JSON.stringify(also.debug);
    if (also.debug === null || also.debug === undefined) q = q.is('debug', null);
    else if (text.length <= MAX_DEBUG_GUARD_CHARS) q = q.eq('debug', text);
  }
  return rows(c, q.select(JOB_COLUMNS), (d) => d[0] ?? null);
}

export function createJobsDb(o: JobsDbOptions): JobsDb {
  const c: Conn = { client: createSupabase(o), url: o.url, now: () => o.now() };
  return {
    url: o.url,
    queueSnapshot: (q) => queueSnapshot(c, q),
    queuedSummary: () => queuedSummary(c),
    findJobs: (f) => findJobs(c, f),
    watchReads: (o) => watchReads(c, o),
    compareAndSet: (guard, patch, also) => compareAndSet(c, guard, patch, also),
    rpc: <T>(fn: string, args: Record<string, unknown>) => run(c, c.client.rpc(fn, args), (d) => d as T),
  };
}

/** `%`, `_` and `\` are LIKE metacharacters; `*` is PostgREST's wildcard. All are matched literally here. */
export function escapeLike(value: string): string {
  return value.replace(/[\\%_*]/g, (c) => `\\${c}`);
}
