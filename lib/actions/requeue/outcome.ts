/**
 * What a planned write came to, and what both write paths (cas.ts, rpc.ts) share: the guard the preview saw and
 * what changed since, the audit line of a settled write, reading jobs back, and settling a write whose outcome is
 * unknown from the row as it is now.
 */
import type { Clock } from '../../core/ports.ts';
import type { DbFailure, Job, JobGuard, JobsDb } from '../../io/jobs-db.ts';
import type { AuditLog } from './audit.ts';
import { entryOfRun, type JobState, jobState, stateFromEntry } from './history.ts';
import type { PlannedWrite, RequeuePlan } from './plan.ts';
import { readJobsById } from './read.ts';

/** The optional SQL function of sandbox/migrations/002_requeue_rpc.sql (with 003_requeue_again.sql). */
export const RPC_FUNCTION = 'hd_requeue_jobs';

/** requeued; skipped (changed since the preview, never overwritten); failed (refused, not written); unknown (no answer: settled by a rerun); not-attempted (the run stopped first). */
export type WriteOutcome = 'requeued' | 'skipped' | 'failed' | 'unknown' | 'not-attempted';

/** What happened to one planned write. */
export interface WriteResult {
  jobId: string;
  outcome: WriteOutcome;
  /** Why, for anything but requeued. */
  detail?: string;
  /** Exact state before the write (from the history entry when written), else as the preview saw it. */
  before: JobState;
  /** State after the write, or as seen now when skipped; null when unknown. */
  after: JobState | null;
  via?: 'rpc' | 'cas';
}

/** The results of one `apply` call, in the order the writes settled. */
export interface ApplyRun {
  results: WriteResult[];
  /** Why the run stopped before the end, when it did. */
  stopped?: { kind: 'aborted' | 'write-failed' | 'outcome-unknown'; message: string; fix: string };
}

/** Why a batch stopped the run, or undefined when the run goes on. */
export type Stopped = ApplyRun['stopped'];

/**
 * How many writes may be in flight: `--concurrency` at first, halved (never below 1) each time the database pool
 * turns a write away (504 PGRST003), for the rest of the run.
 */
export interface WriteLimit {
  readonly start: number;
  current: number;
  /** Writes the pool turned away (each read back, then retried or reported). */
  refusals: number;
}

export function writeLimit(start: number): WriteLimit {
  return { start, current: Math.max(1, start), refusals: 0 };
}

/**
 * A write started while `startedAt` writes were allowed was turned away by a saturated pool: halve the limit, once
 * per generation (the other writes already in flight at that limit were sent before anyone knew).
 */
export function lowerLimit(limit: WriteLimit, startedAt: number): void {
  limit.refusals += 1;
  if (startedAt <= limit.current) limit.current = Math.max(1, Math.floor(limit.current / 2));
}

/** The line a summary gives a run whose pool was saturated, or undefined when it was not. */
export function saturationLine(limit: WriteLimit, path?: 'rpc' | 'cas'): string | undefined {
  if (!limit.refusals) return undefined;
  if (path === 'rpc') {
    const calls = `${limit.refusals} call${limit.refusals === 1 ? '' : 's'} of the SQL function`;
    return `the database pool was saturated: batches halved (${calls} turned away with 504 PGRST003, each read back before it was retried)`;
  }
  const lowered = limit.current < limit.start ? `concurrency lowered to ${limit.current}` : 'concurrency kept at 1';
  return `the database pool was saturated: ${lowered} (${limit.refusals} write${limit.refusals === 1 ? '' : 's'} turned away with 504 PGRST003, each read back before it was retried)`;
}

/** What a batch is written with: the ports, the plan, how many writes in flight, and whether to stop. */
export interface BatchContext {
  db: JobsDb;
  clock: Clock;
  audit: AuditLog;
  plan: RequeuePlan;
  limit: WriteLimit;
  aborted(): boolean;
}

/**
 * Runs `fn` over `items` with at most `limit` in flight (a number, or read again before each item: a limit that
 * drops lets the workers above it finish their item and stop); stops taking new items once `stop()` says so.
 */
export async function eachBounded<T>(
  items: readonly T[],
  limit: number | (() => number),
  fn: (item: T, index: number) => Promise<void>,
  stop: () => boolean,
): Promise<Set<number>> {
  const now = typeof limit === 'number' ? () => limit : limit;
  const started = new Set<number>();
  let next = 0;
  const worker = async (w: number) => {
    while (next < items.length && !stop() && w < Math.max(1, now())) {
      const i = next++;
      started.add(i);
      await fn(items[i], i);
    }
  };
  const workers = Math.max(1, Math.min(now(), items.length));
  await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
  return started;
}

