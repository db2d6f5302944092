/**
 * The requeue's steps from the first write on: the audit file opened (an interrupted run settled first), a canary
 * when asked, the compare-and-set writes, the result, the watch (verify) and the end line. Findings come from the
 * pure functions in lib/actions/requeue/findings.ts.
 */
import { createApplier } from '../../actions/requeue/apply.ts';
import { openAuditLog, reconcileAudit } from '../../actions/requeue/audit.ts';
import { judgeCanary, pickCanaries } from '../../actions/requeue/canary.ts';
import {
  auditSettled,
  canaryHeldBack,
  changedSincePreview,
  failedAgain,
  notPickedUp,
  stoppedFinding,
} from '../../actions/requeue/findings.ts';
import { canaryLines, countResults, receiptLines, resultLines } from '../../actions/requeue/receipt.ts';
import { notWatched, watchJobs } from '../../actions/requeue/verify.ts';
import { EXIT, type ExitCode } from '../../core/exit-codes.ts';
import type { Step } from '../../io/steps.ts';
import { endRun, plural, type RequeueRun } from './state.ts';

type RequeueStep = Step<RequeueRun>;

/** Opens the audit file (intent first), settles what an interrupted run left unsettled, and readies the writes. */
export const openAudit: RequeueStep = {
  id: 'audit',
  title: 'Open the audit file',
  progress: false,
  async run(run) {
    const { ports, opts } = run;
    const plan = run.plan!;
    const audit = openAuditLog(ports.files, ports.out.redact, run.auditFile, {
      run_id: plan.runId,
      op_id: plan.opId,
      by: plan.by,
      reason: plan.reason,
      project: run.auditProject,
    });
    run.audit = audit;
    if (run.pending.length) {
      const now = () => ports.clock.now();
      const settled = await reconcileAudit(run.ctx.db, audit, run.pending, run.auditProject, plan.runId, now);
      run.settled = settled;
      ports.out.line(
        `audit file settled for interrupted run(s) ${settled.runs.join(', ')}: ${settled.requeued} had been written, ${settled.notWritten} had not`,
      );
      run.findings.push(auditSettled(settled));
    }
    const io = { db: run.ctx.db, clock: ports.clock, out: ports.out, audit, signal: opts.signal };
    run.applier = createApplier(io, plan, {
      concurrency: opts.concurrency,
      rpc: opts.rpc,
      rpcBatch: opts.rpcBatch,
    });
    run.rest = plan.writes;
    return [];
  },
};

/** Holds the writes not released after a canary that did not pass. */
function holdBack(run: RequeueRun, line: string): void {
  for (const w of run.rest) {
    run.results.push({
      jobId: w.jobId,
      outcome: 'not-attempted',
      detail: `held back: ${line}`,
      before: w.before,
      after: null,
    });
  }
  run.rest = [];
}

/** --canary N: a few first, watched until done; the rest only when they pass (or the operator says so). */
export const canary: RequeueStep = {
  id: 'canary',
  title: 'Requeue a canary',
  progress: false,
  async run(run) {
    const { ports, opts } = run;
    if (!opts.canary) return [];
    const { out, prompt, clock } = ports;
    const applier = run.applier!;
    const canaries = pickCanaries(run.plan!.writes, opts.canary!);
    out.heading(`Canary: ${plural(canaries.length, 'job')} first`);
    const result = await applier.apply(canaries);
    run.results.push(...result.results);
    out.line(`writes: ${applier.describePath()}`);
    for (const l of resultLines(result.results, out.verbose)) out.line(l);
    const ids = new Set(canaries.map((w) => w.jobId));
    run.rest = run.plan!.writes.filter((w) => !ids.has(w.jobId));
    run.stoppedKind = result.stopped?.kind;
    if (result.stopped) {
      run.findings.push(stoppedFinding(result.stopped));
      return [];
    }
    const requeued = result.results.filter((r) => r.outcome === 'requeued').map((r) => r.jobId);
    const io = { db: run.ctx.db, clock, out, signal: opts.signal };
    const watch = await watchJobs(io, requeued, opts.canaryTimeoutSeconds, 'canary:');
    const verdict = requeued.length
      ? judgeCanary(watch)
      : { verdict: 'inconclusive' as const, line: 'no canary job was requeued (all changed since the preview)' };
    run.canary = { ids: [...ids], verdict, receipt: watch, heldBack: run.rest.length };
    for (const l of canaryLines([...ids], verdict, watch)) out.line(l);
    let release = verdict.verdict === 'pass';
    if (verdict.verdict === 'inconclusive' && run.rest.length && prompt.interactive && !opts.signal?.aborted) {
      const question = `${verdict.line}. Release the other ${plural(run.rest.length, 'job')} anyway?`;
      release = await prompt.confirm('confirm-release', question, false);
    }
    if (!release && run.rest.length) {
      run.findings.push(canaryHeldBack(verdict, watch, run.rest.length));
      holdBack(run, verdict.line);
    } else run.canary.heldBack = 0;
    return [];
  },
};

