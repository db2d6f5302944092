/**
 * The requeue flow: target guard → selection → plan (the preview) → fix gate → confirmation → audited,
 * compare-and-set writes (canary first when asked) → verify → receipt. `runRequeue` is the runbook;
 * `requeueJobs` is the hand-over debug-stuck-jobs calls with the ids of a finding; both run `executeRequeue`.
 */
import { randomUUID } from 'node:crypto';
import { type Applier, createApplier, type WriteResult } from '../actions/requeue/apply.ts';
import {
  type AuditProject,
  openAuditLog,
  parseAuditText,
  pendingIntents,
  type Reconciliation,
  readAuditFile,
  reconcileAudit,
  resolveAuditFile,
} from '../actions/requeue/audit.ts';
import { type CanaryVerdict, judgeCanary, pickCanaries } from '../actions/requeue/canary.ts';
import {
  buildPlan,
  opIdFor,
  type PlannedWrite,
  type ProjectTarget,
  type RequeuePlan,
  withoutRunning,
} from '../actions/requeue/plan.ts';
import {
  canaryLines,
  countResults,
  exclusionLines,
  planJson,
  previewLines,
  receiptLines,
  resultLines,
  targetLines,
} from '../actions/requeue/receipt.ts';
import { describeSelection, readSelection, type SelectionRead } from '../actions/requeue/select.ts';
import { notWatched, type WatchReceipt, watchJobs } from '../actions/requeue/verify.ts';
import { AbortedError, EXIT, type ExitCode, RunbookError } from '../core/exit-codes.ts';
import { type Finding, sortFindings } from '../core/finding.ts';
import type { StuckRules } from '../core/stuck-rules.ts';
import type { Evidence, SupabaseSide } from '../evidence/evidence.ts';
import { closeSession, configStep, sparkStep } from '../evidence/gather.ts';
import { requeueGate } from '../findings/fix-gate.ts';
import { stuckRulesFrom } from '../io/config.ts';
import type { Ports } from '../io/context.ts';
import type { JobsDb } from '../io/jobs-db.ts';
import { describeKey } from '../io/keys.ts';
import { buildReport, type Report, writeReports } from '../io/report.ts';
import { shellQuote } from '../io/shell-quote.ts';
import { sshTargetLabel } from '../io/ssh/target.ts';
import { type CheckResult, check, runPlan, type Step } from '../io/steps.ts';
import {
  parseOneLine,
  parseRequeueOptions,
  type RequeueFlags,
  type RequeueOptions,
  TYPE_COUNT_THRESHOLD,
} from './requeue-usage.ts';
import type { RunState } from './run.ts';
import { type CommonFlags, startRun } from './run.ts';

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

