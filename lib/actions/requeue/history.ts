/**
 * `debug.requeue_history`: what a job looked like each time it was requeued. Pure. The SQL function in
 * sandbox/migrations/002_requeue_rpc.sql builds the same entry server-side; keep the two in step.
 */
import type { Job, JobStatus } from '../../io/jobs-db.ts';

/** One entry of `debug.requeue_history`. */
export interface RequeueHistoryEntry {
  /** When the requeue was written (ISO). */
  at: string;
  by: string;
  reason: string | null;
  from_status: JobStatus;
  /** The error the requeue cleared, kept whole: it is the evidence of what went wrong. */
  from_error: string | null;
  from_attempts: number;
  started_at: string | null;
  finished_at: string | null;
  /** This invocation of the runbook. */
  run_id: string;
  /** The command (selection, reason, options): a rerun of the same command never requeues a job twice. */
  op_id: string;
}

/** The fields every job of one write shares; the rest come from the job itself. */
export type HistoryCommon = Pick<RequeueHistoryEntry, 'at' | 'by' | 'reason' | 'run_id' | 'op_id'>;

/** The state a requeue changes, as the audit file and the preview show it. */
export interface JobState {
  status: JobStatus;
  attempts: number;
  error: string | null;
  started_at: string | null;
  finished_at: string | null;
}

/** The fields of a row a requeue changes. */
export function jobState(job: Pick<Job, 'status' | 'attempts' | 'error' | 'started_at' | 'finished_at'>): JobState {
  return {
    status: job.status,
    attempts: job.attempts,
    error: job.error,
    started_at: job.started_at,
    finished_at: job.finished_at,
  };
}

/** What a requeue leaves: queued, error and times cleared, attempts kept unless reset. */
export function requeuedState(before: JobState, resetAttempts: boolean): JobState {
  return {
    status: 'queued',
    attempts: resetAttempts ? 0 : before.attempts,
    error: null,
    started_at: null,
    finished_at: null,
  };
}

/** The entry recording `before`, as the SQL function builds it server-side. */
export function historyEntry(before: JobState, common: HistoryCommon): RequeueHistoryEntry {
  return {
    at: common.at,
    by: common.by,
    reason: common.reason,
    from_status: before.status,
    from_error: before.error,
    from_attempts: before.attempts,
    started_at: before.started_at,
    finished_at: before.finished_at,
    run_id: common.run_id,
    op_id: common.op_id,
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The existing history as a list; a non-list value (hand-edited) is kept as the first element, never dropped. */
export function requeueHistory(debug: unknown): unknown[] {
  if (!isPlainObject(debug)) return [];
  const h = debug.requeue_history;
  if (h === undefined || h === null) return [];
  return Array.isArray(h) ? h : [h];
}

/**
 * The new `debug` with `entry` appended to `requeue_history`. Every other key is kept; a `debug` that is not an
 * object (it should always be one) is kept under `previous_debug` rather than overwritten.
 */
export function appendHistory(debug: unknown, entry: RequeueHistoryEntry): Record<string, unknown> {
  const base: Record<string, unknown> =
    debug === null || debug === undefined ? {} : isPlainObject(debug) ? { ...debug } : { previous_debug: debug };
  return { ...base, requeue_history: [...requeueHistory(debug), entry] };
}

function entries(debug: unknown): Array<Record<string, unknown>> {
  return requeueHistory(debug).filter(isPlainObject);
}

/** The entry this run wrote, if any: how an interrupted or timed-out write is told apart from one never made. */
export function entryOfRun(debug: unknown, runId: string): RequeueHistoryEntry | undefined {
  return entries(debug).find((e) => e.run_id === runId) as RequeueHistoryEntry | undefined;
}

/** The latest entry the same command wrote earlier, if any. */
export function entryOfOp(debug: unknown, opId: string): RequeueHistoryEntry | undefined {
  return entries(debug).findLast((e) => e.op_id === opId) as RequeueHistoryEntry | undefined;
}

/** The job's latest requeue, by any command or hand-over, if any. */
export function lastRequeue(debug: unknown): RequeueHistoryEntry | undefined {
  return entries(debug).at(-1) as RequeueHistoryEntry | undefined;
}

/** The state just before the requeue, as recorded in its history entry (exact, even when written server-side). */
export function stateFromEntry(entry: RequeueHistoryEntry): JobState {
  return {
    status: entry.from_status,
    attempts: entry.from_attempts,
    error: entry.from_error,
    started_at: entry.started_at,
    finished_at: entry.finished_at,
  };
}
