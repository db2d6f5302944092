/**
 * The requeue runbook's flags, its help, and their validation into {@link RequeueOptions}. Pure: everything the
 * operator typed is checked here, before any config is read or any request is made (bad input is exit 2).
 */

import {
  DEFAULT_CANARY_TIMEOUT_SECONDS,
  DEFAULT_CONCURRENCY,
  DEFAULT_RPC_BATCH,
  MAX_CONCURRENCY,
  MAX_RPC_BATCH,
  RPC_IN_FLIGHT,
  type RpcMode,
} from '../actions/requeue/limits.ts';
import {
  DEFAULT_LIMIT,
  MAX_LIMIT,
  parseLimit,
  parseSelection,
  type Selection,
  type SelectionFlags,
} from '../actions/requeue/select.ts';
import { RunbookError } from '../core/exit-codes.ts';
import type { CommonFlags } from './run.ts';

/** The runbook's own flags, for parseFlags (the common ones are added there). */
export const REQUEUE_OPTIONS = {
  id: { type: 'string', multiple: true },
  status: { type: 'string', multiple: true },
  'job-type': { type: 'string' },
  account: { type: 'string' },
  error: { type: 'string' },
  'older-than': { type: 'string' },
  'newer-than': { type: 'string' },
  limit: { type: 'string' },
  'include-done': { type: 'boolean', default: false },
  'include-running': { type: 'boolean', default: false },
  'reset-attempts': { type: 'boolean', default: false },
  apply: { type: 'boolean', default: false },
  yes: { type: 'boolean', short: 'y', default: false },
  reason: { type: 'string' },
  by: { type: 'string' },
  audit: { type: 'string' },
  canary: { type: 'string' },
  'canary-timeout': { type: 'string' },
  verify: { type: 'string' },
  concurrency: { type: 'string' },
  rpc: { type: 'string' },
  'rpc-batch': { type: 'string' },
  'from-worker': { type: 'boolean', default: false },
  'skip-fix-gate': { type: 'string' },
  'running-minutes': { type: 'string' },
  'job-type-rule': { type: 'string', multiple: true },
} as const;

/** Jobs above which an interactive confirmation also asks to type the count. */
export const TYPE_COUNT_THRESHOLD = 20;
/** `--verify` on a terminal when not given; without a terminal the default is 0 (CI does not wait). */
export const INTERACTIVE_VERIFY_SECONDS = 60;

