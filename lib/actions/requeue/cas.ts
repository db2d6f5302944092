/**
 * The per-job path: re-read the batch, then one compare-and-set PATCH per job (bounded concurrency), conditioned on
 * the status, attempts and started_at the preview saw, with the history entry built from the row as it is now.
 */
import type { Job, JobsDb } from '../../io/jobs-db.ts';
import { appendHistory, entryOfRun, historyEntry, type JobState, jobState, requeuedState } from './history.ts';
import {
  announce,
  auditLine,
  type BatchContext,
  describeChange,
  eachBounded,
  lowerLimit,
  matchesGuard,
  notWritten,
  outcomeUnknown,
  readBack,
  refused,
  type Stopped,
  settleFromRow,
  type WriteResult,
} from './outcome.ts';
import type { PlannedWrite } from './plan.ts';

/** How often a job whose debug another writer changed meanwhile is read again and written again. */
const MAX_DEBUG_REPLANS = 3;
/** How often one job is sent while the pool turns it away (504 PGRST003), and the pause before the next try. */
const MAX_POOL_TRIES = 4;
const POOL_BACKOFF_MS = 250;

/** Records one settled write; `stop`, when given, stops the batch from taking further jobs. */
type Settle = (w: PlannedWrite, r: WriteResult, stop?: Stopped) => void;

type CasAnswer = Awaited<ReturnType<JobsDb['compareAndSet']>>;

/**
 * Writes job by job, in batches of `size`: each batch is announced in the audit file and read again before its
 * first write, and the writes flow from one batch into the next, `ctx.limit` in flight throughout. The next batch
 * is read while this one is written (a read is not a write: it is announced when its first write is taken), so no
 * batch waits for the slowest write of the one before or for its own read. Returns why the run stops, if it does.
 */
export async function casWrites(
  ctx: BatchContext,
  writes: readonly PlannedWrite[],
  size: number,
  results: WriteResult[],
  tick: () => void,
): Promise<Stopped> {
  const batches: PlannedWrite[][] = [];
  for (let i = 0; i < writes.length; i += size) batches.push(writes.slice(i, i + size));
  const reads: Promise<Map<string, Job> | undefined>[] = [];
  const read = (k: number) => {
    if (!reads[k]) {
      reads[k] = readBack(
        ctx,
        batches[k].map((w) => w.jobId),
      );
      // Read ahead, maybe never awaited (the run stopped): a throw is seen when the batch opens, never unhandled.
      reads[k].catch(() => {});
    }
    return reads[k];
  };
  const opened: Promise<Map<string, Job> | undefined>[] = [];
  const unread = new Set<number>();
  let stopped: Stopped;
  const settle: Settle = (w, r, stop) => {
    if (r.outcome !== 'unknown') auditLine(ctx, w, r, ctx.clock.now().toISOString());
    results.push(r);
    tick();
    if (stop) stopped ??= stop;
  };
  // Opened by the first write taken from it, so after every write of the batch before was taken.
  const open = (k: number) => {
    opened[k] ??= (async () => {
      announce(ctx, batches[k], ctx.clock.now().toISOString());
      const fresh = await read(k);
      if (!fresh) {
        unread.add(k);
        stopped ??= unreadBatch(ctx, batches[k], results);
      } else if (k + 1 < batches.length) void read(k + 1);
      return fresh;
    })();
    return opened[k];
  };
  const started = await eachBounded(
    writes,
    () => ctx.limit.current,
    async (w, i) => {
      const fresh = await open(Math.floor(i / size));
      // Unread: settled with its batch. Stopped while the batch was read: not started after all.
      if (!fresh) return;
      if (stopped !== undefined || ctx.aborted()) notAttempted(ctx, [w], new Set(), results);
      else await casOne(ctx, w, fresh.get(w.jobId), settle);
    },
    () => stopped !== undefined || ctx.aborted(),
  );
  // Announced, never started: said so, so each intent is settled. A batch never opened was never announced.
  batches.forEach((batch, k) => {
    if (!opened[k] || unread.has(k)) return;
    const startedHere = new Set([...batch.keys()].filter((j) => started.has(k * size + j)));
    notAttempted(ctx, batch, startedHere, results);
  });
  return stopped;
}

/** The batch could not be read before writing: nothing of it is written. */
function unreadBatch(ctx: BatchContext, batch: readonly PlannedWrite[], results: WriteResult[]): Stopped {
  const at = ctx.clock.now().toISOString();
  for (const w of batch) {
    const r = notWritten(w, 'failed', 'could not read it back before writing; not written', 'cas');
    auditLine(ctx, w, r, at);
    results.push(r);
  }
  return {
    kind: 'write-failed',
    message: 'could not read the jobs before writing them',
    fix: 'check the connection to Supabase and rerun the same command',
  };
}

/** Announced but never attempted: say so, so the intent is settled. */
function notAttempted(
  ctx: BatchContext,
  batch: readonly PlannedWrite[],
  started: ReadonlySet<number>,
  results: WriteResult[],
): void {
  const at = ctx.clock.now().toISOString();
  batch.forEach((w, i) => {
    if (started.has(i)) return;
    const detail = ctx.aborted() ? 'interrupted before this write' : 'the run stopped before this write';
    const r = notWritten(w, 'not-attempted', detail, 'cas');
    auditLine(ctx, w, r, at);
    results.push(r);
  });
}

