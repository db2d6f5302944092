/**
 * An in-memory {@link JobsDb} with the semantics the requeue relies on: the server-side filters of findJobs, the
 * compare-and-set of compareAndSet, and `hd_requeue_jobs` as sandbox/migrations/002_requeue_rpc.sql and 003_requeue_again.sql define it.
 * For unit tests (of the requeue and of the runbooks that hand over to it); hooks play a racing worker or a failing
 * network. Rows are copied in and out, as over HTTP.
 */
import type { DbFailure, DbResult, Job, JobFilter, JobGuard, JobsDb } from '../../lib/io/jobs-db.ts';
import { assembleWatchReads, listLimits, type WatchReadsOptions } from '../../lib/io/watch-reads.ts';

/** Options of {@link createMemoryJobsDb}. */
export interface MemoryJobsDbOptions {
  url?: string;
  /** Whether `hd_requeue_jobs` exists (else rpc answers 404 like PostgREST's PGRST202). */
  rpcInstalled?: boolean;
  /** The API's max-rows: a read or an RPC result sends at most this many rows, whatever was asked (as PostgREST). */
  maxRows?: number;
}

/** One call the memory db received, for assertions on what was (not) written. */
export interface MemoryCall {
  method: 'findJobs' | 'compareAndSet' | 'rpc' | 'watchReads';
  ids?: string[];
  fn?: string;
}

/** The memory db and its hooks. */
export interface MemoryJobsDb extends JobsDb {
  jobs: Map<string, Job>;
  calls: MemoryCall[];
  rpcInstalled: boolean;
  /** See {@link MemoryJobsDbOptions.maxRows}; may be changed between calls. */
  maxRows: number;
  /** Runs before a write is evaluated (compare-and-set or each job of an rpc): change a row here to race. */
  beforeWrite?: (jobId: string) => void;
  /** Makes a write fail with this; `applied: true` makes it fail after writing (a lost answer). */
  failWrite?: (jobId: string) => { failure: DbFailure; applied?: boolean } | undefined;
  /** Makes a read fail with this (the watch's reads pass `{ limit }` alone). */
  failRead?: (filter: JobFilter) => DbFailure | undefined;
  /** Runs after each read (the watch's polls): advance a fake worker here. */
  afterRead?: () => void;
  insert(job: Partial<Job> & Pick<Job, 'id'>): Job;
  get(id: string): Job | undefined;
}

const copy = <T>(v: T): T => (v === undefined ? v : JSON.parse(JSON.stringify(v)));

/** Microseconds, as Postgres keeps them; Date only has milliseconds. */
function instantKey(ts: string): string {
  const fraction = /\.(\d+)/.exec(ts)?.[1] ?? '';
  return `${Math.floor(Date.parse(ts) / 1000)}.${fraction.padEnd(6, '0').slice(0, 6)}`;
}

/** (created_at, id) order, as the keyset pages. */
function keyOrder(a: Pick<Job, 'created_at' | 'id'>, b: Pick<Job, 'created_at' | 'id'>): number {
  return instantKey(a.created_at).localeCompare(instantKey(b.created_at)) || a.id.localeCompare(b.id);
}

function sameInstant(a: string | null, b: string | null): boolean {
  return a === b || (a !== null && b !== null && instantKey(a) === instantKey(b));
}

function matches(j: Job, g: Pick<JobGuard, 'status' | 'attempts' | 'started_at'>): boolean {
  return j.status === g.status && j.attempts === g.attempts && sameInstant(j.started_at, g.started_at);
}

/** A failure whose outcome is unknown to the caller (the request may have been applied). */
export const NETWORK_TIMEOUT: DbFailure = {
  kind: 'timeout',
  status: 0,
  message: 'no answer from memory within 10000 ms',
  fix: 'check the network',
};

/** PostgREST's answer when its pool had no connection for the request within its timeout: nothing ran. */
export const POOL_EXHAUSTED: DbFailure = {
  kind: 'pool-exhausted',
  status: 504,
  message: 'the database pool was saturated (504 PGRST003: Timed out acquiring connection from connection pool.)',
  fix: 'lower --concurrency',
};

