/**
 * The queue in Supabase: queued jobs that wait too long, jobs that have run too long. Queued jobs that wait because
 * of a root cause (the worker is down, polls another project, …) are that finding's evidence (rank.ts: blameStall),
 * not a finding of their own.
 */

import { isOverdueQueued, isStaleRunning } from '../../core/stuck-rules.ts';
import { countText } from '../../core/text.ts';
import { type Evidence, formatAge, minutesBetween } from '../../evidence/evidence.ts';
import type { Draft, FindingRule, RuleContext } from '../rule.ts';

/** When the worker last did something the table shows: started a job, or finished one. */
function lastActivity(ev: Evidence): Date | undefined {
  const q = ev.queue;
  if (!q) return undefined;
  const times = [
    q.done.latest?.finished_at,
    ...q.running.jobs.map((j) => j.started_at),
    ...q.failed.recent.map((j) => j.finished_at),
  ]
    .filter((t): t is string => Boolean(t))
    .map((t) => Date.parse(t));
  return times.length ? new Date(Math.max(...times)) : undefined;
}

/** Queued jobs over the rule: their ids, the two lines that describe the wait, and whether nothing moves. */
export interface Stall {
  jobIds: string[];
  lines: [wait: string, activity: string];
  idle: boolean;
}

export function stallOf(ev: Evidence): Stall | undefined {
  const { queue, now, rules } = ev;
  const overdue = queue?.queued.oldest.filter((j) => isOverdueQueued(j, rules, now)) ?? [];
  if (!queue || !overdue.length) return undefined;
  const activity = lastActivity(ev);
  const sinceActivity = activity ? minutesBetween(now, activity) : undefined;
  const { count, estimated, oldest } = queue.queued;
  const more = overdue.length === oldest.length && count > overdue.length ? '+' : '';
  return {
    jobIds: overdue.map((j) => j.id),
    lines: [
      `${countText(count, estimated)} queued/pending job${count === 1 ? '' : 's'}; ${overdue.length}${more} waiting longer than the rule, oldest ${formatAge(minutesBetween(now, overdue[0].created_at))}`,
      activity
        ? `last worker activity in the table ${formatAge(sinceActivity)} ago`
        : 'no worker activity in the table (no job started or finished recently)',
    ],
    idle: sinceActivity === undefined || sinceActivity > rules.queuedMinutes,
  };
}

/** The stall, when no root cause explains it and it is idle (or busy, `idle: false`). */
function unexplained({ ev, rootCause }: RuleContext, idle: boolean): Stall | undefined {
  const stall = rootCause ? undefined : stallOf(ev);
  return stall?.idle === idle ? stall : undefined;
}

function staleRunning(ev: Evidence): Draft[] {
  const { queue, now, rules } = ev;
  const stale = queue?.running.jobs.filter((j) => isStaleRunning(j, rules, now)) ?? [];
  if (!stale.length) return [];
  const probe = ev.spark?.ok ? ev.spark.probe : undefined;
  const tail = probe?.log.tail ?? [];
  const inLog = stale.filter((j) => tail.some((l) => l.includes(j.id)));
  return [
    {
      title: `${stale.length} job${stale.length === 1 ? ' has' : 's have'} been running longer than ${rules.runningMinutes} min`,
      evidence: [
        ...stale
          .slice(0, 5)
          .map(
            (j) =>
              `${j.id} ${j.job_type} started ${formatAge(minutesBetween(now, j.started_at))} ago, attempts=${j.attempts}`,
          ),
        ...(stale.length > 5 ? [`… and ${stale.length - 5} more`] : []),
        ...(probe
          ? [inLog.length ? `${inLog.length} named in the log tail` : 'none of them is named in the log tail']
          : []),
      ],
      cause: 'the worker died or was restarted while processing them, and nothing resets a claimed job',
      fix: 'check that no worker still processes them (log, process list), then requeue them by id with --include-running (the recommendation below gives the command)',
      jobIds: stale.map((j) => j.id),
      requeueSafe: true,
    },
  ];
}

export const QUEUE_RULES: readonly FindingRule[] = [
  {
    id: 'queue-stalled',
    severity: 'critical',
    scope: 'all',
    detect: (ctx) => {
      const stall = unexplained(ctx, true);
      if (!stall) return [];
      const probe = ctx.ev.spark?.ok ? ctx.ev.spark.probe : undefined;
      return [
        {
          title: 'queued jobs are not being picked up',
          evidence: [
            ...stall.lines,
            ...(probe?.processes.length ? [`worker runs (pid ${probe.processes[0].pid})`] : []),
          ],
          cause:
            'the worker is alive but does not claim jobs: it polls another project, filters on another status, or is wedged',
          fix: "read the worker log's last polls (what URL, what count) and compare with the queue shown here",
          jobIds: stall.jobIds,
        },
      ];
    },
  },
  {
    id: 'queue-backlog',
    severity: 'info',
    scope: 'all',
    detect: (ctx) => {
      const stall = unexplained(ctx, false);
      if (!stall) return [];
      return [
        {
          title: 'the worker is busy; queued jobs wait longer than the rule',
          evidence: [...stall.lines],
          cause: 'more work than one worker drains in time',
          fix: 'nothing is broken; add capacity if this persists',
          jobIds: stall.jobIds,
        },
      ];
    },
  },
  {
    id: 'stale-running',
    severity: 'warning',
    scope: 'all',
    detect: ({ ev }) => staleRunning(ev),
  },
];
