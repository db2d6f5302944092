/**
 * Executes planned writes. Two paths with the same guarantees:
 * - per job: re-read the batch, then one compare-and-set PATCH per job (bounded concurrency), conditioned on the
 *   status, attempts and started_at the preview saw, with the history entry built from the row as it is now;
 * - per batch: one call of `hd_requeue_jobs` (sandbox/migrations/002_requeue_rpc.sql), which does the same guard and
 *   history append server-side, when that function is installed.
 * Either way each batch is announced in the audit file before it is written, and each job gets its line right
 * after its write. A write whose outcome is unknown (timeout, 5xx) is checked by reading the job back; the run then
 * stops rather than guess, and a rerun of the same command settles it.
 */

import { RunbookError } from '../../core/exit-codes.ts';
import type { Clock } from '../../core/ports.ts';
import type { DbFailure, Job, JobGuard, JobsDb } from '../../io/jobs-db.ts';
import type { Output } from '../../io/output.ts';
import type { AuditLog } from './audit.ts';
import {
  appendHistory,
  entryOfOp,
  entryOfRun,
  historyEntry,
  type JobState,
  jobState,
  requeuedState,
  stateFromEntry,
} from './history.ts';
import type { PlannedWrite, RequeuePlan } from './plan.ts';
import { readJobsById } from './read.ts';

/**
 * Compare-and-set writes in flight by default. At 50 ms to Supabase, 24 in flight requeue 10,000 jobs in about
 * 25 s; PostgREST queues what its pool cannot take at once, so this is still gentle on the API.
 */
export const DEFAULT_CONCURRENCY = 24;
/** The most `--concurrency` allows. */
export const MAX_CONCURRENCY = 64;
/** Jobs per audit intent and re-read on the per-job path (a multiple of the default concurrency). */
const CAS_BATCH = 240;
/** Jobs per server call: one statement of guarded updates, well under a second even for the largest batch. */
const RPC_BATCH = 1000;
/** How often a job whose debug another writer changed meanwhile is read again and written again. */
const MAX_DEBUG_REPLANS = 3;

/** The optional SQL function of sandbox/migrations/002_requeue_rpc.sql (with 003_requeue_again.sql). */
export const RPC_FUNCTION = 'hd_requeue_jobs';

/** `--rpc`: use the SQL function when installed, never, or require it. */
export type RpcMode = 'auto' | 'off' | 'only';

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

/** The ports an applier writes through. */
export interface ApplyDeps {
  db: JobsDb;
  clock: Clock;
  out: Output;
  audit: AuditLog;
  signal?: AbortSignal;
}

/** How to write: concurrency of the per-job path, and whether to use the SQL function. */
export interface ApplyOptions {
  concurrency: number;
  rpc: RpcMode;
}

/** The results of one `apply` call, in the order the writes settled. */
export interface ApplyRun {
  results: WriteResult[];
  /** Why the run stopped before the end, when it did. */
  stopped?: { kind: 'aborted' | 'write-failed' | 'outcome-unknown'; message: string; fix: string };
}

