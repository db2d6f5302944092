/**
 * The SQL function's path under a saturated pool. A call of `hd_requeue_jobs` the pool turns away (504 PGRST003)
 * ran nothing, but is settled like any unanswered call (rpc.ts: read back, unknown until seen): here its jobs are
 * read back once more, and those still as the preview saw them are sent again in two halves, after a pause; those
 * changed or gone are reported as skipped. A smaller call holds a connection for less time: what halving the writes
 * in flight is to the per-job path (the calls in flight are halved too). Bounded: a job turned away
 * {@link MAX_POOL_TRIES} times stops the run.
 */
import type { DbFailure, JobsDb } from '../../io/jobs-db.ts';
import { entryOfRun, jobState } from './history.ts';
import {
  auditLine,
  type BatchContext,
  describeChange,
  eachBounded,
  lowerLimit,
  matchesGuard,
  notWritten,
  readBack,
  type Stopped,
  settleFromRow,
  type WriteResult,
} from './outcome.ts';
import type { PlannedWrite } from './plan.ts';
import { rpcBatch } from './rpc.ts';

/** How often one job is sent while the pool turns it away, and the pause before the next try. */
export const MAX_POOL_TRIES = 4;
export const POOL_BACKOFF_MS = 250;

/** The db port with its last failed call remembered: whether a call was turned away by the pool. */
function watching(db: JobsDb): { db: JobsDb; last: () => DbFailure | undefined } {
  let last: DbFailure | undefined;
  const rpc = async <T>(fn: string, args: Record<string, unknown>) => {
    const r = await db.rpc<T>(fn, args);
    last = r.ok ? undefined : r.failure;
    return r;
  };
  return { db: { ...db, rpc }, last: () => last };
}

/** One batch through the SQL function; a batch the pool turned away is read back and sent again in halves. */
export async function rpcBatchPooled(
  ctx: BatchContext,
  batch: PlannedWrite[],
  results: WriteResult[],
  tick: (n: number) => void,
  tries = 1,
): Promise<Stopped> {
  const watched = watching(ctx.db);
  const mark = results.length;
  const stopped = await rpcBatch({ ...ctx, db: watched.db }, batch, results, tick);
  if (stopped?.kind !== 'outcome-unknown' || watched.last()?.kind !== 'pool-exhausted') return stopped;
  lowerLimit(ctx.limit, ctx.limit.current);
  const open = results.slice(mark).filter((r) => r.outcome === 'unknown');
  const back = await readBack(
    ctx,
    open.map((r) => r.jobId),
  );
  if (!back) return stopped;
  const byId = new Map(batch.map((w) => [w.jobId, w]));
  const again: PlannedWrite[] = [];
  const at = ctx.clock.now().toISOString();
  for (const r of open) {
    const w = byId.get(r.jobId)!;
    const row = back.get(w.jobId);
    let settled: WriteResult | undefined;
    if (!row) settled = notWritten(w, 'skipped', 'the job no longer exists', 'rpc');
    else if (entryOfRun(row.debug, ctx.plan.runId)) settled = settleFromRow(ctx, w, row, 'rpc', '');
    else if (!matchesGuard(row, w.guard))
      settled = notWritten(w, 'skipped', describeChange(w.guard, row), 'rpc', w.before, jobState(row));
    else if (tries >= MAX_POOL_TRIES)
      settled = notWritten(
        w,
        'failed',
        `the database pool turned it away ${tries} times (504 PGRST003) and it is unchanged; not written`,
        'rpc',
      );
    else again.push(w);
    results.splice(results.indexOf(r), 1);
    if (settled) {
      auditLine(ctx, w, settled, at);
      results.push(settled);
    }
  }
  if (tries >= MAX_POOL_TRIES && results.slice(mark).some((r) => r.outcome === 'failed'))
    return {
      kind: 'write-failed',
      message: 'the database pool stayed saturated: the SQL function was turned away (504 PGRST003) at every try',
      fix: 'wait for the other clients of the database (the worker, the app) or raise the pool size, then rerun the same command: nothing is requeued twice',
    };
  await ctx.clock.sleep(POOL_BACKOFF_MS * 2 ** (tries - 1));
  const half = Math.ceil(again.length / 2);
  const parts = [again.slice(0, half), again.slice(half)].filter((p) => p.length);
  for (const [i, part] of parts.entries()) {
    const next = ctx.aborted() ? undefined : await rpcBatchPooled(ctx, part, results, () => {}, tries + 1);
    if (next || ctx.aborted()) {
      // Read back and found unwritten, but not sent again: said so, so the batch's intent is settled.
      const now = ctx.clock.now().toISOString();
      for (const w of parts.slice(next ? i + 1 : i).flat()) {
        const r = notWritten(w, 'not-attempted', 'the run stopped before it was sent again; not written', 'rpc');
        auditLine(ctx, w, r, now);
        results.push(r);
      }
      return next;
    }
  }
  return undefined;
}

/**
 * Writes batch after batch through the SQL function, `ctx.limit` calls in flight (at most RPC_IN_FLIGHT): the
 * database runs one call's guarded updates while the next crosses the network. Never the same job in two calls: the
 * batches are disjoint, and a batch sent again in halves sends one half after the other. Each batch keeps its own
 * results, added in the order of the batches, as calls one after the other gave them. A batch that stops the run
 * stops new calls; the calls in flight end, and their results are reported. Returns the first batch's stop.
 */
export async function rpcWrites(
  ctx: BatchContext,
  writes: readonly PlannedWrite[],
  size: number,
  results: WriteResult[],
  tick: (n: number) => void,
): Promise<Stopped> {
  const batches: PlannedWrite[][] = [];
  for (let i = 0; i < writes.length; i += size) batches.push(writes.slice(i, i + size));
  const settled: { results: WriteResult[]; stopped: Stopped }[] = [];
  let stop = false;
  await eachBounded(
    batches,
    () => ctx.limit.current,
    async (batch, k) => {
      const own: WriteResult[] = [];
      const stopped = await rpcBatchPooled(ctx, batch, own, tick);
      settled[k] = { results: own, stopped };
      if (stopped) stop = true;
    },
    () => stop || ctx.aborted(),
  );
  for (const s of settled) if (s) results.push(...s.results);
  return settled.find((s) => s?.stopped)?.stopped;
}
