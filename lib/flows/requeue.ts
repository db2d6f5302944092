/**
 * The requeue runbook as steps: target guard → selection → preview with the fix gate → every confirmation (decide
 * first) → audit → canary → compare-and-set writes → result → verify → end line. `runRequeue` is the runbook;
 * `requeueJobs` is the hand-over debug-stuck-jobs calls with the ids of a finding; both run the same steps.
 */

import { DEFAULT_CANARY_TIMEOUT_SECONDS } from '../actions/requeue/canary.ts';
import { DEFAULT_CONCURRENCY, DEFAULT_RPC_BATCH } from '../actions/requeue/limits.ts';
import { planJson } from '../actions/requeue/receipt.ts';
import { DEFAULT_LIMIT } from '../actions/requeue/select.ts';
import { AbortedError, type ExitCode, RunbookError } from '../core/exit-codes.ts';
import type { SupabaseSide } from '../evidence/evidence.ts';
import { closeSession, configStep, sparkStep } from '../evidence/gather.ts';
import { stuckRulesFrom } from '../io/config.ts';
import type { Ports } from '../io/context.ts';
import { buildReport, type Report, writeReports } from '../io/report.ts';
import { shellQuote } from '../io/shell-quote.ts';
import { sshTargetLabel } from '../io/ssh/target.ts';
import { type Plan, runPlan, type Step } from '../io/steps.ts';
import { applyWrites, canary, conclude, openAudit, showResult, verify } from './requeue/act.ts';
import { confirm, confirmRunning, endOfPreview, guardTarget, preview, selectJobs } from './requeue/decide.ts';
import {
  type ExecuteOptions,
  newRun,
  outcomeOf,
  plural,
  projectTargetFrom,
  type RequeueContext,
  type RequeueOutcome,
  type RequeueRun,
} from './requeue/state.ts';
import {
  INTERACTIVE_VERIFY_SECONDS,
  parseRequeueOptions,
  type RequeueFlags,
  type RequeueOptions,
} from './requeue-usage.ts';
import { type RunState, startRun } from './run.ts';

export type { CanaryOutcome, ExecuteOptions, RequeueContext, RequeueOutcome } from './requeue/state.ts';
export { projectTargetFrom };

/**
 * The requeue, in the order it runs. Everything the operator is asked comes before the first write (the canary's
 * release is the one question after it: it is about the canary's result).
 */
export const steps = {
  guardTarget,
  selectJobs,
  preview,
  endOfPreview,
  confirmRunning,
  confirm,
  openAudit,
  canary,
  applyWrites,
  showResult,
  verify,
  conclude,
};

/** The same steps as one list: the hand-over from debug-stuck-jobs and the tests run these. */
export const REQUEUE_STEPS: Plan<RequeueRun> = [
  guardTarget, // which project, with which key; a key RLS binds stops here
  selectJobs, // read the jobs asked for
  preview, // the planned writes, the fix gate's verdict, the audit file
  endOfPreview, // a dry run ends here, with the command that applies it
  confirmRunning, // running jobs: confirmed on their own (default No)
  confirm, // the reason, then yes (default No) — or with --yes, the gate decides
  openAudit, // intent first; an interrupted run settled
  canary, // --canary N: a few first, the rest when they pass
  applyWrites, // compare-and-set (or the SQL function), each audited
  showResult, // what was written, what changed since the preview
  verify, // watch: done, failed again, or never picked up
  conclude, // the end line and exit code
];

/**
 * Runs one requeue end to end with the context given. Never throws a RunbookError: it comes back in
 * `outcome.error` with the exit code, so the caller can still write its report.
 */
export async function executeRequeue(
  ports: Ports,
  ctx: RequeueContext,
  opts: ExecuteOptions,
  steps: Plan<RequeueRun> = REQUEUE_STEPS,
): Promise<RequeueOutcome> {
  const run = newRun(ports, ctx, opts);
  try {
    await runPlan(run, steps, ports.out, { until: (r) => r.end !== undefined });
  } catch (e) {
    if (!(e instanceof RunbookError)) throw e;
    run.actionLines.push(`stopped: ${e.message}`);
    const verdict = e instanceof AbortedError ? `stopped: ${e.message}` : `could not requeue: ${e.message}`;
    run.end = { exitCode: e.code, verdict, error: e };
  } finally {
    run.audit?.close();
  }
  return outcomeOf(run);
}

