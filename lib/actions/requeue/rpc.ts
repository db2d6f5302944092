/**
 * The per-batch path: one call of `hd_requeue_jobs` (sandbox/migrations/002_requeue_rpc.sql), which does the same
 * guard and history append server-side, when that function is installed.
 */
import type { DbFailure, Job, JobsDb } from '../../io/jobs-db.ts';
import { entryOfOp, entryOfRun, jobState, stateFromEntry } from './history.ts';
import {
  announce,
  auditLine,
  type BatchContext,
  describeChange,
  matchesGuard,
  notWritten,
  outcomeUnknown,
  RPC_FUNCTION,
  readBack,
  refused,
  type Stopped,
  settleFromRow,
  type WriteResult,
} from './outcome.ts';
import type { PlannedWrite } from './plan.ts';

/**
 * Whether the SQL function is there and callable: an empty batch, which writes nothing. Undefined when it is,
 * else why not.
 */
export async function rpcUnusable(db: JobsDb): Promise<string | undefined> {
  const r = await db.rpc<unknown>(RPC_FUNCTION, { p_jobs: [], p_entry: {}, p_reset_attempts: false });
  if (r.ok) return undefined;
  return r.failure.status === 404
    ? `${RPC_FUNCTION} is not installed (sandbox/migrations/002_requeue_rpc.sql, then 003_requeue_again.sql)`
    : `${RPC_FUNCTION} is not usable: ${r.failure.message}`;
}

/** Writes one batch in one server call; returns why the run stops, if it does. */
export async function rpcBatch(
  ctx: BatchContext,
  batch: PlannedWrite[],
  results: WriteResult[],
  tick: (n: number) => void,
): Promise<Stopped> {
  const { plan } = ctx;
  const at = ctx.clock.now().toISOString();
  announce(ctx, batch, at);
  const r = await ctx.db.rpc<Job[] | null>(RPC_FUNCTION, {
    p_jobs: batch.map((w) => w.guard),
    p_entry: { at, by: plan.by, reason: plan.reason, run_id: plan.runId, op_id: plan.opId },
    p_reset_attempts: plan.resetAttempts,
  });
  let stopped: Stopped;
  if (!r.ok && refused(r.failure)) stopped = refusedBatch(ctx, batch, results, r.failure);
  else if (!r.ok) stopped = await unknownBatch(ctx, batch, results, r.failure);
  else stopped = await answeredBatch(ctx, batch, results, r.value);
  tick(batch.length);
  return stopped;
}

/** The server refused the call: nothing of the batch is written. */
function refusedBatch(
  ctx: BatchContext,
  batch: readonly PlannedWrite[],
  results: WriteResult[],
  failure: DbFailure,
): Stopped {
  const now = ctx.clock.now().toISOString();
  for (const w of batch) {
    const res = notWritten(w, 'failed', `${failure.message}; not written`, 'rpc');
    auditLine(ctx, w, res, now);
    results.push(res);
  }
  return { kind: 'write-failed', message: failure.message, fix: failure.fix };
}

/** No answer: each job is settled from the row read back; the run stops if any stays unknown. */
async function unknownBatch(
  ctx: BatchContext,
  batch: readonly PlannedWrite[],
  results: WriteResult[],
  failure: DbFailure,
): Promise<Stopped> {
  const back = await readBack(
    ctx,
    batch.map((w) => w.jobId),
  );
  let unknown = 0;
  const now = ctx.clock.now().toISOString();
  for (const w of batch) {
    const res = settleFromRow(ctx, w, back?.get(w.jobId), 'rpc', failure.message);
    if (res.outcome === 'unknown') unknown++;
    else auditLine(ctx, w, res, now);
    results.push(res);
  }
  return unknown ? outcomeUnknown(failure.message) : undefined;
}

/**
 * The server answered with the rows it wrote, but at most its max-rows of them: every other job is read back, and
 * one carrying this run's history entry was written (by this call: a run writes a job once). Only a job without it
 * was not written; a job that could not be read back is unknown (the run stops, a rerun settles it), never skipped.
 */
async function answeredBatch(
  ctx: BatchContext,
  batch: readonly PlannedWrite[],
  results: WriteResult[],
  written: Job[] | null,
): Promise<Stopped> {
  const rows = new Map((written ?? []).map((j) => [j.id.toLowerCase(), j]));
  const missing = batch.filter((w) => !rows.has(w.jobId));
  const back = missing.length
    ? await readBack(
        ctx,
        missing.map((w) => w.jobId),
      )
    : new Map<string, Job>();
  const now = ctx.clock.now().toISOString();
  let unknown = 0;
  for (const w of batch) {
    const row = rows.get(w.jobId) ?? withEntryOfRun(ctx, back?.get(w.jobId));
    const res = row ? writtenByServer(ctx, w, row) : notWrittenByServer(ctx, w, back);
    if (res.outcome === 'unknown') unknown++;
    else auditLine(ctx, w, res, now);
    results.push(res);
  }
  return unknown ? outcomeUnknown('the jobs the server did not list could not be read back') : undefined;
}

/** The row read back, when this run's history entry is on it (the server wrote it but did not list it). */
function withEntryOfRun(ctx: BatchContext, seen: Job | undefined): Job | undefined {
  return seen && entryOfRun(seen.debug, ctx.plan.runId) ? seen : undefined;
}

function writtenByServer(ctx: BatchContext, w: PlannedWrite, row: Job): WriteResult {
  const entry = entryOfRun(row.debug, ctx.plan.runId);
  return {
    jobId: w.jobId,
    outcome: 'requeued',
    before: entry ? stateFromEntry(entry) : w.before,
    after: jobState(row),
    via: 'rpc',
  };
}

function notWrittenByServer(ctx: BatchContext, w: PlannedWrite, back: Map<string, Job> | undefined): WriteResult {
  if (!back) {
    const why = `${RPC_FUNCTION} did not list it and it could not be read back`;
    return notWritten(w, 'unknown', `${why} — a rerun of the same command settles it`, 'rpc');
  }
  const seen = back.get(w.jobId);
  const previous = seen ? entryOfOp(seen.debug, ctx.plan.opId) : undefined;
  const detail = !seen
    ? 'the job no longer exists'
    : previous && matchesGuard(seen, w.guard)
      ? `not written by the server: its ${RPC_FUNCTION} predates sandbox/migrations/003_requeue_again.sql, which lets a job that failed again since this command requeued it be requeued again (apply it, or rerun with --rpc off)`
      : describeChange(w.guard, seen);
  return notWritten(w, 'skipped', detail, 'rpc', w.before, seen ? jobState(seen) : null);
}
