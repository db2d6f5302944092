/**
 * Watching requeued jobs: which the worker picked up, finished, or failed again, within a bounded time. The result
 * is the receipt that goes into the output, the JSON and the markdown report. Reads only.
 */

import type { Clock } from '../../core/ports.ts';
import { clip } from '../../core/text.ts';
import { errorSignature } from '../../findings/error-signature.ts';
import type { Job, JobStatus, JobsDb } from '../../io/jobs-db.ts';
import type { Output } from '../../io/output.ts';
import { readJobsById } from './read.ts';

/** How often the watched jobs are read: the worker polls every few hundred ms to a few s. */
export const WATCH_POLL_MS = 1000;

/** Where a requeued job is now, as the receipt counts it. */
export type WatchState = 'still-queued' | 'running' | 'done' | 'failed-again' | 'gone';

/** One job as last seen by the watch. */
export interface WatchedJob {
  id: string;
  status: JobStatus | null;
  state: WatchState;
  attempts?: number;
  /** Failed again: the new error's signature and first line. */
  signature?: string;
  error?: string;
}

/** The receipt of a watch (verify, or a canary). */
export interface WatchReceipt {
  /** Seconds asked for. */
  seconds: number;
  /** Seconds actually watched. */
  watchedSeconds: number;
  /** settled: every job done or failed; timeout: time ran out first. */
  ended: 'settled' | 'timeout' | 'aborted' | 'read-failed' | 'not-watched';
  message?: string;
  total: number;
  counts: { pickedUp: number; stillQueued: number; running: number; done: number; failedAgain: number; gone: number };
  jobs: WatchedJob[];
}

function stateOf(job: Job | undefined): WatchState {
  if (!job) return 'gone';
  switch (job.status) {
    case 'queued':
    case 'pending':
      return 'still-queued';
    case 'running':
      return 'running';
    case 'done':
      return 'done';
    case 'failed':
      return 'failed-again';
  }
}

const TERMINAL: ReadonlySet<WatchState> = new Set(['done', 'failed-again', 'gone']);

function watched(id: string, job: Job | undefined): WatchedJob {
  const state = stateOf(job);
  const w: WatchedJob = { id, status: job?.status ?? null, state };
  if (job) w.attempts = job.attempts;
  if (job && state === 'failed-again') {
    w.signature = errorSignature(job.error);
    w.error = clip((job.error ?? '').split('\n')[0], 300);
  }
  return w;
}

function receipt(
  seconds: number,
  startedAt: number,
  now: number,
  ended: WatchReceipt['ended'],
  jobs: WatchedJob[],
  message?: string,
): WatchReceipt {
  const count = (s: WatchState) => jobs.filter((j) => j.state === s).length;
  const counts = {
    stillQueued: count('still-queued'),
    running: count('running'),
    done: count('done'),
    failedAgain: count('failed-again'),
    gone: count('gone'),
    pickedUp: 0,
  };
  counts.pickedUp = counts.running + counts.done + counts.failedAgain;
  return {
    seconds,
    watchedSeconds: Math.round((now - startedAt) / 100) / 10,
    ended,
    ...(message ? { message } : {}),
    total: jobs.length,
    counts,
    jobs,
  };
}

/** The receipt of a run that did not watch. */
export function notWatched(ids: readonly string[]): WatchReceipt {
  return receipt(
    0,
    0,
    0,
    'not-watched',
    ids.map((id) => ({ id, status: 'queued', state: 'still-queued' })),
  );
}

/**
 * Reads the jobs every {@link WATCH_POLL_MS} until each is done, failed or gone, or `seconds` pass, or `signal`
 * aborts. A read failure ends the watch with what was seen so far (the writes are done; the watch is a courtesy).
 */
export async function watchJobs(
  deps: { db: JobsDb; clock: Clock; out: Output; signal?: AbortSignal },
  ids: readonly string[],
  seconds: number,
  label = 'watching',
): Promise<WatchReceipt> {
  const { db, clock, out } = deps;
  const startedAt = clock.now().getTime();
  const deadline = startedAt + seconds * 1000;
  const latest = new Map<string, WatchedJob>(ids.map((id) => [id, { id, status: 'queued', state: 'still-queued' }]));
  const open = () => [...latest.values()].filter((j) => !TERMINAL.has(j.state)).map((j) => j.id);
  let clear = () => {};
  try {
    for (;;) {
      const pending = open();
      const read = await readJobsById(db, pending);
      if (!read.ok) {
        return receipt(
          seconds,
          startedAt,
          clock.now().getTime(),
          'read-failed',
          [...latest.values()],
          read.failure.message,
        );
      }
      for (const id of pending) latest.set(id, watched(id, read.found.get(id.toLowerCase())));
      const now = clock.now().getTime();
      const jobs = [...latest.values()];
      if (!open().length) return receipt(seconds, startedAt, now, 'settled', jobs);
      if (deps.signal?.aborted) return receipt(seconds, startedAt, now, 'aborted', jobs);
      if (now >= deadline) return receipt(seconds, startedAt, now, 'timeout', jobs);
      const r = receipt(seconds, startedAt, now, 'timeout', jobs);
      clear();
      clear = out.progress(
        `${label} ${ids.length} job${ids.length === 1 ? '' : 's'}: ${r.counts.done} done, ${r.counts.failedAgain} failed again, ${r.counts.running} running, ${r.counts.stillQueued} queued (${Math.ceil((deadline - now) / 1000)} s left)`,
      );
      await clock.sleep(Math.min(WATCH_POLL_MS, Math.max(0, deadline - now)));
    }
  } finally {
    clear();
  }
}
