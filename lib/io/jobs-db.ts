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

/**
 * A count is asked as PostgREST's `count=estimated`: exact up to the API's max-rows (PostgREST counts at most
 * max-rows + 1 rows, an index range scan), the planner's estimate above it (EXPLAIN, no scan). Supabase's default
 * max-rows; a project that lowered it is noticed when a list comes back cut short of its limit and its count.
 */
export const EXACT_COUNT_UP_TO = 1000;

/** The time one read took (the request, as this machine saw it): how diagnose-env tells a table that outgrew its indexes. */
export interface ReadTime {
  read: string;
  ms: number;
}

/** The queue's four reads. `estimated` is set on a count that is the planner's estimate, not exact. */
export interface QueueSnapshot {
  queued: { count: number; estimated?: boolean; oldest: Job[] };
  running: { count: number; estimated?: boolean; jobs: Job[] };
  failed: { count: number; estimated?: boolean; recent: Job[]; since: string };
  done: { count: number; estimated?: boolean; latest: Job | null };
  /** Each read's own time (they run at once, so the snapshot's time is the slowest of them). */
  reads?: ReadTime[];
}

/** The keyset of a page: the rows after this one in (created_at, id) order. */
export interface JobCursor {
  created_at: string;
  id: string;
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
  /** Keyset paging: only rows after this one, in (created_at, id) order. */
  after?: JobCursor;
  /** Rows asked for; the server may send fewer (its max-rows), so a short page is never taken as the end. */
  limit: number;
}

/** One page of {@link JobsDb.findJobs}: the rows sent, and how many match from the cursor on (null when not told). */
export interface JobPage {
  jobs: Job[];
  /** `count=estimated` from Content-Range: exact when it is at most the rows sent; null when the answer has none. */
  total: number | null;
  estimated: boolean;
}

/** Above this, a job's debug is not part of the compare-and-set (it would make the URL too long for gateways). */
export const MAX_DEBUG_GUARD_CHARS = 6_000;

/** The fields a compare-and-set write is conditioned on: what the operator saw. */
export type JobGuard = Pick<Job, 'id' | 'status' | 'attempts' | 'started_at'>;

export interface JobsDb {
  readonly url: string;
  queueSnapshot(o: { failedSince: Date; listLimit: number }): Promise<DbResult<QueueSnapshot>>;
  /** Count of queued/pending jobs and the oldest one: the evidence for failure A on the local instance. */
  queuedSummary(): Promise<DbResult<{ count: number; estimated: boolean; oldest: Job | null }>>;
  /** One page, ordered by (created_at, id): page on with `after` (lib/actions/requeue/read.ts `scanJobs`). */
  findJobs(filter: JobFilter): Promise<DbResult<JobPage>>;
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
  /** Ends the connections a client kept open (the watch's, {@link JobsDbOptions.keepAliveMs}); absent: nothing kept. */
  close?(): Promise<void>;
}

export interface JobsDbOptions {
  url: string;
  key: string;
  timeoutMs: number;
  readRetries?: number;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
  fetch?: typeof fetch;
  /**
   * Keep idle connections this long, through a dispatcher of their own (lib/io/keep-alive.ts): the watch, whose
   * refreshes come further apart than Node's 4 s. Applied by {@link lazyJobsDb} (lib/io/context.ts), which loads it.
   */
  keepAliveMs?: number;
}

type PgAnswer = PromiseLike<{ data: unknown; error: PgError | null; status: number; count?: number | null }>;