/** The project a side points at, as the target guard shows it. */
export function projectTargetFrom(side: SupabaseSide, now: Date, credentials?: string): ProjectTarget {
  if (!side.url) {
    throw new RunbookError(
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

function validReason(value: string): true | string {
  try {
    parseOneLine('reason', value, 500, '"fix deployed"');
    return true;
  } catch (e) {
    return (e as Error).message;
  }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * Runs one requeue end to end with the context given. Never throws a RunbookError: it comes back in
 * `outcome.error` with the exit code, so the caller can still write its report.
 */
export async function executeRequeue(ports: Ports, ctx: RequeueContext, opts: ExecuteOptions): Promise<RequeueOutcome> {
  const { out, prompt, clock } = ports;
  const now = clock.now();
  const checks: CheckResult[] = [];
  const findings: Finding[] = [];
  const results: WriteResult[] = [];
  const actionLines: string[] = [];
  const project = ctx.project;
  const auditProject: AuditProject = { origin: project.origin, ref: project.ref ?? null };
  const by = ports.operator(opts.by ?? ctx.values.RUNBOOK_OPERATOR);
  const runId = opts.runId ?? randomUUID();
  let plan: RequeuePlan | null = null;
  let receipt: WatchReceipt | null = null;
  let canary: CanaryOutcome | null = null;
  let settled: Reconciliation | undefined;
  let applier: Applier | undefined;
  let auditFile = '';
  let auditLines = 0;
  let stoppedKind: 'aborted' | 'write-failed' | 'outcome-unknown' | undefined;

  const show = (c: CheckResult) => {
    checks.push(c);
    out.check(c);
  };
  const outcome = (exitCode: ExitCode, verdict: string, error?: RunbookError): RequeueOutcome => {
    const sorted = sortFindings(findings);
    if (sorted.length) {
      out.heading(`Findings (${sorted.length})`);
      for (const [i, f] of sorted.entries()) out.finding(f, i);
    }
    return {
      exitCode,
      verdict,
      plan,
      results,
      receipt,
      canary,
      findings: sorted,
      checks,
      auditFile,
      auditLines,
      settled,
      writePath: applier?.describePath() || undefined,
      actionLines,
      ...(error ? { error } : {}),
    };
  };

  try {
    auditFile = resolveAuditFile(opts.auditFlag, ctx.values.REQUEUE_AUDIT_FILE, ports.env, ports.homeDir, ports.cwd);

    out.heading('Target');
    for (const l of targetLines(project)) out.line(l);
    if (!project.privileged) {
      throw new RunbookError(
        `the key in use (${project.keyVar ?? 'none'}) is not a service-role or secret key: row-level security hides the jobs from it`,
        "set SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_SECRET_KEY) to the project's service-role key",
      );
    }
    checks.push(
      check(
        'target',
        'Target guard',
        'ok',
        `${project.origin} (project ${project.ref ?? 'unknown'}); ${project.credentials}`,
      ),
    );

    const sel = opts.selection;
    if (sel.kind === 'filter' && sel.ignoredStatuses.length) {
      out.line(
        `--status ${sel.ignoredStatuses.join(', ')}: those jobs already wait for the worker; nothing to do for them`,
      );
    }
    if (sel.kind === 'filter' && sel.statuses.length === 0) {
      return outcome(EXIT.ok, 'nothing to do: queued and pending jobs already wait for the worker');
    }

    const stopReading = out.progress('Read the selected jobs');
    let read: SelectionRead;
    try {
      read = await readSelection(ctx.db, sel, opts.limit);
    } finally {
      stopReading();
    }
    show(
      check(
        'select',
        'Select the jobs',
        read.missingIds.length ? 'warning' : 'ok',
        `${plural(read.jobs.length, 'job')} found (${describeSelection(sel)})${read.missingIds.length ? `; ${read.missingIds.length} id(s) not found` : ''}`,
      ),
    );

    // A skipped gate is part of why the jobs were requeued: kept in each job's history and the audit file.
    const recorded = (reason: string | null) =>
      opts.skipFixGate === undefined
        ? reason
        : `${reason ?? 'no reason given'} (fix gate skipped: ${opts.skipFixGate})`;
    const make = (given: string | null) => {
      const reason = recorded(given);
      return buildPlan({
        selection: sel,
        read,
        rules: ctx.rules,
        now,
        includeDone: opts.includeDone,
        resetAttempts: opts.resetAttempts,
        by,
        reason,
        runId,
        opId: opIdFor({ selection: sel, reason, includeDone: opts.includeDone, resetAttempts: opts.resetAttempts }),
        project,
        selectionText: describeSelection(sel),
        limit: opts.limit,
      });
    };
    let reason = opts.reason ?? null;
    plan = make(reason);
    // The reason is part of the command (and of each history entry): ask before the preview, so it shows the truth.
    if (opts.apply && reason === null && plan.writes.length > 1 && prompt.interactive) {
      reason = (
        await prompt.text(
          'reason',
          `Why are these ${plan.writes.length} jobs requeued? (kept in their history and the audit file)`,
          validReason,
        )
      ).trim();
      plan = make(reason);
    }

    out.heading(opts.apply ? 'Plan' : 'Preview (dry run: nothing is written)');
    for (const l of previewLines(plan, now, out.verbose)) out.line(l);
    const gate = requeueGate(
      ctx.evidence,
      plan.writes.filter((w) => !w.running).map((w) => ({ finished_at: w.before.finished_at })),
      opts.skipFixGate,
    );
    out.line(`fix gate: ${gate.line}`);
    checks.push(
      check('fix-gate', 'Fix gate', gate.deployed === false ? 'warning' : gate.deployed ? 'ok' : 'skipped', gate.line),
    );
    if (gate.deployed === false && plan.writes.length) {
      findings.push({
        id: 'fix-not-deployed',
        severity: 'warning',
        title: 'the worker has not restarted since these jobs failed',
        evidence: [gate.line],
        cause: 'a fix in the worker (code or config) is only live after a restart',
        fix: 'deploy the fix and restart the worker before requeueing, or try a few first with --canary N (or, knowing better than the gate, --skip-fix-gate "REASON")',
      });
    }
    const pending = pendingIntents(parseAuditText(readAuditFile(ports.files, auditFile))).filter(
      (p) => p.intent.project.origin === project.origin,
    );
    out.line(`audit file: ${auditFile}`);
    if (pending.length) {
      out.line(
        `the audit file has ${plural(
          pending.reduce((n, p) => n + p.jobIds.length, 0),
          'unsettled job',
        )} from an interrupted run (${[...new Set(pending.map((p) => p.intent.run_id))].join(', ')}): settled from the database when this run writes`,
      );
    }
    const problems = plan.excluded.filter((e) => e.problem);
    if (problems.length) {
      findings.push({
        id: 'requeue-not-eligible',
        severity: 'warning',
        title: `${plural(problems.length, 'job')} asked for will not be requeued`,
        evidence: problems.slice(0, 5).map((e) => `${e.jobId}: ${e.detail}`),
        cause: 'not found in this project, or not in a state a requeue may change',
        fix: 'check the ids and the project; --include-done for done jobs; running jobs only once stale by the rule',
        jobIds: problems.map((e) => e.jobId),
      });
    }
    const problemCode = problems.length ? EXIT.findings : EXIT.ok;

    if (!opts.apply) {
      out.line();
      if (plan.writes.length) {
        const n = plan.writes.length;
        // The hint is for a person: it asks for --apply and lets the confirmation do its work. It never adds --yes
        // (that would skip the confirmation for whoever pastes it) and leaves a reason for them to write.
        const hint = [
          n > 1 && reason === null ? ' --reason REASON' : '',
          plan.writes.some((w) => w.running) && !opts.includeRunning ? ' --include-running' : '',
          ' --apply',
        ].join('');
        out.line(
          `dry run: nothing was written.${opts.commandLine ? ` To requeue ${n === 1 ? 'it' : `these ${n} jobs`}: ${opts.commandLine}${hint}${prompt.interactive ? '' : ' (in a script, add --yes)'}` : ''}`,
        );
      }
      return outcome(problemCode, `dry run: ${plural(plan.writes.length, 'job')} would be requeued; nothing written`);
    }
    if (!plan.writes.length) {
      return outcome(
        problemCode,
        `nothing to do: ${
          plan.excluded.length
            ? exclusionLines(plan.excluded, false)
                .filter((l) => l.startsWith('left alone'))
                .join('; ')
            : 'no job matches'
        }`,
      );
    }

    // Running jobs: the worker may still hold them, so they are confirmed on their own (default No).
    const running = plan.writes.filter((w) => w.running);
    if (running.length) {
      let keep = opts.includeRunning && opts.yes;
      if (!keep && prompt.interactive) {
        keep = await prompt.confirm(
          'confirm-running',
          `${plural(running.length, 'running job')} ${running.length === 1 ? 'is' : 'are'} stale by the rule (${ctx.rules.runningMinutes} min). Requeue ${running.length === 1 ? 'it' : 'them'} too? Only if no worker still processes ${running.length === 1 ? 'it' : 'them'}.`,
          false,
        );
        if (!keep) plan = withoutRunning(plan, 'running: not confirmed by the operator', false);
      } else if (!keep) {
        plan = withoutRunning(plan, 'running: needs --include-running --yes without a terminal', true);
      }
      if (!keep) {
        out.line(`${plural(running.length, 'running job')} left alone (not confirmed)`);
        if (plan.excluded.some((e) => e.reason === 'running-not-confirmed' && e.problem)) {
          findings.push({
            id: 'requeue-not-eligible',
            severity: 'warning',
            title: `${plural(running.length, 'running job')} not requeued: not confirmed`,
            evidence: running.slice(0, 5).map((w) => `${w.jobId} running since ${w.before.started_at}`),
            cause: 'running jobs need their own confirmation: the worker may still be processing them',
            fix: 'check the worker is not on them, then rerun with --include-running (and --yes without a terminal)',
            jobIds: running.map((w) => w.jobId),
          });
        }
        if (!plan.writes.length) return outcome(EXIT.findings, 'nothing requeued: the running jobs were not confirmed');
      }
    }

    if (plan.writes.length > 1 && reason === null) {
      throw new RunbookError(
        `--reason is required to requeue more than one job (${plan.writes.length} selected); nothing was written`,
        'add --reason "why", e.g. --reason "fix deployed: metadata subset"',
      );
    }
    const n = plan.writes.length;
    if (!opts.yes) {
      if (!prompt.interactive) {
        throw new RunbookError(
          `this run is non-interactive (no terminal, --ci or CI set): nothing is written without --apply --yes (${plural(n, 'job')} planned)`,
          'review the preview, then rerun with --apply --yes',
        );
      }
      // The confirmation states the gate's verdict, whatever it is.
      const warn =
        gate.deployed === false
          ? ' (the worker has NOT restarted since they failed)'
          : gate.unreachable
            ? ' (the fix gate cannot tell: Spark did not answer)'
            : opts.skipFixGate !== undefined
              ? ' (fix gate skipped)'
              : '';
      const ok = await prompt.confirm(
        'confirm-apply',
        `Requeue ${plural(n, 'job')} in project ${project.ref ?? '?'} (${project.host})${warn}?`,
        false,
      );
      if (!ok) throw new AbortedError('not confirmed: nothing was written');
      if (n > TYPE_COUNT_THRESHOLD) {
        const typed = (await prompt.text('type-count', `Type the number of jobs to requeue (${n}) to go ahead`)).trim();
        if (typed !== String(n))
          throw new AbortedError(`typed ${JSON.stringify(typed.slice(0, 20))}, not ${n}: nothing was written`);
      }
    } else if (!opts.canary && opts.skipFixGate === undefined) {
      // --yes: nobody reads the gate's verdict before the writes, so the gate itself decides. A canary (a few
      // first, the rest only when they finish) or an explicit, recorded --skip-fix-gate REASON goes ahead.
      if (gate.deployed === false) {
        return outcome(
          EXIT.findings,
          `nothing requeued: the fix is probably not deployed (${plural(n, 'job')} would fail again)`,
        );
      }
      if (gate.unreachable) {
        throw new RunbookError(
          `the fix gate cannot tell whether the fix is deployed: Spark did not answer (${gate.unreachable}); nothing was written`,
          'fix the connection to Spark (npx zx runbooks/diagnose-env.mts), or go ahead with --canary N (a few first) or --skip-fix-gate "REASON"',
        );
      }
    }

    const audit = openAuditLog(ports.files, out.redact, auditFile, {
      run_id: plan.runId,
      op_id: plan.opId,
      by: plan.by,
      reason: plan.reason,
      project: auditProject,
    });
    const lines = () => audit.written.length;
    try {
      if (pending.length) {
        settled = await reconcileAudit(ctx.db, audit, pending, auditProject, plan.runId, () => clock.now());
        out.line(
          `audit file settled for interrupted run(s) ${settled.runs.join(', ')}: ${settled.requeued} had been written, ${settled.notWritten} had not`,
        );
        findings.push({
          id: 'audit-settled',
          severity: 'info',
          title: 'an interrupted requeue was settled in the audit file',
          evidence: [`runs ${settled.runs.join(', ')}: ${settled.requeued} written, ${settled.notWritten} not written`],
          cause: 'a previous run was killed between a write and its audit line',
          fix: 'nothing to do: the audit file now records exactly what was written',
        });
      }

      applier = createApplier({ db: ctx.db, clock, out, audit, signal: opts.signal }, plan, {
        concurrency: opts.concurrency,
        rpc: opts.rpc,
      });
      let rest: readonly PlannedWrite[] = plan.writes;
      if (opts.canary) {
        const canaries = pickCanaries(plan.writes, opts.canary);
        out.heading(`Canary: ${plural(canaries.length, 'job')} first`);
        const run = await applier.apply(canaries);
        results.push(...run.results);
        out.line(`writes: ${applier.describePath()}`);
        for (const l of resultLines(run.results, out.verbose)) out.line(l);
        const ids = new Set(canaries.map((w) => w.jobId));
        rest = plan.writes.filter((w) => !ids.has(w.jobId));
        stoppedKind = run.stopped?.kind;
        if (run.stopped) {
          findings.push(stoppedFinding(run.stopped));
        } else {
          const requeued = run.results.filter((r) => r.outcome === 'requeued').map((r) => r.jobId);
          const watch = await watchJobs(
            { db: ctx.db, clock, out, signal: opts.signal },
            requeued,
            opts.canaryTimeoutSeconds,
            'canary:',
          );
          const verdict = requeued.length
            ? judgeCanary(watch)
            : { verdict: 'inconclusive' as const, line: 'no canary job was requeued (all changed since the preview)' };
          canary = { ids: [...ids], verdict, receipt: watch, heldBack: rest.length };
          for (const l of canaryLines([...ids], verdict, watch)) out.line(l);
          let release = verdict.verdict === 'pass';
          if (verdict.verdict === 'inconclusive' && rest.length && prompt.interactive && !opts.signal?.aborted) {
            release = await prompt.confirm(
              'confirm-release',
              `${verdict.line}. Release the other ${plural(rest.length, 'job')} anyway?`,
              false,
            );
          }
          if (!release && rest.length) {
            findings.push({
              id: verdict.verdict === 'fail' ? 'canary-failed' : 'canary-inconclusive',
              severity: 'warning',
              title:
                verdict.verdict === 'fail'
                  ? `the canary failed: ${plural(rest.length, 'job')} held back`
                  : `the canary was inconclusive: ${plural(rest.length, 'job')} held back`,
              evidence: [verdict.line, ...receiptLines(watch, 'canary').slice(1, 4)],
              cause:
                verdict.verdict === 'fail'
                  ? 'the cause is not fixed (or not deployed) for these jobs'
                  : 'the worker did not finish the canary jobs in time',
              fix:
                verdict.verdict === 'fail'
                  ? 'read the new error (debug-stuck-jobs), deploy the fix, then rerun the same command: the canaries are not requeued twice'
                  : 'check the worker picks jobs up, then rerun the same command (or raise --canary-timeout)',
              jobIds: watch.jobs.filter((j) => j.state === 'failed-again').map((j) => j.id),
            });
            for (const w of rest) {
              results.push({
                jobId: w.jobId,
                outcome: 'not-attempted',
                detail: `held back: ${verdict.line}`,
                before: w.before,
                after: null,
              });
            }
            rest = [];
          } else if (canary) canary.heldBack = 0;
        }
      }
      if (!stoppedKind && rest.length) {
        if (opts.canary) out.heading(`Release the other ${plural(rest.length, 'job')}`);
        else out.heading('Apply');
        const run = await applier.apply(rest);
        results.push(...run.results);
        if (!opts.canary) out.line(`writes: ${applier.describePath()}`);
        stoppedKind = run.stopped?.kind;
        if (run.stopped) findings.push(stoppedFinding(run.stopped));
      }
    } finally {
      auditLines = lines();
    }

    out.heading('Result');
    for (const l of resultLines(results, out.verbose)) out.line(l);
    out.line(`audit: ${auditLines} line${auditLines === 1 ? '' : 's'} appended to ${auditFile}`);
    const skipped = results.filter((r) => r.outcome === 'skipped');
    if (skipped.length) {
      findings.push({
        id: 'requeue-skipped',
        severity: 'warning',
        title: `${plural(skipped.length, 'job')} changed after the preview and ${skipped.length === 1 ? 'was' : 'were'} not overwritten`,
        evidence: skipped.slice(0, 5).map((r) => `${r.jobId}: ${r.detail}`),
        cause: 'the worker (or someone) changed them between the preview and the write',
        fix: 'run the preview again to see where they are now; requeue them again only if still needed',
        jobIds: skipped.map((r) => r.jobId),
      });
    }

    const requeuedIds = results.filter((r) => r.outcome === 'requeued').map((r) => r.jobId);
    if (opts.verifySeconds > 0 && requeuedIds.length && !opts.signal?.aborted) {
      out.heading(`Verify: watching for up to ${opts.verifySeconds} s`);
      receipt = await watchJobs(
        { db: ctx.db, clock, out, signal: opts.signal },
        requeuedIds,
        opts.verifySeconds,
        'verify:',
      );
    } else {
      receipt = notWatched(requeuedIds);
    }
    for (const l of receiptLines(receipt)) out.line(l);
    const failedAgain = receipt.jobs.filter((j) => j.state === 'failed-again');
    if (failedAgain.length) {
      findings.push({
        id: 'requeue-failed-again',
        severity: 'warning',
        title: `${plural(failedAgain.length, 'requeued job')} failed again`,
        evidence: failedAgain.slice(0, 5).map((j) => `${j.id}: ${j.signature}`),
        cause:
          gate.deployed === false
            ? 'the worker has not restarted since the failures: the fix is probably not live'
            : 'the cause is not fixed for these jobs',
        fix: 'read the new error (npx zx runbooks/debug-stuck-jobs.mts), fix and deploy, then requeue them with a new --reason',
        jobIds: failedAgain.map((j) => j.id),
      });
    }

    // Silence is not success: a watch that ran out with none of the jobs even picked up says the worker is not
    // taking jobs from this queue (down, or polling another project).
    if (receipt.ended === 'timeout' && receipt.counts.pickedUp === 0 && receipt.counts.stillQueued > 0) {
      findings.push({
        id: 'requeue-not-picked-up',
        severity: 'warning',
        title: `none of the ${plural(receipt.counts.stillQueued, 'requeued job')} was picked up in ${receipt.watchedSeconds} s`,
        evidence: [
          `${receipt.counts.stillQueued} still queued after ${receipt.watchedSeconds} s of watching`,
          `fix gate: ${gate.line}`,
        ],
        cause: 'the worker is not taking jobs from this queue: it is down, stuck, or polling another project',
        fix: 'check the worker (npx zx runbooks/diagnose-env.mts): is it running, and does its SUPABASE_URL name this project?',
        jobIds: receipt.jobs.filter((j) => j.state === 'still-queued').map((j) => j.id),
      });
    }

    const c = countResults(results);
    actionLines.push(
      `project ${project.ref ?? '?'} at ${project.host}; run ${plan.runId}; by ${plan.by}; reason ${JSON.stringify(plan.reason)}`,
      ...resultLines(results, false),
      ...(canary ? canaryLines(canary.ids, canary.verdict, canary.receipt) : []),
      ...receiptLines(receipt),
      `audit: ${auditLines} lines in ${auditFile}`,
    );
    const after =
      receipt.ended === 'not-watched'
        ? ''
        : `; watched ${receipt.watchedSeconds} s: ${receipt.counts.done} done, ${receipt.counts.failedAgain} failed again, ${receipt.counts.stillQueued} still queued`;
    const verdict =
      stoppedKind === 'aborted'
        ? `interrupted: requeued ${c.requeued} of ${n} jobs; rerun the same command for the rest`
        : canary?.heldBack
          ? `${canary.verdict.verdict === 'fail' ? 'canary failed' : 'canary inconclusive'}: requeued ${c.requeued} of ${n} jobs, ${canary.heldBack} held back`
          : `requeued ${c.requeued} of ${plural(n, 'job')}${c.skipped ? `, ${c.skipped} skipped (changed since the preview)` : ''}${c.failed + c.unknown + c.notAttempted ? `, ${c.failed + c.unknown + c.notAttempted} not written` : ''}${after}`;
    let code: ExitCode = EXIT.ok;
    if (stoppedKind === 'aborted' || opts.signal?.aborted) code = EXIT.aborted;
    else if (stoppedKind === 'write-failed' && c.requeued === 0) code = EXIT.couldNotRun;
    else if (stoppedKind || findings.some((f) => f.severity !== 'info' && f.id !== 'fix-not-deployed'))
      code = EXIT.findings;
    return outcome(code, verdict);
  } catch (e) {
    if (!(e instanceof RunbookError)) throw e;
    actionLines.push(`stopped: ${e.message}`);
    return outcome(e.code, e instanceof AbortedError ? `aborted: ${e.message}` : `could not requeue: ${e.message}`, e);
  }
}

function stoppedFinding(stopped: NonNullable<Awaited<ReturnType<Applier['apply']>>['stopped']>): Finding {
  return {
    id: stopped.kind === 'aborted' ? 'requeue-interrupted' : 'requeue-stopped',
    severity: stopped.kind === 'aborted' ? 'warning' : 'critical',
    title: stopped.kind === 'aborted' ? 'the requeue was interrupted' : `the requeue stopped: ${stopped.message}`,
    evidence: [stopped.message],
    cause:
      stopped.kind === 'outcome-unknown'
        ? 'a write got no answer (timeout or 5xx): it may or may not have happened'
        : stopped.kind === 'aborted'
          ? 'Ctrl-C: the writes in flight finished and were audited, no new write started'
          : 'Supabase refused or failed the writes',
    fix: stopped.fix,
  };
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

/**
 * The runbook: validates the flags (exit 2 before any I/O on bad input), loads the laptop config, probes Spark for
 * the fix gate (and, with --from-worker, for the worker's credentials), runs the requeue and writes the reports.
 */
export async function runRequeue(
  ports: Ports,
  flags: RequeueFlags,
  extra: { argv?: readonly string[]; signal?: AbortSignal } = {},
): Promise<ExitCode> {
  const options = parseRequeueOptions(flags, ports.clock.now(), ports.prompt.interactive);
  const state = startRun(ports, flags, (values) =>
    stuckRulesFrom(values, { runningMinutes: flags['running-minutes'], jobTypeRules: flags['job-type-rule'] }),
  );
  const { evidence } = state;
  ports.out.heading(
    `requeue · ${evidence.laptop.url?.origin} · ${evidence.now.toISOString()} · ${options.apply ? 'apply' : 'dry run'}`,
  );
  const spark: Step<RunState> = {
    ...sparkStep,
    skip: (s) =>
      options.skipFixGate && !options.fromWorker ? '--skip-fix-gate: Spark not probed' : sparkStep.skip?.(s),
  };
  try {
    const checks = await runPlan(state, [configStep, spark], ports.out);
    let db = state.db;
    let credentials: string | undefined;
    let side = evidence.laptop as SupabaseSide;
    if (options.fromWorker) {
      const probe = evidence.spark?.ok ? evidence.spark.probe : undefined;
      const vars = probe?.env.status === 'ok' ? probe.env.vars : undefined;
      const w = evidence.worker;
      const key = vars?.SUPABASE_SERVICE_ROLE_KEY || vars?.SUPABASE_SECRET_KEY;
      if (!probe || !vars || !w?.url || !key) {
        throw new RunbookError(
          `--from-worker: could not read the worker's SUPABASE_URL and key over SSH (${!evidence.spark ? 'Spark not probed: SPARK_HOST is not set' : !evidence.spark.ok ? evidence.spark.failure.message : !vars ? `its .env is ${probe?.env.status}` : 'SUPABASE_URL or the key is missing there'})`,
          'fix the Spark connection (npx zx runbooks/diagnose-env.mts), or drop --from-worker to use the laptop .env',
        );
      }
      const t = evidence.spark?.ok ? evidence.spark.target : undefined;
      credentials = `${w.source}${w.keyVar ? `, key ${w.keyVar}` : ''} on Spark (${t ? sshTargetLabel(t) : 'ssh'}), read over SSH`;
      side = w;
      db = ports.openDb(w.url.origin, key);
      if (evidence.laptop.url && evidence.laptop.url.origin !== w.url.origin) {
        ports.out.line(
          `note: the laptop's SUPABASE_URL (${evidence.laptop.url.origin}) is not the worker's; using the worker's`,
        );
      }
    }
    const ctx: RequeueContext = {
      db,
      project: projectTargetFrom(side, evidence.now, credentials),
      rules: evidence.rules,
      evidence,
      values: state.config.values,
    };
    const outcome = await executeRequeue(ports, ctx, {
      ...options,
      commandLine: extra.argv ? commandLineOf(extra.argv) : undefined,
      signal: extra.signal,
    });
    outcome.checks.unshift(...checks);
    const t = evidence.spark?.ok ? evidence.spark.target : undefined;
    const report = requeueReport(outcome, {
      generatedAt: evidence.now.toISOString(),
      operator: outcome.plan?.by ?? ports.operator(options.by ?? state.config.values.RUNBOOK_OPERATOR),
      spark: t ? sshTargetLabel(t) : undefined,
    });
    writeReports(ports, report as Report, flags);
    // A run that ended on an error says so once, through runMain (with its fix).
    if (outcome.error) throw outcome.error;
    ports.out.line();
    ports.out.line(`${outcome.verdict} (exit ${outcome.exitCode})`);
    return outcome.exitCode;
  } finally {
    await closeSession(state);
  }
}

/** What debug-stuck-jobs hands over: the ids of a finding and why (its `RequeueHandover` type). */
export interface HandoverRequest {
  ids: string[];
  reason: string;
  findingId: string;
  flags: CommonFlags;
}

/**
 * The hand-over debug-stuck-jobs calls (it matches its `RequeueHandover` type): requeues the given jobs through the
 * same flow — target guard, preview, fix gate, running jobs confirmed separately, confirmation (default No),
 * compare-and-set, history, audit, and a short verify on a terminal. Returns lines for its report and an exit code
 * (3 when the operator said no). Reports are the caller's; nothing here writes --json or --markdown.
 */
export async function requeueJobs(
  ports: Ports,
  state: RunState,
  request: HandoverRequest,
  overrides: Partial<ExecuteOptions> = {},
): Promise<{ title: string; lines: string[]; code: ExitCode; outcome: RequeueOutcome }> {
  const title = `requeue ${plural(request.ids.length, 'job')} of ${request.findingId}`;
  let options: ExecuteOptions;
  try {
    const parsed = parseRequeueOptions(
      { id: request.ids, reason: request.reason, apply: true },
      state.evidence.now,
      ports.prompt.interactive,
    );
    options = { ...parsed, ...overrides };
  } catch (e) {
    if (!(e instanceof RunbookError)) throw e;
    return {
      title,
      lines: [`not requeued: ${e.message}`, `fix: ${e.fix}`],
      code: e.code,
      outcome: {
        exitCode: e.code,
        verdict: `could not requeue: ${e.message}`,
        plan: null,
        results: [],
        receipt: null,
        canary: null,
        findings: [],
        checks: [],
        auditFile: '',
        auditLines: 0,
        actionLines: [],
        error: e,
      },
    };
  }
  const ctx: RequeueContext = {
    db: state.db,
    project: projectTargetFrom(state.evidence.laptop, state.evidence.now),
    rules: state.evidence.rules,
    evidence: state.evidence,
    values: state.config.values,
  };
  const outcome = await executeRequeue(ports, ctx, options);
  ports.out.line(outcome.verdict);
  const lines = [...outcome.actionLines];
  if (outcome.error) lines.push(`fix: ${outcome.error.fix}`);
  return { title, lines, code: outcome.exitCode, outcome };
}