/** The JSON and markdown report of a requeue, in the shape every runbook writes, with plan, results and receipt. */
export function requeueReport(
  outcome: RequeueOutcome,
  meta: { generatedAt: string; operator: string; spark?: string },
) {
  const project = outcome.plan?.project;
  const report = buildReport({
    runbook: 'requeue',
    exitCode: outcome.exitCode,
    generatedAt: meta.generatedAt,
    operator: meta.operator,
    target: { supabase: project?.origin, projectRef: project?.ref, spark: meta.spark },
    findings: outcome.findings,
    checks: outcome.checks,
    actions: outcome.actionLines.length ? [{ title: 'requeue', lines: outcome.actionLines }] : [],
  });
  return {
    ...report,
    verdict: outcome.verdict,
    plan: outcome.plan ? planJson(outcome.plan) : null,
    results: outcome.results,
    receipt: outcome.receipt,
    canary: outcome.canary,
    audit: { file: outcome.auditFile, linesAppended: outcome.auditLines, settled: outcome.settled ?? null },
    writePath: outcome.writePath ?? null,
    ...(outcome.error ? { error: { message: outcome.error.message, fix: outcome.error.fix } } : {}),
  };
}

/** The command as typed, minus where reports go and minus --apply/--yes: the dry run's "to requeue, run …" hint. */
export function commandLineOf(argv: readonly string[]): string {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json' || a === '--markdown') {
      i++;
      continue;
    }
    if (a.startsWith('--json=') || a.startsWith('--markdown=') || a === '--apply' || a === '--yes' || a === '-y')
      continue;
    out.push(shellQuote(a));
  }
  return ['npx zx runbooks/requeue.mts', ...out].join(' ');
}

/** --from-worker: the worker's own URL and key, read over SSH, instead of the laptop's. */
function workerSide(
  ports: Ports,
  state: RunState,
): { side: SupabaseSide; db: RequeueContext['db']; credentials: string } {
  const { evidence } = state;
  const probe = evidence.spark?.ok ? evidence.spark.probe : undefined;
  const vars = probe?.env.status === 'ok' ? probe.env.vars : undefined;
  const w = evidence.worker;
  const key = vars?.SUPABASE_SERVICE_ROLE_KEY || vars?.SUPABASE_SECRET_KEY;
  if (!probe || !vars || !w?.url || !key) {
    const why = !evidence.spark
      ? 'Spark not probed: SPARK_HOST is not set'
      : !evidence.spark.ok
        ? evidence.spark.failure.message
        : !vars
          ? `its .env is ${probe?.env.status}`
          : 'SUPABASE_URL or the key is missing there';
    throw new RunbookError(
      `--from-worker: could not read the worker's SUPABASE_URL and key over SSH (${why})`,
      'fix the Spark connection (npx zx runbooks/diagnose-env.mts), or drop --from-worker to use the laptop .env',
    );
  }
  const t = evidence.spark?.ok ? evidence.spark.target : undefined;
  const credentials = `${w.source}${w.keyVar ? `, key ${w.keyVar}` : ''} on Spark (${t ? sshTargetLabel(t) : 'ssh'}), read over SSH`;
  if (evidence.laptop.url && evidence.laptop.url.origin !== w.url.origin) {
    ports.out.line(
      `note: the laptop's SUPABASE_URL (${evidence.laptop.url.origin}) is not the worker's; using the worker's`,
    );
  }
  return { side: w, db: ports.openDb(w.url.origin, key), credentials };
}

/**
 * The runbook: validates the flags (exit 2 before any I/O on bad input), loads the laptop config, probes Spark for
 * the fix gate (and, with --from-worker, for the worker's credentials), runs the requeue steps and writes the reports.
 */
