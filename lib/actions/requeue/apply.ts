/**
 * Executes planned writes. Two paths with the same guarantees:
 * - per job (cas.ts): re-read the batch, then one compare-and-set PATCH per job (bounded concurrency), conditioned
 *   on the status, attempts and started_at the preview saw, with the history entry built from the row as it is now;
 *   the writes flow on from one batch into the next, the next batch read while this one is written;
 * - per batch (rpc.ts): one call of `hd_requeue_jobs` (sandbox/migrations/002_requeue_rpc.sql), which does the same
 *   guard and history append server-side, when that function is installed; a few calls in flight (rpc-pool.ts).
 * Either way each batch is announced in the audit file before it is written, and each job gets its line right
 * after its write. A write whose outcome is unknown (timeout, 5xx, a gateway error page) is checked by reading the
 * job back; the run then stops rather than guess, and a rerun of the same command settles it. A write the database
 * pool turned away (504 PGRST003) halves the writes in flight (down to 1) and the run goes on: the job is read back,
 * then written again or reported (rpc-pool.ts: the SQL function's batch is read back and sent again in halves).
 */

import { RunbookError } from '../../core/exit-codes.ts';
import type { Clock } from '../../core/ports.ts';
import type { JobsDb } from '../../io/jobs-db.ts';
import type { Output } from '../../io/output.ts';
import type { AuditLog } from './audit.ts';
import { casWrites } from './cas.ts';
import {
  type ApplyRun,
  type BatchContext,
  RPC_FUNCTION,
  type Stopped,
  saturationLine,
  type WriteResult,
  writeLimit,
} from './outcome.ts';
import type { PlannedWrite, RequeuePlan } from './plan.ts';
import { rpcUnusable } from './rpc.ts';
import { rpcWrites } from './rpc-pool.ts';

export {
  type ApplyRun,
  describeChange,
  eachBounded,
  matchesGuard,
  RPC_FUNCTION,
  type WriteOutcome,
  type WriteResult,
} from './outcome.ts';

import { DEFAULT_RPC_BATCH, MAX_CONCURRENCY, MAX_RPC_BATCH, RPC_IN_FLIGHT, type RpcMode } from './limits.ts';

/** Jobs per audit intent and re-read on the per-job path (a multiple of the default concurrency). */
const CAS_BATCH = 240;

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
  /** Jobs per call of the SQL function (default {@link DEFAULT_RPC_BATCH}). */
  rpcBatch?: number;
}

type WritePath = 'rpc' | 'cas';

/** Decides the path once: probes for the SQL function unless told not to; `--rpc only` without it throws. */
async function choosePath(
  db: JobsDb,
  rpc: RpcMode,
  concurrency: number,
  rpcBatch: number,
): Promise<{ path: WritePath; note: string }> {
  if (rpc === 'off') return { path: 'cas', note: `one compare-and-set per job (--rpc off), ${concurrency} at a time` };
  const why = await rpcUnusable(db);
  if (why === undefined) {
    const calls = Math.min(concurrency, RPC_IN_FLIGHT);
    return {
      path: 'rpc',
      note: `server-side ${RPC_FUNCTION}, ${rpcBatch} jobs per call, ${calls} call${calls === 1 ? '' : 's'} in flight`,
    };
  }
  if (rpc === 'only') {
    throw new RunbookError(
      `--rpc only: ${why}`,
      'apply sandbox/migrations/002_requeue_rpc.sql and 003_requeue_again.sql to the project, or use --rpc auto',
    );
  }
  return { path: 'cas', note: `${why}: one compare-and-set per job, ${concurrency} at a time` };
}

/** `requeue done/total` on the terminal, redrawn at most ten times a second: a terminal is slower than the writes. */
function progressMeter(out: Output, clock: Clock, total: number) {
  let done = 0;
  let clear = out.progress(`requeue 0/${total}`);
  let last = 0;
  return {
    tick: (n = 1) => {
      done += n;
      const t = clock.now().getTime();
      if (t - last >= 100 || done === total) {
        last = t;
        clear = out.progress(`requeue ${done}/${total}`);
      }
    },
    clear: () => clear(),
  };
}

function interrupted(): NonNullable<Stopped> {
  return {
    kind: 'aborted',
    message: 'interrupted by the operator',
    fix: 'rerun the same command to requeue the rest; nothing is requeued twice',
  };
}

/** Writes every batch until the end, a batch that stops the run, or an interrupt. */
async function writeBatches(
  ctx: BatchContext,
  path: WritePath,
  writes: readonly PlannedWrite[],
  results: WriteResult[],
  tick: (n?: number) => void,
  rpcSize: number,
): Promise<Stopped> {
  if (ctx.aborted()) return interrupted();
  const stopped =
    path === 'rpc'
      ? await rpcWrites(ctx, writes, rpcSize, results, tick)
      : await casWrites(ctx, writes, CAS_BATCH, results, tick);
  if (stopped) return stopped;
  return ctx.aborted() ? interrupted() : undefined;
}

/** The writes of batches never reached: not attempted (they were not announced, so they get no audit line). */
function unreached(writes: readonly PlannedWrite[], results: WriteResult[]): void {
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
}

/**
 * An applier for one plan: decides the path once (probing for the SQL function unless told not to), then writes
 * whatever subsets of the plan it is given (the canary first, the rest later) with the same rules.
 */
export function createApplier(deps: ApplyDeps, plan: RequeuePlan, options: ApplyOptions) {
  const concurrency = Math.max(1, Math.min(MAX_CONCURRENCY, options.concurrency));
  const rpcBatch = Math.max(1, Math.min(MAX_RPC_BATCH, options.rpcBatch ?? DEFAULT_RPC_BATCH));
  const ctx: BatchContext = {
    db: deps.db,
    clock: deps.clock,
    audit: deps.audit,
    plan,
    limit: writeLimit(concurrency),
    aborted: () => deps.signal?.aborted === true,
  };
  let chosen: { path: WritePath; note: string } | undefined;
  return {
    /** How writes go, once decided (after the first apply), and whether the database pool made them slow down. */
    describePath: (): string => [chosen?.note, saturationLine(ctx.limit, chosen?.path)].filter(Boolean).join('; '),
    /** "the database pool was saturated: concurrency lowered to N (…)", when it was. */
    saturation: (): string | undefined => saturationLine(ctx.limit, chosen?.path),
    path: (): WritePath | undefined => chosen?.path,
    async apply(writes: readonly PlannedWrite[]): Promise<ApplyRun> {
      const results: WriteResult[] = [];
      if (!writes.length) return { results };
      if (!chosen) {
        chosen = await choosePath(deps.db, options.rpc, concurrency, rpcBatch);
        // The SQL function's calls in flight: a few, halved from there when the pool turns one away.
        if (chosen.path === 'rpc') ctx.limit = writeLimit(Math.min(concurrency, RPC_IN_FLIGHT));
      }
      const meter = progressMeter(deps.out, deps.clock, writes.length);
      let stopped: Stopped;
      try {
        stopped = await writeBatches(ctx, chosen.path, writes, results, meter.tick, rpcBatch);
      } finally {
        meter.clear();
      }
      unreached(writes, results);
      return { results, stopped };
    },
  };
}

/** See {@link createApplier}. */
export type Applier = ReturnType<typeof createApplier>;