/** `--help`: every flag, the safety rules and examples (the runbook appends the common flags and exit codes). */
export const REQUEUE_HELP = `Usage: npx zx runbooks/requeue.mts (--id ID ... | [filters]) [--apply [--yes]] [options]

Requeues failed jobs (and, when asked, stale running or done ones) safely: a preview first, writes only with
--apply, each job compare-and-set on what the preview saw, its old state kept in debug.requeue_history, and a
line per job in an append-only audit file. Without --apply nothing is written (dry run).

Select (either --id, or filters; default status failed):
  --id ID                 a job id (UUID); repeatable, or comma-separated
  --status S              failed (default), running (stale by the rule only), done (needs --include-done);
                          repeatable or comma-separated; queued/pending have nothing to do
  --job-type T            only this job_type
  --account UUID          only this account_id
  --error TEXT|/RE/flags  error contains TEXT (case-insensitive), or matches the regex (flags i m s u)
  --older-than WHEN       created before WHEN: a duration ago (30m, 2h, 7d, 1w) or an ISO time (…Z)
  --newer-than WHEN       created at or after WHEN
  --limit N               at most N jobs (default ${DEFAULT_LIMIT}, at most ${MAX_LIMIT}); rerun for the rest

Write:
  --apply                 write (interactively: a confirmation, default No; above ${TYPE_COUNT_THRESHOLD} jobs type the count)
  -y, --yes               answer yes to the confirmation (needed with --apply when not on a terminal)
  --reason TEXT           why (into the history and the audit); required for more than one job
  --by WHO                who (default RUNBOOK_OPERATOR, git's user.email, the login name)
  --reset-attempts        set attempts to 0 (default: kept; the worker gives up at its max attempts)
  --include-running       requeue running jobs that are stale by the rule (also needs its own confirmation,
                          or --yes without a terminal); never a job the worker may still be processing
  --include-done          allow done jobs (runs them again)
  --canary N              requeue N jobs first (across job_type × error groups), wait until they finish, stop
                          if any fails again, then release the rest
  --canary-timeout SECS   how long the canary waits (default ${DEFAULT_CANARY_TIMEOUT_SECONDS}); on timeout the rest is not released
  --verify SECS           after writing, watch the jobs this long and report picked up / done / failed again
                          (default ${INTERACTIVE_VERIFY_SECONDS} on a terminal, 0 otherwise)
  --audit FILE            the audit file (REQUEUE_AUDIT_FILE; default
                          $XDG_STATE_HOME/hd-worker-runbooks/requeue-audit.jsonl or ~/.local/state/…)
  --concurrency N         compare-and-set writes in flight (default ${DEFAULT_CONCURRENCY}, at most ${MAX_CONCURRENCY}); halved
                          (down to 1) when the database pool turns a write away (504 PGRST003)
  --rpc auto|off|only     the server-side batch function hd_requeue_jobs
                          (sandbox/migrations/002_requeue_rpc.sql): use when installed (auto), never, or require it
  --rpc-batch N           jobs per call of hd_requeue_jobs (default ${DEFAULT_RPC_BATCH}, at most ${MAX_RPC_BATCH}), ${RPC_IN_FLIGHT} calls in flight
                          (fewer with a lower --concurrency; halved when the pool turns one away); a result cut
                          by the API's max-rows is read back, never taken as skipped

Target and rules:
  --from-worker           use the worker's SUPABASE_URL and key, read from its .env on Spark over SSH
  --skip-fix-gate REASON  requeue without the fix gate (no connection to Spark); the reason is kept in each job's
                          history and the audit file. Without a terminal, --apply --yes otherwise refuses when
                          the gate says the fix is not deployed (exit 1) or cannot tell because Spark did not
                          answer (exit 2); --canary N is the other way to go ahead
  --running-minutes N     a running job is stale after N min (STUCK_RUNNING_MINUTES, 60)
  --job-type-rule RULE    per job_type, repeatable: import_assets_jsonl:running=180

Safety: the preview names the project (host and ref) and where the credentials came from. A job that changed
after the preview (e.g. the worker claimed it) is skipped and reported, never overwritten. Running the same
command again requeues nothing twice: jobs already carrying its history entry are left alone, and an interrupted
run's audit lines are settled from the database. Exit 1 when some jobs were skipped or failed again.

Examples:
  npx zx runbooks/requeue.mts --id 3fa85f64-5717-4562-b3fc-2c963f66afa6
  npx zx runbooks/requeue.mts --job-type import_assets_jsonl --error "/Circular reference/" --newer-than 1d
  npx zx runbooks/requeue.mts --error "Circular reference" --reason "fix deployed" --canary 3 --apply
  npx zx runbooks/requeue.mts --status running --include-running --reason "worker died" --apply --yes --ci
  npx zx runbooks/requeue.mts --status failed --reset-attempts --reason "CUDA OOM fixed" --apply --verify 120`;

/** The flags as typed (what parseFlags returns for {@link REQUEUE_OPTIONS}). */
export interface RequeueFlags extends CommonFlags, SelectionFlags {
  ci?: boolean;
  verbose?: boolean;
  limit?: string;
  'include-running'?: boolean;
  'reset-attempts'?: boolean;
  apply?: boolean;
  yes?: boolean;
  reason?: string;
  by?: string;
  audit?: string;
  canary?: string;
  'canary-timeout'?: string;
  verify?: string;
  concurrency?: string;
  rpc?: string;
  'rpc-batch'?: string;
  'from-worker'?: boolean;
  'skip-fix-gate'?: string;
  'running-minutes'?: string;
  'job-type-rule'?: string[];
}

