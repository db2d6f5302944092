/**
 * How a requeue reads: the target guard, the preview (grouped, with the exact change per job), the results and the
 * receipt, as lines for the terminal and the markdown report, and as data for the JSON. Pure.
 */

import { clip, countText } from '../../core/text.ts';
import { formatAge, minutesBetween } from '../../evidence/evidence.ts';
import type { WriteResult } from './apply.ts';
import type { CanaryVerdict } from './canary.ts';
import { type Exclusion, groupWrites, type PlannedWrite, type ProjectTarget, type RequeuePlan } from './plan.ts';
import type { WatchReceipt } from './verify.ts';

/** Per-job lines shown on the terminal before "… and N more" (the JSON always has every job). */
export const SHOWN_JOBS = 20;

const plural = (n: number, word: string, many = `${word}s`) => `${n} ${n === 1 ? word : many}`;

function firstLine(text: string | null, max = 100): string {
  if (text === null) return 'null';
  const line = text.split('\n').find((l) => l.trim()) ?? '';
  return JSON.stringify(clip(line, max));
}

/** The target guard: which project, and where the credentials came from. */
export function targetLines(p: ProjectTarget): string[] {
  return [
    `project ${p.ref ?? '(ref unknown)'} at ${p.host} (${p.origin})`,
    `credentials: ${p.credentials}`,
    `key ${p.keyVar ?? '?'}: ${p.key}`,
  ];
}

/** The change every planned write makes, in one sentence, naming the history entry's fields. */
export function changeLine(plan: RequeuePlan): string {
  return [
    'status → queued',
    'error, started_at, finished_at → null',
    plan.resetAttempts ? 'attempts → 0 (--reset-attempts)' : 'attempts kept',
    `debug.requeue_history += { at, by: ${JSON.stringify(plan.by)}, reason: ${JSON.stringify(plan.reason)}, from_status, from_error, from_attempts, started_at, finished_at, run_id: ${plan.runId}, op_id: ${plan.opId} }`,
    'other debug keys kept',
  ].join('; ');
}

/** One planned write on one line: id, type, status change, attempts, the error it clears. */
export function writeLine(w: PlannedWrite, now: Date): string {
  const when = w.before.finished_at ?? w.before.started_at;
  const age = when
    ? ` ${w.before.status === 'running' ? 'started' : 'finished'} ${formatAge(minutesBetween(now, when))} ago`
    : '';
  const attempts =
    w.after.attempts === w.before.attempts
      ? `attempts ${w.before.attempts}`
      : `attempts ${w.before.attempts} → ${w.after.attempts}`;
  const error = w.before.error === null ? '' : ` · error ${firstLine(w.before.error, 70)} → null`;
  const again = w.requeuedBefore ? ` · ${w.before.status} again since the requeue at ${w.requeuedBefore}` : '';
  return `${w.jobId}  ${w.jobType}  ${w.before.status} → queued${age} · ${attempts}${error}${again}${w.running ? ' · RUNNING: needs its own confirmation' : ''}`;
}

const EXCLUSION_TITLES: Record<Exclusion['reason'], string> = {
  'not-found': 'not found',
  'already-queued': 'already queued, nothing to do',
  'done-needs-include-done': 'done (needs --include-done)',
  'running-not-stale': 'running, not stale by the rule',
  'running-not-confirmed': 'running, not confirmed',
};

/** The jobs left alone, by reason; ids listed when they were asked for (or with --verbose). */
export function exclusionLines(excluded: readonly Exclusion[], verbose: boolean): string[] {
  const lines: string[] = [];
  const by = new Map<Exclusion['reason'], Exclusion[]>();
  for (const e of excluded) by.set(e.reason, [...(by.get(e.reason) ?? []), e]);
  for (const [reason, list] of by) {
    lines.push(`left alone: ${list.length} ${EXCLUSION_TITLES[reason]}`);
    const show = verbose || list.some((e) => e.problem) ? list.slice(0, verbose ? list.length : 10) : [];
    for (const e of show) lines.push(`  ${e.jobId}${e.jobType ? `  ${e.jobType}` : ''}: ${e.detail}`);
    if (show.length && show.length < list.length) lines.push(`  … and ${list.length - show.length} more`);
  }
  return lines;
}