/** A timestamp to microseconds (Postgres precision), whatever offset or fraction length the text uses. */
function instantKey(ts: string): string {
  const ms = Date.parse(ts);
  const fraction = /\.(\d+)/.exec(ts)?.[1] ?? '';
  return `${Math.floor(ms / 1000)}.${fraction.padEnd(6, '0').slice(0, 6)}`;
}

function sameInstant(a: string | null, b: string | null): boolean {
  if (a === b) return true;
  if (a === null || b === null) return false;
  return instantKey(a) === instantKey(b);
}

/** Whether a row still matches the guard the preview saw. */
export function matchesGuard(job: Pick<Job, 'status' | 'attempts' | 'started_at'>, guard: JobGuard): boolean {
  return (
    job.status === guard.status && job.attempts === guard.attempts && sameInstant(job.started_at, guard.started_at)
  );
}

/** One line on what changed since the preview, e.g. "status failed → running, attempts 2 → 3 (the worker …)". */
export function describeChange(guard: JobGuard, now: Pick<Job, 'status' | 'attempts' | 'started_at'>): string {
  const parts: string[] = [];
  if (now.status !== guard.status) parts.push(`status ${guard.status} → ${now.status}`);
  if (now.attempts !== guard.attempts) parts.push(`attempts ${guard.attempts} → ${now.attempts}`);
  if (!sameInstant(now.started_at, guard.started_at))
    parts.push(`started_at ${guard.started_at ?? 'null'} → ${now.started_at ?? 'null'}`);
  const who = now.status === 'running' && guard.status !== 'running' ? ' (the worker picked it up)' : '';
  return `changed since the preview: ${parts.join(', ') || 'unknown change'}${who}; not overwritten`;
}

/**
 * Failures after which the server certainly did not write (the request was refused). A paused project (540)
 * runs nothing; a gateway error (520–524, 544) may come after the write committed, so it is not one of these.
 */
export function refused(f: DbFailure): boolean {
  return (
    f.kind === 'unauthorized' ||
    f.kind === 'forbidden' ||
    f.kind === 'bad-request' ||
    f.kind === 'missing-table' ||
    f.kind === 'paused'
  );
}

/** The stop after a write whose outcome stays unknown. */
export function outcomeUnknown(message: string): NonNullable<Stopped> {
  return {
    kind: 'outcome-unknown',
    message,
    fix: 'rerun the same command: it settles the audit file and requeues nothing twice',
  };
}

/** A write that did not happen (or is not known to have happened), as the preview saw the job unless told. */
export function notWritten(
  w: PlannedWrite,
  outcome: Exclude<WriteOutcome, 'requeued'>,
  detail: string,
  via: 'rpc' | 'cas',
  before: JobState = w.before,
  after: JobState | null = null,
): WriteResult {
  return { jobId: w.jobId, outcome, detail, before, after, via };
}

/** Announces a batch in the audit file before it is written. */
export function announce(ctx: BatchContext, batch: readonly PlannedWrite[], at: string): void {
  ctx.audit.intent(
    batch.map((w) => w.jobId),
    at,
    ctx.plan.resetAttempts,
  );
}

/** The audit line of one settled write. */
export function auditLine(ctx: BatchContext, w: PlannedWrite, r: WriteResult, at: string): void {
  ctx.audit.job({
    at,
    job_id: w.jobId,
    before: r.before,
    after: r.after,
    outcome: r.outcome === 'requeued' ? 'requeued' : 'skipped',
    ...(r.outcome === 'requeued' ? {} : { note: `${r.outcome}: ${r.detail ?? ''}`.trim() }),
  });
}

/** Reads jobs back by id (in chunks); undefined when the read fails. */
export async function readBack(ctx: BatchContext, ids: readonly string[]): Promise<Map<string, Job> | undefined> {
  const r = await readJobsById(ctx.db, ids);
  return r.ok ? r.found : undefined;
}

/** After a write of unknown outcome: the job carries this run's history entry, or it was not written (yet). */
export function settleFromRow(
  ctx: BatchContext,
  w: PlannedWrite,
  row: Job | undefined,
  via: 'rpc' | 'cas',
  why: string,
): WriteResult {
  const entry = row ? entryOfRun(row.debug, ctx.plan.runId) : undefined;
  if (row && entry)
    return { jobId: w.jobId, outcome: 'requeued', before: stateFromEntry(entry), after: jobState(row), via };
  return notWritten(
    w,
    'unknown',
    `${why}; not seen written when read back — a rerun of the same command settles it`,
    via,
  );
}