/** One job: skipped when gone or changed since the preview, else written and settled. */
async function casOne(ctx: BatchContext, w: PlannedWrite, row: Job | undefined, settle: Settle): Promise<void> {
  if (!row) {
    settle(w, notWritten(w, 'skipped', 'the job no longer exists', 'cas'));
    return;
  }
  if (!matchesGuard(row, w.guard)) {
    settle(w, notWritten(w, 'skipped', describeChange(w.guard, row), 'cas', w.before, jobState(row)));
    return;
  }
  let current = row;
  for (let tries = 1; ; tries++) {
    const before = jobState(current);
    const startedAt = ctx.limit.current;
    const r = await writeOnTopOfDebug(ctx, w, current, before);
    if (r.ok || r.failure.kind !== 'pool-exhausted') return settleAnswer(ctx, w, before, r, settle);
    // The pool turned the write away before it ran: fewer writes in flight from now on, and this job is read back
    // (never assumed unwritten) before it is sent again or reported.
    lowerLimit(ctx.limit, startedAt);
    const back = await readBack(ctx, [w.jobId]);
    const now = back?.get(w.jobId);
    if (!back || !now || entryOfRun(now.debug, ctx.plan.runId) || !matchesGuard(now, w.guard)) {
      settleTurnedAway(ctx, w, before, back, now, r.failure.message, settle);
      return;
    }
    if (tries >= MAX_POOL_TRIES) {
      const detail = `the database pool turned it away ${tries} times (504 PGRST003) and it is unchanged; not written`;
      settle(w, notWritten(w, 'failed', detail, 'cas', before), {
        kind: 'write-failed',
        message: `the database pool stayed saturated at ${ctx.limit.current} write${ctx.limit.current === 1 ? '' : 's'} in flight (504 PGRST003)`,
        fix: 'wait for the other clients of the database (the worker, the app) or raise the pool size, then rerun the same command: nothing is requeued twice',
      });
      return;
    }
    await ctx.clock.sleep(POOL_BACKOFF_MS * 2 ** (tries - 1));
    current = now;
  }
}

/** A write the pool turned away, settled from the row read back: written after all, changed, gone, or unknown. */
function settleTurnedAway(
  ctx: BatchContext,
  w: PlannedWrite,
  before: JobState,
  back: Map<string, Job> | undefined,
  now: Job | undefined,
  why: string,
  settle: Settle,
): void {
  if (back && now && !entryOfRun(now.debug, ctx.plan.runId)) {
    settle(w, notWritten(w, 'skipped', describeChange(w.guard, now), 'cas', before, jobState(now)));
  } else if (back && !now) {
    settle(w, notWritten(w, 'skipped', 'the job no longer exists', 'cas', before));
  } else {
    const settled = settleFromRow(ctx, w, now, 'cas', why);
    settle(w, settled, settled.outcome === 'unknown' ? outcomeUnknown(why) : undefined);
  }
}

/**
 * The history is appended to the debug read just now, and the write holds only while debug is still that: a note
 * another writer adds meanwhile makes it miss, and the job is read again and written again on top of the note (a
 * few times at most), never overwritten.
 */
async function writeOnTopOfDebug(ctx: BatchContext, w: PlannedWrite, row: Job, before: JobState): Promise<CasAnswer> {
  const { plan } = ctx;
  const after = requeuedState(before, plan.resetAttempts);
  let current = row;
  let r: CasAnswer;
  for (let attempt = 1; ; attempt++) {
    const entry = historyEntry(before, {
      at: ctx.clock.now().toISOString(),
      by: plan.by,
      reason: plan.reason,
      run_id: plan.runId,
      op_id: plan.opId,
    });
    r = await ctx.db.compareAndSet(
      w.guard,
      { ...after, debug: appendHistory(current.debug, entry) },
      { debug: current.debug },
    );
    if (!(r.ok && r.value === null) || attempt === MAX_DEBUG_REPLANS) break;
    const again = (await readBack(ctx, [w.jobId]))?.get(w.jobId);
    if (!again || !matchesGuard(again, w.guard)) break;
    current = again;
  }
  return r;
}

/** Settles one compare-and-set by its answer: written, missed, refused, or unknown (then read back). */
async function settleAnswer(
  ctx: BatchContext,
  w: PlannedWrite,
  before: JobState,
  r: CasAnswer,
  settle: Settle,
): Promise<void> {
  if (r.ok && r.value) {
    settle(w, { jobId: w.jobId, outcome: 'requeued', before, after: jobState(r.value), via: 'cas' });
  } else if (r.ok) {
    // The guard matched no row: someone changed it between the re-read and the write. Say what changed.
    const now = (await readBack(ctx, [w.jobId]))?.get(w.jobId);
    const detail = now
      ? matchesGuard(now, w.guard)
        ? `its debug kept changing while it was written (${MAX_DEBUG_REPLANS} tries); not overwritten`
        : describeChange(w.guard, now)
      : 'changed just before the write (the compare-and-set matched no row); not overwritten';
    settle(w, notWritten(w, 'skipped', detail, 'cas', before, now ? jobState(now) : null));
  } else if (refused(r.failure)) {
    settle(w, notWritten(w, 'failed', `${r.failure.message}; not written`, 'cas', before), {
      kind: 'write-failed',
      message: r.failure.message,
      fix: r.failure.fix,
    });
  } else {
    const back = await readBack(ctx, [w.jobId]);
    const settled = settleFromRow(ctx, w, back?.get(w.jobId), 'cas', r.failure.message);
    settle(w, settled, settled.outcome === 'unknown' ? outcomeUnknown(r.failure.message) : undefined);
  }
}