/** Cloudflare's 522 page in front of the project: the request may or may not have run. */
export const GATEWAY_522: DbFailure = {
  kind: 'gateway',
  status: 522,
  message: 'the gateway in front of Supabase (Cloudflare) answered 522: memory.local | 522: Connection timed out',
  fix: 'check status.supabase.com',
};

/** A fresh, empty memory db. */
export function createMemoryJobsDb(options: MemoryJobsDbOptions = {}): MemoryJobsDb {
  const jobs = new Map<string, Job>();
  const calls: MemoryCall[] = [];
  const ok = <T>(value: T): DbResult<T> => ({ ok: true, value, ms: 0 });
  const fail = <T>(failure: DbFailure): DbResult<T> => ({ ok: false, failure, ms: 0 });

  const db: MemoryJobsDb = {
    url: options.url ?? 'http://memory.local',
    jobs,
    calls,
    rpcInstalled: options.rpcInstalled ?? false,
    maxRows: options.maxRows ?? Number.POSITIVE_INFINITY,
    insert(job) {
      const full: Job = {
        account_id: null,
        job_type: 'import_assets_jsonl',
        status: 'failed',
        attempts: 1,
        error: null,
        debug: {},
        created_at: '2026-01-01T00:00:00.000000+00:00',
        started_at: null,
        finished_at: null,
        ...job,
      };
      jobs.set(full.id, copy(full));
      return copy(full);
    },
    get: (id) => copy(jobs.get(id)),
    async queueSnapshot() {
      return fail({ kind: 'bad-request', status: 400, message: 'not in the memory db', fix: '' });
    },
    async queuedSummary() {
      return fail({ kind: 'bad-request', status: 400, message: 'not in the memory db', fix: '' });
    },
    async findJobs(f) {
      calls.push({ method: 'findJobs', ids: f.ids });
      const failure = db.failRead?.(f);
      if (failure) return fail(failure);
      const needle = f.errorContains?.toLowerCase();
      const all = [...jobs.values()]
        .filter((j) => !f.ids?.length || f.ids.includes(j.id))
        .filter((j) => !f.statuses?.length || f.statuses.includes(j.status))
        .filter((j) => !f.jobType || j.job_type === f.jobType)
        .filter((j) => !f.accountId || j.account_id === f.accountId)
        .filter((j) => !f.createdBefore || Date.parse(j.created_at) < f.createdBefore.getTime())
        .filter((j) => !f.createdAfter || Date.parse(j.created_at) >= f.createdAfter.getTime())
        .filter((j) => needle === undefined || (j.error ?? '').toLowerCase().includes(needle))
        .filter((j) => !f.after || keyOrder(j, f.after) > 0)
        .sort(keyOrder);
      // Content-Range's total counts every matching row; the page is cut at the limit and at max-rows.
      const page = all.slice(0, Math.min(f.limit, db.maxRows));
      const result = ok({ jobs: copy(page), total: all.length, estimated: false });
      db.afterRead?.();
      return result;
    },
    async watchReads(o) {
      calls.push({ method: 'watchReads' });
      const failure = db.failRead?.({ limit: o.limit });
      if (failure) return fail(failure);
      const result = ok(watchReadsOf([...jobs.values()], o));
      db.afterRead?.();
      return result;
    },
    async compareAndSet(guard, patch, also) {
      calls.push({ method: 'compareAndSet', ids: [guard.id] });
      db.beforeWrite?.(guard.id);
      const injected = db.failWrite?.(guard.id);
      const row = jobs.get(guard.id);
      if (injected && !injected.applied) return fail(injected.failure);
      const debugMoved = also !== undefined && canonical(row?.debug ?? null) !== canonical(also.debug ?? null);
      if (!row || !matches(row, guard) || debugMoved) return injected ? fail(injected.failure) : ok(null);
      const updated = { ...row, ...copy(patch) } as Job;
      jobs.set(guard.id, updated);
      return injected ? fail(injected.failure) : ok(copy(updated));
    },
    async rpc<T>(fn: string, args: Record<string, unknown>): Promise<DbResult<T>> {
      calls.push({ method: 'rpc', fn, ids: ((args.p_jobs as JobGuard[]) ?? []).map((g) => g.id) });
      if (fn !== 'hd_requeue_jobs' || !db.rpcInstalled) {
        return fail({
          kind: 'missing-table',
          status: 404,
          message: `Could not find the function public.${fn} in the schema cache`,
          fix: '',
        });
      }
      const guards = (args.p_jobs as JobGuard[]) ?? [];
      const entry = (args.p_entry as Record<string, unknown>) ?? {};
      const reset = args.p_reset_attempts === true;
      let lostAnswer: DbFailure | undefined;
      for (const g of guards) {
        const injected = db.failWrite?.(g.id);
        if (injected && !injected.applied) return fail(injected.failure);
        if (injected) lostAnswer = injected.failure;
      }
      const out: Job[] = [];
      for (const g of guards) {
        db.beforeWrite?.(g.id);
        const row = jobs.get(g.id);
        if (!row || !matches(row, g) || !['failed', 'running', 'done'].includes(row.status)) continue;
        const debug = row.debug && typeof row.debug === 'object' && !Array.isArray(row.debug) ? row.debug : {};
        const raw = (debug as Record<string, unknown>).requeue_history;
        const history = raw === undefined || raw === null ? [] : Array.isArray(raw) ? raw : [raw];
        const updated: Job = {
          ...row,
          status: 'queued',
          error: null,
          started_at: null,
          finished_at: null,
          attempts: reset ? 0 : row.attempts,
          debug: {
            ...debug,
            requeue_history: [
              ...history,
              {
                ...entry,
                from_status: row.status,
                from_error: row.error,
                from_attempts: row.attempts,
                started_at: row.started_at,
                finished_at: row.finished_at,
              },
            ],
          },
        };
        jobs.set(g.id, updated);
        out.push(copy(updated));
      }
      // PostgREST cuts a function's result at max-rows too: the rows past it were written all the same.
      return lostAnswer ? fail(lostAnswer) : ok(out.slice(0, db.maxRows) as T);
    },
  };
  return db;
}