export async function runRequeue(
  ports: Ports,
  flags: RequeueFlags,
  extra: { argv?: readonly string[]; signal?: AbortSignal } = {},
  steps: Plan<RequeueRun> = REQUEUE_STEPS,
): Promise<ExitCode> {
  const options = parseRequeueOptions(flags, ports.clock.now(), ports.prompt.interactive);
  const state = startRun(ports, flags, (values) =>
    stuckRulesFrom(values, { runningMinutes: flags['running-minutes'], jobTypeRules: flags['job-type-rule'] }),
  );
  const { evidence } = state;
  const mode = options.apply ? 'apply' : 'dry run';
  ports.out.heading(`requeue · ${evidence.laptop.url?.origin} · ${evidence.now.toISOString()} · ${mode}`);
  const spark: Step<RunState> = {
    ...sparkStep,
    skip: (s) =>
      options.skipFixGate && !options.fromWorker ? '--skip-fix-gate: Spark not probed' : sparkStep.skip?.(s),
  };
  try {
    const checks = await runPlan(state, [configStep, spark], ports.out);
    const worker = options.fromWorker ? workerSide(ports, state) : undefined;
    const ctx: RequeueContext = {
      db: worker?.db ?? state.db,
      project: projectTargetFrom(worker?.side ?? evidence.laptop, evidence.now, worker?.credentials),
      rules: evidence.rules,
      evidence,
      values: state.config.values,
    };
    const commandLine = extra.argv ? commandLineOf(extra.argv) : undefined;
    const outcome = await executeRequeue(ports, ctx, { ...options, commandLine, signal: extra.signal }, steps);
    outcome.checks.unshift(...checks);
    const t = evidence.spark?.ok ? evidence.spark.target : undefined;
    const report = () =>
      requeueReport(outcome, {
        generatedAt: evidence.now.toISOString(),
        operator: outcome.plan?.by ?? ports.operator(options.by ?? state.config.values.RUNBOOK_OPERATOR),
        spark: t ? sshTargetLabel(t) : undefined,
      }) as Report;
    writeReports(ports, report, flags);
    // A run that ended on an error says so once, through runMain (with its fix).
    if (outcome.error) throw outcome.error;
    ports.out.line();
    ports.out.line(`${outcome.verdict} (exit ${outcome.exitCode})`);
    return outcome.exitCode;
  } finally {
    await closeSession(state);
  }
}

/** What debug-stuck-jobs hands over: the jobs of one finding and why they are requeued. */
export interface HandoverRequest {
  ids: string[];
  reason: string;
  findingId: string;
}

/** A hand-over's options: the ids as given (read from the queue, no flags parsed), applied after a preview. */
export function handoverOptions(request: HandoverRequest, interactive: boolean): RequeueOptions {
  return {
    selection: { kind: 'ids', ids: [...new Set(request.ids)] },
    limit: DEFAULT_LIMIT,
    apply: true,
    yes: false,
    includeDone: false,
    includeRunning: false,
    resetAttempts: false,
    reason: request.reason,
    canaryTimeoutSeconds: DEFAULT_CANARY_TIMEOUT_SECONDS,
    verifySeconds: interactive ? INTERACTIVE_VERIFY_SECONDS : 0,
    concurrency: DEFAULT_CONCURRENCY,
    rpc: 'auto',
    rpcBatch: DEFAULT_RPC_BATCH,
    fromWorker: false,
  };
}

/**
 * The hand-over debug-stuck-jobs calls: requeues the given jobs through the same steps — target guard, preview, fix
 * gate, running jobs confirmed separately, confirmation (default No), compare-and-set, history, audit, and a short
 * verify on a terminal. Returns lines for its report and an exit code (3 when the operator said no). Reports are the
 * caller's; nothing here writes --json or --markdown.
 */
export async function requeueJobs(
  ports: Ports,
  state: RunState,
  request: HandoverRequest,
  overrides: Partial<ExecuteOptions> = {},
): Promise<{ title: string; lines: string[]; code: ExitCode; outcome: RequeueOutcome }> {
  const title = `requeue ${plural(request.ids.length, 'job')} of ${request.findingId}`;
  const ctx: RequeueContext = {
    db: state.db,
    project: projectTargetFrom(state.evidence.laptop, state.evidence.now),
    rules: state.evidence.rules,
    evidence: state.evidence,
    values: state.config.values,
  };
  const options = { ...handoverOptions(request, ports.prompt.interactive), ...overrides };
  const outcome = await executeRequeue(ports, ctx, options);
  ports.out.line(outcome.verdict);
  const lines = [...outcome.actionLines];
  if (outcome.error) lines.push(`fix: ${outcome.error.fix}`);
  return { title, lines, code: outcome.exitCode, outcome };
}
