/**
 * What one refresh of the watch view reads (the db port's `watchReads`): counts on the server and narrow `limit`ed
 * lists, so a refresh costs the same at a thousand jobs or ten million. Types, and the pure assembly of the answers.
 */
import type { Job, JobStatus } from '../core/job.ts';

/** One refresh's reads. */
export interface WatchReads {
  /**
   * Per status, PostgREST's `estimated` counts (exact up to the API's max-rows, the planner's estimate above); the
   * window's counts are exact.
   */
  counts: Record<JobStatus, number>;
  /** The statuses whose count is the planner's estimate (set by the db port; absent: all exact). */
  estimated?: Partial<Record<JobStatus, boolean>>;
  /** The oldest queued/pending jobs, oldest first (at most `limit`). */
  backlog: Array<Pick<Job, 'job_type' | 'status' | 'created_at'>>;
  /** Running jobs, longest running first (at most {@link listLimits}' `others`). */
  running: Array<Pick<Job, 'job_type' | 'created_at' | 'started_at'>>;
  /** The latest created failed jobs (at most `others`). */
  failed: Array<Pick<Job, 'job_type'>>;
  /** Finished (done or failed) at or after `since`: counts, and the latest finished (at most `others`). */
  window: { since: string; done: number; failed: number; latest: Array<Pick<Job, 'created_at' | 'started_at'>> };
}

export interface WatchReadsOptions {
  /** The start of the rate window. */
  since: Date;
  /** Rows of the backlog list (the other three lists take half); the bytes of a refresh grow with it, never with the table. */
  limit: number;
}

/** The rows each list may send: the backlog `limit`, the running, failed and finished lists half of it. */
export function listLimits(limit: number): { backlog: number; others: number } {
  return { backlog: limit, others: Math.max(1, Math.ceil(limit / 2)) };
}

/** A list read's answer: the count of every matching row, and the rows sent (at most the limit). */
export interface Counted<T> {
  count: number;
  rows: T[];
}

/** The seven answers of one refresh, in the order jobs-db.ts asks them. */
export type WatchAnswers = [
  backlog: Counted<WatchReads['backlog'][number]>,
  pending: number,
  running: Counted<WatchReads['running'][number]>,
  failed: Counted<WatchReads['failed'][number]>,
  done: number,
  finished: Counted<WatchReads['window']['latest'][number]>,
  failedSince: number,
];

/** The answers made into {@link WatchReads}. */
export function assembleWatchReads(since: Date, answers: WatchAnswers): WatchReads {
  const [backlog, pending, running, failed, done, finished, failedSince] = answers;
  // Two counts read a moment apart can cross (a job claimed in between): never below zero.
  return {
    counts: {
      queued: Math.max(0, backlog.count - pending),
      pending,
      running: running.count,
      done,
      failed: failed.count,
    },
    backlog: backlog.rows,
    running: running.rows,
    failed: failed.rows,
    window: {
      since: since.toISOString(),
      done: Math.max(0, finished.count - failedSince),
      failed: failedSince,
      latest: finished.rows,
    },
  };
}