/** Everything a requeue run needs to know from the operator, validated. */
export interface RequeueOptions {
  selection: Selection;
  limit: number;
  apply: boolean;
  yes: boolean;
  includeDone: boolean;
  includeRunning: boolean;
  resetAttempts: boolean;
  reason?: string;
  by?: string;
  auditFlag?: string;
  canary?: number;
  canaryTimeoutSeconds: number;
  verifySeconds: number;
  concurrency: number;
  rpc: RpcMode;
  /** Jobs per call of the SQL function. */
  rpcBatch: number;
  fromWorker: boolean;
  /** Why the fix gate is skipped (`--skip-fix-gate REASON`); undefined: the gate applies. */
  skipFixGate?: string;
}

function usage(message: string, fix: string): RunbookError {
  return new RunbookError(message, fix);
}

function wholeNumber(
  flag: string,
  value: string | undefined,
  min: number,
  max: number,
  example: string,
): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,7}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw usage(
      `${flag} must be a whole number from ${min} to ${max} (got ${JSON.stringify(value.slice(0, 40))})`,
      `e.g. ${flag} ${example}`,
    );
  }
  return Number(value);
}

/** One line of text for the history and the audit: no control characters, bounded. */
export function parseOneLine(
  flag: string,
  value: string | undefined,
  max: number,
  example: string,
): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === '') throw usage(`${flag} is empty`, `e.g. ${flag} ${example}`);
  if (/[\u0000-\u001f\u007f]/.test(v))
    throw usage(`${flag} must be one line without control characters`, `e.g. ${flag} ${example}`);
  if (v.length > max)
    throw usage(`${flag} is longer than ${max} characters`, 'shorten it; details belong in the incident report');
  return v;
}

/** Validates every flag; throws a RunbookError (exit 2) naming the flag on bad input. */
export function parseRequeueOptions(flags: RequeueFlags, now: Date, interactive: boolean): RequeueOptions {
  const selection = parseSelection(flags, now);
  const apply = flags.apply ?? false;
  const yes = flags.yes ?? false;
  if (yes && !apply)
    throw usage('--yes without --apply writes nothing', 'add --apply to write, or drop --yes for a preview');
  const rpc = flags.rpc ?? 'auto';
  if (rpc !== 'auto' && rpc !== 'off' && rpc !== 'only') {
    throw usage(
      `--rpc ${JSON.stringify(rpc.slice(0, 20))} is not auto, off or only`,
      'e.g. --rpc off to force one compare-and-set per job',
    );
  }
  return {
    selection,
    limit: parseLimit(flags.limit),
    apply,
    yes,
    includeDone: flags['include-done'] ?? false,
    includeRunning: flags['include-running'] ?? false,
    resetAttempts: flags['reset-attempts'] ?? false,
    reason: parseOneLine('--reason', flags.reason, 500, '"fix deployed: metadata subset (PR 123)"'),
    by: parseOneLine('--by', flags.by, 100, 'alice@example.com'),
    auditFlag: flags.audit,
    canary: wholeNumber('--canary', flags.canary, 1, 1000, '3'),
    canaryTimeoutSeconds:
      wholeNumber('--canary-timeout', flags['canary-timeout'], 1, 3600, '300') ?? DEFAULT_CANARY_TIMEOUT_SECONDS,
    verifySeconds:
      wholeNumber('--verify', flags.verify, 0, 3600, '120') ?? (interactive ? INTERACTIVE_VERIFY_SECONDS : 0),
    concurrency:
      wholeNumber('--concurrency', flags.concurrency, 1, MAX_CONCURRENCY, String(DEFAULT_CONCURRENCY)) ??
      DEFAULT_CONCURRENCY,
    rpc,
    rpcBatch:
      wholeNumber('--rpc-batch', flags['rpc-batch'], 1, MAX_RPC_BATCH, String(DEFAULT_RPC_BATCH)) ?? DEFAULT_RPC_BATCH,
    fromWorker: flags['from-worker'] ?? false,
    skipFixGate: parseOneLine('--skip-fix-gate', flags['skip-fix-gate'], 300, '"hotfix verified on Spark by hand"'),
  };
}
