/**
 * The watch view for people (lines for the output port, which makes them inert and redacted) and for scripts (the
 * `--json` document, fields listed in README "watch"), and the line a watch ends with. Pure.
 */
import type { JobStatus } from '../../core/job.ts';
import { countText } from '../../core/text.ts';
import { ageText, type TypeCounts, type WatchView } from './view.ts';

const isEstimate = (v: WatchView, ...statuses: JobStatus[]) => statuses.some((st) => v.estimated?.includes(st));
/** A count of the view, "about N" when it is the planner's estimate. */
const shown = (v: WatchView, n: number, ...statuses: JobStatus[]) => countText(n, isEstimate(v, ...statuses));

/** The JSON document's version: bumped when a field changes meaning or goes. */
export const WATCH_JSON_VERSION = 1;

function byType(label: string, t: TypeCounts, total: string): string | undefined {
  const entries = Object.entries(t.counts);
  if (!entries.length) return undefined;
  const shown = entries.slice(0, 6).map(([type, n]) => `${type} ${n}`);
  if (entries.length > 6) shown.push(`${entries.length - 6} more types`);
  const of = t.complete ? '' : ` (among the ${t.sampled} ${label === 'failed' ? 'latest' : 'oldest'} of ${total})`;
  return `  ${label}: ${shown.join(', ')}${of}`;
}

function byTypeLines(v: WatchView): string[] {
  const lines = [
    byType('queued', v.byJobType.queued, shown(v, v.byJobType.queued.total, 'queued', 'pending')),
    byType('running', v.byJobType.running, shown(v, v.byJobType.running.total, 'running')),
    byType('failed', v.byJobType.failed, shown(v, v.byJobType.failed.total, 'failed')),
  ].filter((l): l is string => l !== undefined);
  return lines.length ? ['by job_type:', ...lines] : ['by job_type: nothing queued, running or failed'];
}

function etaLine(v: WatchView): string {
  if (v.eta.state === 'empty') return 'ETA: nothing queued';
  if (v.eta.state === 'not-draining')
    return `ETA: not draining (${shown(v, v.backlog, 'queued', 'pending')} queued/pending, nothing done in the last ${v.windowMinutes} min)`;
  const eta = `${isEstimate(v, 'queued', 'pending') ? 'about ' : ''}${ageText((v.eta.minutes ?? 0) * 60)}`;
  return `ETA: ${eta} to drain ${shown(v, v.backlog, 'queued', 'pending')} at ${v.perMinute.done} done/min`;
}

/** The block of one refresh, below its title line. */
export function viewLines(v: WatchView): string[] {
  const c = v.counts;
  const tiq = v.timeInQueue;
  const oldest = v.oldestQueued;
  return [
    `queued ${shown(v, c.queued, 'queued')} · pending ${shown(v, c.pending, 'pending')} · running ${shown(v, c.running, 'running')} · failed ${shown(v, c.failed, 'failed')} · done ${shown(v, c.done, 'done')}`,
    ...(v.overRule.running ? [`running over the rule: ${v.overRule.running}`] : []),
    ...byTypeLines(v),
    `last ${v.windowMinutes} min: ${v.window.done} done (${v.perMinute.done}/min) · ${v.window.failed} failed (${v.perMinute.failed}/min)`,
    tiq.samples
      ? `time in queue: p50 ${ageText(tiq.p50Seconds ?? 0)} · p95 ${ageText(tiq.p95Seconds ?? 0)} (${tiq.samples} jobs started in the last ${v.windowMinutes} min)`
      : `time in queue: no job started in the last ${v.windowMinutes} min`,
    oldest
      ? `oldest queued: ${ageText(oldest.ageSeconds)} (${oldest.jobType})${oldest.overRule ? ` ← over the rule (${v.overRule.queued} listed over it)` : ''}`
      : 'oldest queued: none',
    etaLine(v),
    `worker: ${v.worker.line}`,
    ...(v.stalled ? ['STALLED: queued jobs over the rule and nothing done in the window'] : []),
  ];
}

/** What a whole watch saw, from its first and last refresh. */
export interface WatchSummary {
  seconds: number;
  refreshes: number;
  first: WatchView;
  last: WatchView;
}

/** "watched 2 min: backlog 40 → 0, drained; 40 done, 0 failed". */
export function summaryLine(s: WatchSummary): string {
  const a = s.first.backlog;
  const b = s.last.backlog;
  const trend =
    b === 0
      ? a > 0
        ? 'drained'
        : 'empty'
      : b < a
        ? 'draining'
        : b > a
          ? 'growing'
          : s.last.eta.state === 'draining'
            ? 'steady'
            : 'not draining';
  // Two planner estimates a few minutes apart say nothing about what finished between them.
  const delta = (st: 'done' | 'failed') =>
    isEstimate(s.first, st) || isEstimate(s.last, st)
      ? 'an uncounted number of'
      : String(Math.max(0, s.last.counts[st] - s.first.counts[st]));
  const done = delta('done');
  const failed = delta('failed');
  const refreshes = `${s.refreshes} refresh${s.refreshes === 1 ? '' : 'es'}`;
  return `watched ${ageText(s.seconds)} (${refreshes}): backlog ${shown(s.first, a, 'queued', 'pending')} → ${shown(s.last, b, 'queued', 'pending')}, ${trend}; ${done} done, ${failed} failed meanwhile`;
}

/** The `--json` document: the last refresh, plus the watch's summary when it ran longer than once. */
export function watchDocument(
  v: WatchView,
  meta: {
    target: { supabase?: string; projectRef?: string; spark?: string };
    exitCode: number;
    summary?: WatchSummary;
  },
): Record<string, unknown> {
  return {
    runbook: 'watch',
    version: WATCH_JSON_VERSION,
    generatedAt: v.at,
    target: meta.target,
    exitCode: meta.exitCode,
    stalled: v.stalled,
    counts: v.counts,
    // The statuses whose count is the planner's estimate (PostgREST count=estimated, above the API's max-rows).
    estimatedCounts: v.estimated ?? [],
    backlog: v.backlog,
    byJobType: v.byJobType,
    window: { minutes: v.windowMinutes, ...v.window },
    perMinute: v.perMinute,
    timeInQueue: v.timeInQueue,
    oldestQueued: v.oldestQueued,
    overRule: v.overRule,
    eta: v.eta,
    worker: v.worker,
    ...(meta.summary
      ? {
          summary: {
            seconds: Math.round(meta.summary.seconds),
            refreshes: meta.summary.refreshes,
            backlog: { first: meta.summary.first.backlog, last: meta.summary.last.backlog },
            line: summaryLine(meta.summary),
          },
        }
      : {}),
  };
}
