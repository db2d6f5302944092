/**
 * The watch view for people (lines for the output port, which makes them inert and redacted) and for scripts (the
 * `--json` document, fields listed in README "watch"), and the line a watch ends with. Pure.
 */
import { ageText, type TypeCounts, type WatchView } from './view.ts';

/** The JSON document's version: bumped when a field changes meaning or goes. */
export const WATCH_JSON_VERSION = 1;

function byType(label: string, t: TypeCounts): string | undefined {
  const entries = Object.entries(t.counts);
  if (!entries.length) return undefined;
  const shown = entries.slice(0, 6).map(([type, n]) => `${type} ${n}`);
  if (entries.length > 6) shown.push(`${entries.length - 6} more types`);
  const of = t.complete ? '' : ` (among the ${t.sampled} ${label === 'failed' ? 'latest' : 'oldest'} of ${t.total})`;
  return `  ${label}: ${shown.join(', ')}${of}`;
}

function byTypeLines(v: WatchView): string[] {
  const lines = [
    byType('queued', v.byJobType.queued),
    byType('running', v.byJobType.running),
    byType('failed', v.byJobType.failed),
  ].filter((l): l is string => l !== undefined);
  return lines.length ? ['by job_type:', ...lines] : ['by job_type: nothing queued, running or failed'];
}

function etaLine(v: WatchView): string {
  if (v.eta.state === 'empty') return 'ETA: nothing queued';
  if (v.eta.state === 'not-draining')
    return `ETA: not draining (${v.backlog} queued/pending, nothing done in the last ${v.windowMinutes} min)`;
  return `ETA: ${ageText((v.eta.minutes ?? 0) * 60)} to drain ${v.backlog} at ${v.perMinute.done} done/min`;
}

/** The block of one refresh, below its title line. */
export function viewLines(v: WatchView): string[] {
  const c = v.counts;
  const tiq = v.timeInQueue;
  const oldest = v.oldestQueued;
  return [
    `queued ${c.queued} · pending ${c.pending} · running ${c.running} · failed ${c.failed} · done ${c.done}`,
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
  const done = Math.max(0, s.last.counts.done - s.first.counts.done);
  const failed = Math.max(0, s.last.counts.failed - s.first.counts.failed);
  const refreshes = `${s.refreshes} refresh${s.refreshes === 1 ? '' : 'es'}`;
  return `watched ${ageText(s.seconds)} (${refreshes}): backlog ${a} → ${b}, ${trend}; ${done} done, ${failed} failed meanwhile`;
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