/** Runs `fn` over `items` with at most `limit` in flight; stops taking new items once `stop()` says so. */
export async function eachBounded<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
  stop: () => boolean,
): Promise<Set<number>> {
  const started = new Set<number>();
  let next = 0;
  const worker = async () => {
    while (next < items.length && !stop()) {
      const i = next++;
      started.add(i);
      await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
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

/** Failures after which the server certainly did not write (the request was refused). */
function refused(f: DbFailure): boolean {
  return f.kind === 'unauthorized' || f.kind === 'forbidden' || f.kind === 'bad-request' || f.kind === 'missing-table';
}

/**
 * An applier for one plan: decides the path once (probing for the SQL function unless told not to), then writes
 * whatever subsets of the plan it is given (the canary first, the rest later) with the same rules.
 */
export function createApplier(deps: ApplyDeps, plan: RequeuePlan, options: ApplyOptions) {
  const { db, clock, out, audit } = deps;
  let path: 'rpc' | 'cas' | undefined;
  let pathNote = '';
  const concurrency = Math.max(1, Math.min(MAX_CONCURRENCY, options.concurrency));

  async function choosePath(): Promise<void> {
    if (path) return;
    if (options.rpc === 'off') {
      path = 'cas';
      pathNote = `one compare-and-set per job (--rpc off), ${concurrency} at a time`;
      return;
    }
    // An empty batch: proves the function is there and callable, and writes nothing.
    const r = await db.rpc<unknown>(RPC_FUNCTION, { p_jobs: [], p_entry: {}, p_reset_attempts: false });
    if (r.ok) {
      path = 'rpc';
      pathNote = `server-side ${RPC_FUNCTION}, ${RPC_BATCH} jobs per call`;
      return;
    }
    const why =
      r.failure.status === 404
        ? `${RPC_FUNCTION} is not installed (sandbox/migrations/002_requeue_rpc.sql, then 003_requeue_again.sql)`
        : `${RPC_FUNCTION} is not usable: ${r.failure.message}`;
    if (options.rpc === 'only') {
      throw new RunbookError(
        `--rpc only: ${why}`,
        'apply sandbox/migrations/002_requeue_rpc.sql and 003_requeue_again.sql to the project, or use --rpc auto',
      );
    }
    path = 'cas';
    pathNote = `${why}: one compare-and-set per job, ${concurrency} at a time`;
  }

  const aborted = () => deps.signal?.aborted === true;

  function progress(done: number, total: number): () => void {
    return out.progress(`requeue ${done}/${total}`);
  }

  function line(w: PlannedWrite, r: WriteResult, at: string) {
    audit.job({
      at,
      job_id: w.jobId,
      before: r.before,
      after: r.after,
      outcome: r.outcome === 'requeued' ? 'requeued' : 'skipped',
      ...(r.outcome === 'requeued' ? {} : { note: `${r.outcome}: ${r.detail ?? ''}`.trim() }),
    });
  }

  /** Reads jobs back by id (in chunks); undefined when the read fails. */
  async function readBack(ids: readonly string[]): Promise<Map<string, Job> | undefined> {
    const r = await readJobsById(db, ids);
    return r.ok ? r.found : undefined;
  }

  /** After a write of unknown outcome: the job carries this run's history entry, or it was not written (yet). */
  function settleFromRow(w: PlannedWrite, row: Job | undefined, via: 'rpc' | 'cas', why: string): WriteResult {
    const entry = row ? entryOfRun(row.debug, plan.runId) : undefined;
    if (row && entry)
      return { jobId: w.jobId, outcome: 'requeued', before: stateFromEntry(entry), after: jobState(row), via };
    return {
      jobId: w.jobId,
      outcome: 'unknown',
      detail: `${why}; not seen written when read back — a rerun of the same command settles it`,
      before: w.before,
      after: null,
      via,
    };
  }

  async function casBatch(
    batch: PlannedWrite[],
    results: WriteResult[],
    tick: () => void,
  ): Promise<ApplyRun['stopped']> {
    audit.intent(
      batch.map((w) => w.jobId),
      clock.now().toISOString(),
      plan.resetAttempts,
    );
    const fresh = await readBack(batch.map((w) => w.jobId));
    if (!fresh) {
      const at = clock.now().toISOString();
      for (const w of batch) {
        const r: WriteResult = {
          jobId: w.jobId,
          outcome: 'failed',
          detail: 'could not read it back before writing; not written',
          before: w.before,
          after: null,
          via: 'cas',
        };
        line(w, r, at);
        results.push(r);
      }
      return {
        kind: 'write-failed',
        message: 'could not read the jobs before writing them',
        fix: 'check the connection to Supabase and rerun the same command',
      };
    }
    let stopped: ApplyRun['stopped'];
    const settle = (w: PlannedWrite, r: WriteResult) => {
      if (r.outcome !== 'unknown') line(w, r, clock.now().toISOString());
      results.push(r);
      tick();
    };
    const started = await eachBounded(
      batch,
      concurrency,
      async (w) => {
        const row = fresh.get(w.jobId);
        if (!row) {
          settle(w, {
            jobId: w.jobId,
            outcome: 'skipped',
            detail: 'the job no longer exists',
            before: w.before,
            after: null,
            via: 'cas',
          });
          return;
        }
        if (!matchesGuard(row, w.guard)) {
          settle(w, {
            jobId: w.jobId,
            outcome: 'skipped',
            detail: describeChange(w.guard, row),
            before: w.before,
            after: jobState(row),
            via: 'cas',
          });
          return;
        }
        const before = jobState(row);
        const after = requeuedState(before, plan.resetAttempts);
        // The history is appended to the debug read just now, and the write holds only while debug is still that:
        // a note another writer adds meanwhile makes it miss, and the job is read again and written again on top of
        // the note (a few times at most), never overwritten.
        let current = row;
        let r: Awaited<ReturnType<JobsDb['compareAndSet']>>;
        for (let attempt = 1; ; attempt++) {
          const entry = historyEntry(before, {
            at: clock.now().toISOString(),
            by: plan.by,
            reason: plan.reason,
            run_id: plan.runId,
            op_id: plan.opId,
          });
          r = await db.compareAndSet(
            w.guard,
            { ...after, debug: appendHistory(current.debug, entry) },
            { debug: current.debug },
          );
          if (!(r.ok && r.value === null) || attempt === MAX_DEBUG_REPLANS) break;
          const again = (await readBack([w.jobId]))?.get(w.jobId);
          if (!again || !matchesGuard(again, w.guard)) break;
          current = again;
        }
        if (r.ok && r.value) {
          settle(w, { jobId: w.jobId, outcome: 'requeued', before, after: jobState(r.value), via: 'cas' });
        } else if (r.ok) {
          // The guard matched no row: someone changed it between the re-read and the write. Say what changed.
          const now = (await readBack([w.jobId]))?.get(w.jobId);
          settle(w, {
            jobId: w.jobId,
            outcome: 'skipped',
            detail: now
              ? matchesGuard(now, w.guard)
                ? `its debug kept changing while it was written (${MAX_DEBUG_REPLANS} tries); not overwritten`
                : describeChange(w.guard, now)
              : 'changed just before the write (the compare-and-set matched no row); not overwritten',
            before,
            after: now ? jobState(now) : null,
            via: 'cas',
          });
        } else if (refused(r.failure)) {
          settle(w, {
            jobId: w.jobId,
            outcome: 'failed',
            detail: `${r.failure.message}; not written`,
            before,
            after: null,
            via: 'cas',
          });
          stopped ??= { kind: 'write-failed', message: r.failure.message, fix: r.failure.fix };
        } else {
          const back = await readBack([w.jobId]);
          const settled = settleFromRow(w, back?.get(w.jobId), 'cas', r.failure.message);
          settle(w, settled);
          if (settled.outcome === 'unknown') {
            stopped ??= {
              kind: 'outcome-unknown',
              message: r.failure.message,
              fix: 'rerun the same command: it settles the audit file and requeues nothing twice',
            };
          }
        }
      },
      () => stopped !== undefined || aborted(),
    );
    const at = clock.now().toISOString();
    batch.forEach((w, i) => {
      if (started.has(i)) return;
      // Announced but never attempted: say so, so the intent is settled.
      const r: WriteResult = {
        jobId: w.jobId,
        outcome: 'not-attempted',
        detail: aborted() ? 'interrupted before this write' : 'the run stopped before this write',
        before: w.before,
        after: null,
        via: 'cas',
      };
      line(w, r, at);
      results.push(r);
    });
    return stopped;
  }

  async function rpcBatch(
    batch: PlannedWrite[],
    results: WriteResult[],
    tick: (n: number) => void,
  ): Promise<ApplyRun['stopped']> {
    const at = clock.now().toISOString();
    audit.intent(
      batch.map((w) => w.jobId),
      at,
      plan.resetAttempts,
    );
    const r = await db.rpc<Job[] | null>(RPC_FUNCTION, {
      p_jobs: batch.map((w) => w.guard),
      p_entry: { at, by: plan.by, reason: plan.reason, run_id: plan.runId, op_id: plan.opId },
      p_reset_attempts: plan.resetAttempts,
    });
    if (!r.ok && refused(r.failure)) {
      const now = clock.now().toISOString();
      for (const w of batch) {
        const res: WriteResult = {
          jobId: w.jobId,
          outcome: 'failed',
          detail: `${r.failure.message}; not written`,
          before: w.before,
          after: null,
          via: 'rpc',
        };
        line(w, res, now);
        results.push(res);
      }
      tick(batch.length);
      return { kind: 'write-failed', message: r.failure.message, fix: r.failure.fix };
    }
    if (!r.ok) {
      const back = await readBack(batch.map((w) => w.jobId));
      let unknown = 0;
      const now = clock.now().toISOString();
      for (const w of batch) {
        const res = settleFromRow(w, back?.get(w.jobId), 'rpc', r.failure.message);
        if (res.outcome === 'unknown') unknown++;
        else line(w, res, now);
        results.push(res);
      }
      tick(batch.length);
      return unknown
        ? {
            kind: 'outcome-unknown',
            message: r.failure.message,
            fix: 'rerun the same command: it settles the audit file and requeues nothing twice',
          }
        : undefined;
    }
    const rows = new Map((r.value ?? []).map((j) => [j.id, j]));
    const missing = batch.filter((w) => !rows.has(w.jobId));
    const back = missing.length ? await readBack(missing.map((w) => w.jobId)) : new Map<string, Job>();
    const now = clock.now().toISOString();
    for (const w of batch) {
      const row = rows.get(w.jobId);
      let res: WriteResult;
      if (row) {
        const entry = entryOfRun(row.debug, plan.runId);
        res = {
          jobId: w.jobId,
          outcome: 'requeued',
          before: entry ? stateFromEntry(entry) : w.before,
          after: jobState(row),
          via: 'rpc',
        };
      } else {
        const seen = back?.get(w.jobId);
        const previous = seen ? entryOfOp(seen.debug, plan.opId) : undefined;
        res = {
          jobId: w.jobId,
          outcome: 'skipped',
          detail: !back
            ? 'not written by the server (its current state could not be read)'
            : !seen
              ? 'the job no longer exists'
              : previous && matchesGuard(seen, w.guard)
                ? `not written by the server: its ${RPC_FUNCTION} predates sandbox/migrations/003_requeue_again.sql, which lets a job that failed again since this command requeued it be requeued again (apply it, or rerun with --rpc off)`
                : describeChange(w.guard, seen),
          before: w.before,
          after: seen ? jobState(seen) : null,
          via: 'rpc',
        };
      }
      line(w, res, now);
      results.push(res);
    }
    tick(batch.length);
    return undefined;
  }

  return {
    /** How writes go, once decided (after the first apply). */
    describePath: () => pathNote,
    path: () => path,
    async apply(writes: readonly PlannedWrite[]): Promise<ApplyRun> {
      const results: WriteResult[] = [];
      if (!writes.length) return { results };
      await choosePath();
      let done = 0;
      let clear = progress(0, writes.length);
      let last = 0;
      const tick = (n = 1) => {
        done += n;
        const t = clock.now().getTime();
        // Redraw at most ten times a second: a terminal is slower than a thousand fast writes.
        if (t - last >= 100 || done === writes.length) {
          last = t;
          clear = progress(done, writes.length);
        }
      };
      const size = path === 'rpc' ? RPC_BATCH : CAS_BATCH;
      let stopped: ApplyRun['stopped'];
      try {
        for (let i = 0; i < writes.length; i += size) {
          if (aborted()) {
            stopped = {
              kind: 'aborted',
              message: 'interrupted by the operator',
              fix: 'rerun the same command to requeue the rest; nothing is requeued twice',
            };
            break;
          }
          const batch = writes.slice(i, i + size);
          stopped = path === 'rpc' ? await rpcBatch(batch, results, tick) : await casBatch(batch, results, tick);
          if (!stopped && aborted()) {
            stopped = {
              kind: 'aborted',
              message: 'interrupted by the operator',
              fix: 'rerun the same command to requeue the rest; nothing is requeued twice',
            };
          }
          if (stopped) break;
        }
      } finally {
        clear();
      }
      const written = new Set(results.map((r) => r.jobId));
      for (const w of writes) {
        if (!written.has(w.jobId)) {
          results.push({
            jobId: w.jobId,
            outcome: 'not-attempted',
            detail: 'the run stopped before this batch',
            before: w.before,
            after: null,
          });
        }
      }
      return { results, stopped };
    },
  };
}

/** See {@link createApplier}. */
export type Applier = ReturnType<typeof createApplier>;