/** The watch's seven reads over the rows, with the server's filters, orders and limits (and narrow columns). */
function watchReadsOf(all: Job[], { since, limit }: WatchReadsOptions) {
  const by = (k: 'created_at' | 'started_at' | 'finished_at', dir: 1 | -1) => (a: Job, b: Job) =>
    a[k] === b[k]
      ? 0
      : a[k] === null
        ? -1
        : b[k] === null
          ? 1
          : dir * instantKey(a[k]!).localeCompare(instantKey(b[k]!));
  const where = (statuses: Job['status'][], order: (a: Job, b: Job) => number) =>
    all.filter((j) => statuses.includes(j.status)).sort(order);
  const limits = listLimits(limit);
  const counted = <T>(list: Job[], pick: (j: Job) => T, n = limits.others) => ({
    count: list.length,
    rows: list.slice(0, n).map(pick),
  });
  const finished = (j: Job) => j.finished_at !== null && Date.parse(j.finished_at) >= since.getTime();
  const finishedSince = where(['done', 'failed'], by('finished_at', -1)).filter(finished);
  return copy(
    assembleWatchReads(since, [
      counted(
        where(['queued', 'pending'], by('created_at', 1)),
        (j) => ({ job_type: j.job_type, status: j.status, created_at: j.created_at }),
        limits.backlog,
      ),
      all.filter((j) => j.status === 'pending').length,
      counted(where(['running'], by('started_at', 1)), (j) => ({
        job_type: j.job_type,
        created_at: j.created_at,
        started_at: j.started_at,
      })),
      counted(where(['failed'], by('created_at', -1)), (j) => ({ job_type: j.job_type })),
      all.filter((j) => j.status === 'done').length,
      counted(finishedSince, (j) => ({ created_at: j.created_at, started_at: j.started_at })),
      finishedSince.filter((j) => j.status === 'failed').length,
    ]),
  );
}

/** JSON with object keys sorted: jsonb equality, as PostgreSQL judges it. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
}