/** The compare-and-set writes (or the SQL function), each audited. */
export const applyWrites: RequeueStep = {
  id: 'apply',
  title: 'Requeue the jobs',
  progress: false,
  async run(run) {
    // Nothing left after a canary that held the rest back, or writes that stopped: nothing to say here.
    if (run.stoppedKind || !run.rest.length) return [];
    const { out } = run.ports;
    const applier = run.applier!;
    if (run.opts.canary) out.heading(`Release the other ${plural(run.rest.length, 'job')}`);
    else out.heading('Apply');
    const result = await applier.apply(run.rest);
    run.results.push(...result.results);
    if (!run.opts.canary) out.line(`writes: ${applier.describePath()}`);
    run.stoppedKind = result.stopped?.kind;
    if (result.stopped) run.findings.push(stoppedFinding(result.stopped));
    return [];
  },
};

/** What was written, where it is audited, and what changed since the preview. */
export const showResult: RequeueStep = {
  id: 'result',
  title: 'Show the result',
  progress: false,
  async run(run) {
    const { out } = run.ports;
    const lines = run.audit?.written.length ?? 0;
    out.heading('Result');
    for (const l of resultLines(run.results, out.verbose)) out.line(l);
    out.line(`audit: ${lines} line${lines === 1 ? '' : 's'} appended to ${run.auditFile}`);
    run.findings.push(...changedSincePreview(run.results));
    return [];
  },
};

/** Watches the requeued jobs for --verify seconds: done, failed again, or never picked up. */
export const verify: RequeueStep = {
  id: 'verify',
  title: 'Verify',
  progress: false,
  async run(run) {
    const { ports, opts } = run;
    const { out, clock } = ports;
    const ids = run.results.filter((r) => r.outcome === 'requeued').map((r) => r.jobId);
    if (opts.verifySeconds > 0 && ids.length && !opts.signal?.aborted) {
      out.heading(`Verify: watching for up to ${opts.verifySeconds} s`);
      const io = { db: run.ctx.db, clock, out, signal: opts.signal };
      run.receipt = await watchJobs(io, ids, opts.verifySeconds, 'verify:');
    } else {
      run.receipt = notWatched(ids);
    }
    for (const l of receiptLines(run.receipt)) out.line(l);
    run.findings.push(...failedAgain(run.receipt, run.gate!), ...notPickedUp(run.receipt, run.gate!));
    return [];
  },
};

function verdictOf(run: RequeueRun): string {
  const n = run.plan!.writes.length;
  const c = countResults(run.results);
  const receipt = run.receipt!;
  if (run.stoppedKind === 'aborted')
    return `stopped (Ctrl-C): requeued ${c.requeued} of ${n} jobs; rerun the same command for the rest`;
  if (run.canary?.heldBack) {
    const what = run.canary.verdict.verdict === 'fail' ? 'canary failed' : 'canary inconclusive';
    return `${what}: requeued ${c.requeued} of ${n} jobs, ${run.canary.heldBack} held back`;
  }
  const skipped = c.skipped ? `, ${c.skipped} skipped (changed since the preview)` : '';
  const notWritten = c.failed + c.unknown + c.notAttempted;
  const after =
    receipt.ended === 'not-watched'
      ? ''
      : `; watched ${receipt.watchedSeconds} s: ${receipt.counts.done} done, ${receipt.counts.failedAgain} failed again, ${receipt.counts.stillQueued} still queued`;
  const pool = run.applier?.saturation();
  return `requeued ${c.requeued} of ${plural(n, 'job')}${skipped}${notWritten ? `, ${notWritten} not written` : ''}${after}${pool ? `; ${pool}` : ''}`;
}

/** The end line and exit code, and the lines a report's "actions" section keeps. */
export const conclude: RequeueStep = {
  id: 'conclude',
  title: 'Conclude',
  progress: false,
  async run(run) {
    const plan = run.plan!;
    const c = countResults(run.results);
    run.actionLines.push(
      `project ${plan.project.ref ?? '?'} at ${plan.project.host}; run ${plan.runId}; by ${plan.by}; reason ${JSON.stringify(plan.reason)}`,
      ...resultLines(run.results, false),
      ...(run.canary ? canaryLines(run.canary.ids, run.canary.verdict, run.canary.receipt) : []),
      ...receiptLines(run.receipt!),
      `audit: ${run.audit?.written.length ?? 0} lines in ${run.auditFile}`,
    );
    let code: ExitCode = EXIT.ok;
    if (run.stoppedKind === 'aborted' || run.opts.signal?.aborted) code = EXIT.aborted;
    else if (run.stoppedKind === 'write-failed' && c.requeued === 0) code = EXIT.couldNotRun;
    else if (run.stoppedKind || run.findings.some((f) => f.severity !== 'info' && f.id !== 'fix-not-deployed'))
      code = EXIT.findings;
    return endRun(run, code, verdictOf(run));
  },
};