/** What every request goes through: the client, the clock that times it, and the URL failures name. */
interface Conn {
  client: SupabaseClient;
  url: string;
  now: () => number;
  /** The smallest max-rows a list showed (rows sent short of both the limit and the count); counts above are estimates. */
  cap: number;
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
  // supabase-js parses Content-Range's total with parseInt: `0-99/*` (no count asked, or a proxy dropped it) is NaN.
  const count = typeof r.count === 'number' && Number.isFinite(r.count) ? r.count : null;
  return { ok: true, value: pick(r.data, count), ms };
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

/** A list cut short of both its limit and its count shows the server's max-rows. */
function noteCap(c: Conn, sent: number, asked: number, count: number | null): void {
  if (count !== null && sent > 0 && sent < asked && sent < count) c.cap = Math.min(c.cap, sent);
}

/** Whether a `count=estimated` answer is the planner's estimate: above max-rows (as far as this run knows it). */
function isEstimate(c: Conn, n: number, sent = 0): boolean {
  return n > sent && n > Math.min(EXACT_COUNT_UP_TO, c.cap);
}

/** A list with its `count=estimated`: the rows, the count, and whether the count is an estimate. */
interface Listed {
  rows: Job[];
  count: number;
  estimated: boolean;
}

type Builder = ReturnType<ReturnType<typeof table>['select']>;

function listed(c: Conn, limit: number, q: (b: Builder) => Builder): Promise<DbResult<Listed>> {
  const b = q(table(c).select(JOB_COLUMNS, { count: 'estimated' }))
    .limit(limit)
    .retry(false);
  return rows(c, b, (d, n) => {
    noteCap(c, d.length, limit, n);
    return { rows: d, count: n ?? d.length, estimated: false };
  });
}

/** Marks each count that is an estimate, once every list of the round has shown what it knows of max-rows. */
function settleEstimates(c: Conn, lists: Listed[]): void {
  for (const l of lists) l.estimated = isEstimate(c, l.count, l.rows.length);
}

const NEWEST_FINISHED = { ascending: false, nullsFirst: false } as const;

/**
 * The queue in four parallel reads: queued (oldest first), running, failed since, and the latest done. Each is an
 * index range scan under sandbox/migrations/004_queue_read_indexes.sql, whatever the size of the table.
 */
async function queueSnapshot(
  c: Conn,
  { failedSince, listLimit }: { failedSince: Date; listLimit: number },
): Promise<DbResult<QueueSnapshot>> {
  const started = c.now();
  const since = failedSince.toISOString();
  const answers = await Promise.all([
    listed(c, listLimit, (b) => b.in('status', ['queued', 'pending']).order('created_at', { ascending: true })),
    listed(c, listLimit, (b) => b.eq('status', 'running').order('started_at', { ascending: true, nullsFirst: true })),
    listed(c, listLimit, (b) =>
      b.eq('status', 'failed').gte('finished_at', since).order('finished_at', NEWEST_FINISHED),
    ),
    listed(c, 1, (b) => b.eq('status', 'done').order('finished_at', NEWEST_FINISHED)),
  ]);
  const ms = c.now() - started;
  for (const r of answers) if (!r.ok) return { ok: false, failure: r.failure, ms };
  const [queued, running, failed, done] = answers.map((r) => (r as { value: Listed }).value);
  settleEstimates(c, [queued, running, failed, done]);
  const names = ['queued/pending, oldest first', 'running', 'failed since', 'latest done'];
  return {
    ok: true,
    ms,
    value: {
      queued: { count: queued.count, estimated: queued.estimated, oldest: queued.rows },
      running: { count: running.count, estimated: running.estimated, jobs: running.rows },
      failed: { count: failed.count, estimated: failed.estimated, recent: failed.rows, since },
      done: { count: done.count, estimated: done.estimated, latest: done.rows[0] ?? null },
      reads: answers.map((r, i) => ({ read: names[i], ms: r.ms })),
    },
  };
}

async function queuedSummary(c: Conn): Promise<DbResult<{ count: number; estimated: boolean; oldest: Job | null }>> {
  const r = await listed(c, 1, (b) => b.in('status', ['queued', 'pending']).order('created_at', { ascending: true }));
  if (!r.ok) return r;
  settleEstimates(c, [r.value]);
  return { ...r, value: { count: r.value.count, estimated: r.value.estimated, oldest: r.value.rows[0] ?? null } };
}

/**
 * Lists without id, error or debug, ordered by indexed columns; counts as HEAD requests (no body). Counts over the
 * whole table are `estimated`; the two over the rate window stay exact (a range scan of the window's rows).
 */
async function watchReads(c: Conn, { since, limit }: WatchReadsOptions): Promise<DbResult<WatchReads>> {
  const started = c.now();
  const at = since.toISOString();
  const { backlog: first, others } = listLimits(limit);
  type Count = 'exact' | 'estimated';
  const from = (cols: string, count: Count, head = false) =>
    table(c).select(cols, { count, head }).retry(false) as unknown as Builder;
  const list = (cols: string, n: number, count: Count, q: (b: Builder) => Builder) =>
    rows(c, q(from(cols, count)).limit(n), (d, total): Counted<Job> => {
      noteCap(c, d.length, n, total);
      return { count: total ?? d.length, rows: d };
    });
  const head = (count: Count, q: (b: Builder) => Builder) => run(c, q(from('id', count, true)), (_d, n) => n ?? 0);
  const answers = await Promise.all([
    list('job_type,status,created_at', first, 'estimated', (b) =>
      b.in('status', ['queued', 'pending']).order('created_at'),
    ),
    head('estimated', (b) => b.eq('status', 'pending')),
    list('job_type,created_at,started_at', others, 'estimated', (b) =>
      b.eq('status', 'running').order('started_at', { nullsFirst: true }),
    ),
    list('job_type', others, 'estimated', (b) => b.eq('status', 'failed').order('created_at', { ascending: false })),
    head('estimated', (b) => b.eq('status', 'done')),
    list('created_at,started_at', others, 'exact', (b) =>
      b.in('status', ['done', 'failed']).gte('finished_at', at).order('finished_at', NEWEST_FINISHED),
    ),
    head('exact', (b) => b.eq('status', 'failed').gte('finished_at', at)),
  ]);
  const bad = answers.find((r) => !r.ok);
  if (bad && !bad.ok) return { ok: false, failure: bad.failure, ms: c.now() - started };
  const values = answers.map((r) => (r as { value: unknown }).value) as WatchAnswers;
  const reads = assembleWatchReads(since, values);
  const [backlog, pending, running, failed, done] = values;
  const estimated = (n: number, sent = 0) => isEstimate(c, n, sent);
  reads.estimated = {
    queued: estimated(backlog.count, backlog.rows.length) || estimated(pending),
    pending: estimated(pending),
    running: estimated(running.count, running.rows.length),
    failed: estimated(failed.count, failed.rows.length),
    done: estimated(done),
  };
  return { ok: true, ms: c.now() - started, value: reads };
}

/** `or=(…)` values with `.`, `:` or `,` are double-quoted (PostgREST's reserved characters). */
const quoted = (v: string) => `"${v.replace(/["\\]/g, (ch) => `\\${ch}`)}"`;

function findJobs(c: Conn, f: JobFilter): Promise<DbResult<JobPage>> {
  let q = table(c).select(JOB_COLUMNS, { count: 'estimated' });
  if (f.ids?.length) q = q.in('id', f.ids);
  // One status as eq: an ordered scan of (status, created_at, id) that stops at the limit. `= ANY(…)` of several
  // reads every matching row and sorts them (a range scan over the matches, never the table).
  if (f.statuses?.length === 1) q = q.eq('status', f.statuses[0]);
  else if (f.statuses?.length) q = q.in('status', f.statuses);
  if (f.jobType) q = q.eq('job_type', f.jobType);
  if (f.accountId) q = q.eq('account_id', f.accountId);
  if (f.createdBefore) q = q.lt('created_at', f.createdBefore.toISOString());
  if (f.createdAfter) q = q.gte('created_at', f.createdAfter.toISOString());
  if (f.errorContains) q = q.ilike('error', `%${escapeLike(f.errorContains)}%`);
  if (f.after) {
    // (created_at, id) > cursor, written so that created_at >= cursor is an index range condition.
    const at = quoted(f.after.created_at);
    q = q.gte('created_at', f.after.created_at).or(`created_at.gt.${at},id.gt.${quoted(f.after.id)}`);
  }
  const page = q.order('created_at', { ascending: true }).order('id').limit(f.limit).retry(false);
  return rows(c, page, (d, n) => {
    noteCap(c, d.length, f.limit, n);
    return { jobs: d, total: n, estimated: n !== null && isEstimate(c, n, d.length) };
  });
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
  const c: Conn = { client: createSupabase(o), url: o.url, now: () => o.now(), cap: Number.POSITIVE_INFINITY };
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