/** The preview: what was selected, grouped, the exact change, and each job. */
export function previewLines(plan: RequeuePlan, now: Date, verbose: boolean): string[] {
  const lines: string[] = [`selection: ${plan.selection} (limit ${plan.limit})`];
  if (plan.more) {
    lines.push(
      `limit reached: ${plan.writes.length + plan.excluded.length} taken${plan.more.total !== undefined ? ` of ${countText(plan.more.total, plan.more.estimated)} matching` : '; more may match'} — rerun the same command afterwards for the rest, or raise --limit`,
    );
  }
  if (plan.scanCut)
    lines.push(
      'the scan stopped early (many jobs share one created_at, or the scan bound was reached): narrow the filters',
    );
  if (!plan.writes.length) {
    lines.push('nothing to requeue');
  } else {
    lines.push(`${plural(plan.writes.length, 'job')} to requeue, by job_type and error:`);
    for (const g of groupWrites(plan.writes)) {
      lines.push(`  ${String(g.count).padStart(5)} × ${g.jobType} · ${g.signature} (${g.statuses.join(', ')})`);
    }
    const again = plan.writes.filter((w) => w.requeuedBefore);
    if (again.length)
      lines.push(
        `${plural(again.length, 'job')} of them requeued before, and failed again since (last requeue at ${again
          .map((w) => w.requeuedBefore!)
          .sort()
          .at(-1)}): requeued again now`,
      );
    lines.push(`change per job: ${changeLine(plan)}`);
    lines.push(
      'guard: each job is written only while its status, attempts and started_at are still as shown (compare-and-set)',
    );
    const shown = verbose ? plan.writes : plan.writes.slice(0, SHOWN_JOBS);
    for (const w of shown) lines.push(`  ${writeLine(w, now)}`);
    if (shown.length < plan.writes.length)
      lines.push(`  … and ${plan.writes.length - shown.length} more (all with --verbose, or in --json)`);
  }
  lines.push(...exclusionLines(plan.excluded, verbose));
  return lines;
}

/** Results counted by outcome. */
export interface ResultCounts {
  requeued: number;
  skipped: number;
  failed: number;
  unknown: number;
  notAttempted: number;
}

/** See {@link ResultCounts}. */
export function countResults(results: readonly WriteResult[]): ResultCounts {
  const n = (o: WriteResult['outcome']) => results.filter((r) => r.outcome === o).length;
  return {
    requeued: n('requeued'),
    skipped: n('skipped'),
    failed: n('failed'),
    unknown: n('unknown'),
    notAttempted: n('not-attempted'),
  };
}

/** The counts, then every job that was not requeued and why. */
export function resultLines(results: readonly WriteResult[], verbose: boolean): string[] {
  const c = countResults(results);
  const head = [
    `${c.requeued} requeued`,
    c.skipped ? `${c.skipped} skipped` : '',
    c.failed ? `${c.failed} failed to write` : '',
    c.unknown ? `${c.unknown} outcome unknown` : '',
    c.notAttempted ? `${c.notAttempted} not attempted` : '',
  ].filter(Boolean);
  const lines = [head.join(', ')];
  const others = results.filter((r) => r.outcome !== 'requeued');
  const shown = verbose ? others : others.slice(0, SHOWN_JOBS);
  for (const r of shown) lines.push(`  ${r.jobId}: ${r.outcome}${r.detail ? ` — ${r.detail}` : ''}`);
  if (shown.length < others.length) lines.push(`  … and ${others.length - shown.length} more (in --json)`);
  return lines;
}

/** The receipt: picked up, done, failed again, still queued, and the new error of each that failed again. */
export function receiptLines(r: WatchReceipt, label = 'verify'): string[] {
  if (r.ended === 'not-watched') return [`${label}: not watched (--verify SECONDS to watch the worker pick them up)`];
  const c = r.counts;
  const ended =
    r.ended === 'settled'
      ? `all settled after ${r.watchedSeconds} s`
      : r.ended === 'timeout'
        ? `watched ${r.seconds} s`
        : r.ended === 'aborted'
          ? `interrupted after ${r.watchedSeconds} s`
          : `stopped after ${r.watchedSeconds} s: ${r.message ?? 'read failed'}`;
  const lines = [
    `${label}: ${ended} — of ${r.total}: ${c.pickedUp} picked up, ${c.done} done, ${c.failedAgain} failed again, ${c.running} still running, ${c.stillQueued} still queued${c.gone ? `, ${c.gone} gone` : ''}`,
  ];
  const failed = r.jobs.filter((j) => j.state === 'failed-again');
  for (const j of failed.slice(0, 10)) lines.push(`  ${j.id} failed again: ${j.signature}`);
  if (failed.length > 10) lines.push(`  … and ${failed.length - 10} more failed again (in --json)`);
  return lines;
}

/** The canary stage in a few lines. */
export function canaryLines(ids: readonly string[], verdict: CanaryVerdict, receipt: WatchReceipt): string[] {
  return [
    `canary: ${plural(ids.length, 'job')} first — ${verdict.line}`,
    ...receiptLines(receipt, '  canary watch').map((l) => `  ${l.trim()}`),
  ];
}

/** The plan as the JSON carries it: every planned write (guard, before, after) and every exclusion. */
export function planJson(plan: RequeuePlan) {
  return {
    runId: plan.runId,
    opId: plan.opId,
    plannedAt: plan.plannedAt,
    project: plan.project,
    selection: plan.selection,
    limit: plan.limit,
    more: plan.more ?? null,
    by: plan.by,
    reason: plan.reason,
    resetAttempts: plan.resetAttempts,
    historyEntry: {
      at: '(when written)',
      by: plan.by,
      reason: plan.reason,
      from_status: "(the job's)",
      from_error: "(the job's)",
      from_attempts: "(the job's)",
      started_at: "(the job's)",
      finished_at: "(the job's)",
      run_id: plan.runId,
      op_id: plan.opId,
    },
    groups: groupWrites(plan.writes).map(({ jobIds, ...g }) => ({ ...g, jobIds })),
    writes: plan.writes,
    excluded: plan.excluded,
  };
}
