/**
 * A requeue run's state: what its context and options are, what each step saw and decided so far, and how it
 * ended. The steps (decide.ts, act.ts) read and fill it; `outcomeOf` turns it into the caller's outcome.
 */
import { randomUUID } from 'node:crypto';
import type { Applier, WriteResult } from '../../actions/requeue/apply.ts';
import type { AuditLog, AuditProject, PendingIntent, Reconciliation } from '../../actions/requeue/audit.ts';
import type { CanaryVerdict } from '../../actions/requeue/canary.ts';
import type { GateSeen } from '../../actions/requeue/findings.ts';
import type { PlannedWrite, ProjectTarget, RequeuePlan } from '../../actions/requeue/plan.ts';
import type { SelectionRead } from '../../actions/requeue/select.ts';
import type { WatchReceipt } from '../../actions/requeue/verify.ts';
import type { ExitCode, RunbookError } from '../../core/exit-codes.ts';
import { RunbookError as RunbookErrorClass } from '../../core/exit-codes.ts';
import { type Finding, sortFindings } from '../../core/finding.ts';
import type { StuckRules } from '../../core/stuck-rules.ts';
import type { Evidence, SupabaseSide } from '../../evidence/evidence.ts';
import type { Ports } from '../../io/context.ts';
import type { JobsDb } from '../../io/jobs-db.ts';
import { describeKey } from '../../io/keys.ts';
import type { CheckResult } from '../../io/steps.ts';
import type { RequeueOptions } from '../requeue-usage.ts';

/** What a requeue writes to and judges by: the db port, the project it points at, the stuck rules, the evidence. */
export interface RequeueContext {
  db: JobsDb;
  project: ProjectTarget;
  rules: StuckRules;
  /** The run's evidence; Spark's probe (when there is one) feeds the fix gate. */
  evidence: Evidence;
  /** Validated config values (RUNBOOK_OPERATOR, REQUEUE_AUDIT_FILE). */
  values: Readonly<Record<string, string>>;
}

/** The validated options, plus what only the runbook (or a test) knows. */
export interface ExecuteOptions extends RequeueOptions {
  /** The command as typed, for the "to apply, run …" hint of a dry run. */
  commandLine?: string;
  /** Aborts between writes (Ctrl-C): writes in flight finish and are audited, the rest are not started. */
  signal?: AbortSignal;
  /** For tests; otherwise a random UUID. */
  runId?: string;
}

/** What the canary stage did. */
export interface CanaryOutcome {
  ids: string[];
  verdict: CanaryVerdict;
  receipt: WatchReceipt;
  /** The writes not released. */
  heldBack: number;
}

/** Everything a requeue did, for the caller's exit code, JSON and report. */
export interface RequeueOutcome {
  exitCode: ExitCode;
  verdict: string;
  plan: RequeuePlan | null;
  results: WriteResult[];
  receipt: WatchReceipt | null;
  canary: CanaryOutcome | null;
  findings: Finding[];
  checks: CheckResult[];
  auditFile: string;
  auditLines: number;
  settled?: Reconciliation;
  /** How the writes went (server function or per-job compare-and-set). */
  writePath?: string;
  /** Short lines for a report's "actions" section. */
  actionLines: string[];
  /** Set when the run ended on a RunbookError (usage after the preview, aborted, connection): rethrown by the runbook. */
  error?: RunbookError;
}

/** One requeue in progress: filled step by step; `end` set by the step that ends it. */
export interface RequeueRun {
  ports: Ports;
  ctx: RequeueContext;
  opts: ExecuteOptions;
  now: Date;
  by: string;
  runId: string;
  auditProject: AuditProject;
  auditFile: string;
  read?: SelectionRead;
  /** The reason as given or asked for (null: none yet). */
  reason: string | null;
  plan: RequeuePlan | null;
  gate?: GateSeen & { unreachable?: string };
  /** Interrupted runs found in the audit file, settled before this run's first write. */
  pending: PendingIntent[];
  /** The audit file, opened just before the first write. */
  audit?: AuditLog;
  applier?: Applier;
  /** Writes still to do after the canary (all of them without one). */
  rest: readonly PlannedWrite[];
  results: WriteResult[];
  receipt: WatchReceipt | null;
  canary: CanaryOutcome | null;
  settled?: Reconciliation;
  stoppedKind?: 'aborted' | 'write-failed' | 'outcome-unknown';
  findings: Finding[];
  checks: CheckResult[];
  actionLines: string[];
  end?: { exitCode: ExitCode; verdict: string; error?: RunbookError };
}

export function newRun(ports: Ports, ctx: RequeueContext, opts: ExecuteOptions): RequeueRun {
  return {
    ports,
    ctx,
    opts,
    now: ports.clock.now(),
    by: ports.operator(opts.by ?? ctx.values.RUNBOOK_OPERATOR),
    runId: opts.runId ?? randomUUID(),
    auditProject: { origin: ctx.project.origin, ref: ctx.project.ref ?? null },
    auditFile: '',
    reason: opts.reason ?? null,
    plan: null,
    pending: [],
    rest: [],
    results: [],
    receipt: null,
    canary: null,
    findings: [],
    checks: [],
    actionLines: [],
  };
}

/** Ends the run here: the steps after this one do not run. */
export function endRun(run: RequeueRun, exitCode: ExitCode, verdict: string): CheckResult[] {
  run.end = { exitCode, verdict };
  return [];
}

/** The findings shown (most severe first) and the outcome the caller gets. */
export function outcomeOf(run: RequeueRun): RequeueOutcome {
  const { out } = run.ports;
  const end = run.end ?? { exitCode: 0, verdict: 'nothing to do' };
  const sorted = sortFindings(run.findings);
  if (sorted.length) {
    out.heading(`Findings (${sorted.length})`);
    for (const [i, f] of sorted.entries()) out.finding(f, i);
  }
  return {
    exitCode: end.exitCode as ExitCode,
    verdict: end.verdict,
    plan: run.plan,
    results: run.results,
    receipt: run.receipt,
    canary: run.canary,
    findings: sorted,
    checks: run.checks,
    auditFile: run.auditFile,
    auditLines: run.audit?.written.length ?? 0,
    settled: run.settled,
    writePath: run.applier?.describePath() || undefined,
    actionLines: run.actionLines,
    ...(end.error ? { error: end.error } : {}),
  };
}

/** The project a side points at, as the target guard shows it. */
export function projectTargetFrom(side: SupabaseSide, now: Date, credentials?: string): ProjectTarget {
  if (!side.url) {
    throw new RunbookErrorClass(
      `${side.urlVar}: ${side.urlProblem ?? 'not a usable URL'}`,
      `set ${side.urlVar} to the project URL, e.g. https://<ref>.supabase.co`,
    );
  }
  return {
    origin: side.url.origin,
    host: side.url.url.host,
    ref: side.url.projectRef ?? side.declaredRef ?? side.key?.ref,
    credentials: credentials ?? `${side.source}${side.keyVar ? `, key ${side.keyVar}` : ''}`,
    keyVar: side.keyVar,
    key: side.key ? describeKey(side.key, now) : 'no key',
    privileged: side.key?.privileged ?? false,
  };
}

export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
