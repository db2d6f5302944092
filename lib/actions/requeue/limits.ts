/**
 * The requeue's defaults and limits that its flags and --help name: here, apart from the code that writes, so that
 * `requeue.mts --help` and a usage error load nothing of it.
 */

/**
 * Compare-and-set writes in flight by default. At 50 ms to Supabase, 24 in flight requeue 10,000 jobs in about
 * 25 s; PostgREST queues what its pool cannot take at once, so this is still gentle on the API.
 */
export const DEFAULT_CONCURRENCY = 24;
/** The most `--concurrency` allows. */
export const MAX_CONCURRENCY = 64;

/**
 * Jobs per server call by default: one statement of guarded updates, well under a second. Below Supabase's default
 * max-rows (1,000), which also cuts a function's result; a project with a lower cap answers with fewer rows, and the
 * rest are read back (rpc.ts), never taken as skipped.
 */
export const DEFAULT_RPC_BATCH = 500;
/** The most `--rpc-batch` allows: Supabase's default max-rows. */
export const MAX_RPC_BATCH = 1000;

/**
 * Calls of the SQL function in flight at most (no more than `--concurrency`; halved when the pool turns one away).
 * At 50 ms to Supabase, one call at a time waits on the network for half of a 100,000-job run; four keep the
 * database busy while staying well inside PostgREST's pool (10 connections).
 */
export const RPC_IN_FLIGHT = 4;

/** `--rpc`: use the SQL function when installed, never, or require it. */
export type RpcMode = 'auto' | 'off' | 'only';

/** Seconds a canary waits for its jobs by default. */
export const DEFAULT_CANARY_TIMEOUT_SECONDS = 300;
