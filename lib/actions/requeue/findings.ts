/**
 * What a requeue's own steps found, as pure functions of what they saw: the same Finding shape as the diagnoses,
 * made beside the actions they judge (their evidence is the plan, the write results and the watch receipt).
 */
import type { Finding } from '../../core/finding.ts';
import type { Applier, WriteResult } from './apply.ts';
import type { Reconciliation } from './audit.ts';
import type { CanaryVerdict } from './canary.ts';
import type { Exclusion, PlannedWrite } from './plan.ts';
import { receiptLines } from './receipt.ts';
import type { WatchReceipt } from './verify.ts';

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The fix gate's verdict as the requeue saw it. */
export interface GateSeen {
  deployed: boolean | undefined;
  line: string;
}

export function fixNotDeployed(gate: GateSeen, writes: number): Finding[] {
  if (gate.deployed !== false || !writes) return [];
  return [
    {
      id: 'fix-not-deployed',
      severity: 'warning',
      title: 'the worker has not restarted since these jobs failed',
      evidence: [gate.line],
      cause: 'a fix in the worker (code or config) is only live after a restart',
      fix: 'deploy the fix and restart the worker before requeueing, or try a few first with --canary N (or, knowing better than the gate, --skip-fix-gate "REASON")',
    },
  ];
}

export function notEligible(excluded: readonly Exclusion[]): Finding[] {
  const problems = excluded.filter((e) => e.problem);
  if (!problems.length) return [];
  return [
    {
      id: 'requeue-not-eligible',
      severity: 'warning',
      title: `${plural(problems.length, 'job')} asked for will not be requeued`,
      evidence: problems.slice(0, 5).map((e) => `${e.jobId}: ${e.detail}`),
      cause: 'not found in this project, or not in a state a requeue may change',
      fix: 'check the ids and the project; --include-done for done jobs; running jobs only once stale by the rule',
      jobIds: problems.map((e) => e.jobId),
    },
  ];
}

export function runningNotConfirmed(running: readonly PlannedWrite[]): Finding {
  return {
    id: 'requeue-not-eligible',
    severity: 'warning',
    title: `${plural(running.length, 'running job')} not requeued: not confirmed`,
    evidence: running.slice(0, 5).map((w) => `${w.jobId} running since ${w.before.started_at}`),
    cause: 'running jobs need their own confirmation: the worker may still be processing them',
    fix: 'check the worker is not on them, then rerun with --include-running (and --yes without a terminal)',
    jobIds: running.map((w) => w.jobId),
  };
}

export function auditSettled(settled: Reconciliation): Finding {
  return {
    id: 'audit-settled',
    severity: 'info',
    title: 'an interrupted requeue was settled in the audit file',
    evidence: [`runs ${settled.runs.join(', ')}: ${settled.requeued} written, ${settled.notWritten} not written`],
    cause: 'a previous run was killed between a write and its audit line',
    fix: 'nothing to do: the audit file now records exactly what was written',
  };
}

export type Stopped = NonNullable<Awaited<ReturnType<Applier['apply']>>['stopped']>;

export function stoppedFinding(stopped: Stopped): Finding {
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

export function canaryHeldBack(verdict: CanaryVerdict, watch: WatchReceipt, heldBack: number): Finding {
  const failed = verdict.verdict === 'fail';
  return {
    id: failed ? 'canary-failed' : 'canary-inconclusive',
    severity: 'warning',
    title: failed
      ? `the canary failed: ${plural(heldBack, 'job')} held back`
      : `the canary was inconclusive: ${plural(heldBack, 'job')} held back`,
    evidence: [verdict.line, ...receiptLines(watch, 'canary').slice(1, 4)],
    cause: failed
      ? 'the cause is not fixed (or not deployed) for these jobs'
      : 'the worker did not finish the canary jobs in time',
    fix: failed
      ? 'read the new error (debug-stuck-jobs), deploy the fix, then rerun the same command: the canaries are not requeued twice'
      : 'check the worker picks jobs up, then rerun the same command (or raise --canary-timeout)',
    jobIds: watch.jobs.filter((j) => j.state === 'failed-again').map((j) => j.id),
  };
}

export function changedSincePreview(results: readonly WriteResult[]): Finding[] {
  const skipped = results.filter((r) => r.outcome === 'skipped');
  if (!skipped.length) return [];
  return [
    {
      id: 'requeue-skipped',
      severity: 'warning',
      title: `${plural(skipped.length, 'job')} changed after the preview and ${skipped.length === 1 ? 'was' : 'were'} not overwritten`,
      evidence: skipped.slice(0, 5).map((r) => `${r.jobId}: ${r.detail}`),
      cause: 'the worker (or someone) changed them between the preview and the write',
      fix: 'run the preview again to see where they are now; requeue them again only if still needed',
      jobIds: skipped.map((r) => r.jobId),
    },
  ];
}

export function failedAgain(receipt: WatchReceipt, gate: GateSeen): Finding[] {
  const again = receipt.jobs.filter((j) => j.state === 'failed-again');
  if (!again.length) return [];
  return [
    {
      id: 'requeue-failed-again',
      severity: 'warning',
      title: `${plural(again.length, 'requeued job')} failed again`,
      evidence: again.slice(0, 5).map((j) => `${j.id}: ${j.signature}`),
      cause:
        gate.deployed === false
          ? 'the worker has not restarted since the failures: the fix is probably not live'
          : 'the cause is not fixed for these jobs',
      fix: 'read the new error (npx zx runbooks/debug-stuck-jobs.mts), fix and deploy, then requeue them with a new --reason',
      jobIds: again.map((j) => j.id),
    },
  ];
}

/**
 * Silence is not success: a watch that ran out with none of the jobs even picked up says the worker is not taking
 * jobs from this queue (down, or polling another project).
 */
export function notPickedUp(receipt: WatchReceipt, gate: GateSeen): Finding[] {
  if (receipt.ended !== 'timeout' || receipt.counts.pickedUp !== 0 || receipt.counts.stillQueued === 0) return [];
  return [
    {
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
    },
  ];
}
