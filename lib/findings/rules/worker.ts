/**
 * The worker on Spark: its process and its log. diagnose-env reports these too (a ✖ on the worker process is a
 * finding there, never "healthy"). At most one of them holds: the first state that applies.
 */

import { clip } from '../../core/text.ts';
import { LOG_QUIET_MINUTES } from '../../core/thresholds.ts';
import { type Evidence, formatAge, minutesBetween } from '../../evidence/evidence.ts';
import { type SparkEvidence, topLevelProcesses } from '../../evidence/spark-probe.ts';
import { describeProcess } from '../fix-gate.ts';
import type { FindingRule } from '../rule.ts';

type WorkerState = 'down' | 'ambiguous' | 'running' | 'log-missing';

/** What the probe says of the worker, in the order the states are told apart. */
function workerState(probe: SparkEvidence): WorkerState | undefined {
  const processSeen = !probe.missingSections.includes('process');
  if (processSeen && probe.workerDir.exists && probe.processes.length === 0) return 'down';
  if (topLevelProcesses(probe.processes).length > 1) return 'ambiguous';
  if (probe.processes.length && probe.log.status === 'ok') return 'running';
  if (probe.workerDir.exists && probe.log.status === 'missing' && !probe.missingSections.includes('logstat')) {
    return 'log-missing';
  }
  return undefined;
}

/** The probe, when the worker is in `state`. */
function inState(ev: Evidence, state: WorkerState): SparkEvidence | undefined {
  const probe = ev.spark?.ok ? ev.spark.probe : undefined;
  return probe && workerState(probe) === state ? probe : undefined;
}

/** How long the worker's log has been quiet, when that is longer than it may be. */
function quietTooLong(ev: Evidence, probe: SparkEvidence): number | undefined {
  if (probe.log.status !== 'ok') return undefined;
  const quiet = minutesBetween(ev.now, probe.log.modifiedAt) ?? 0;
  return quiet > Math.max(LOG_QUIET_MINUTES, ev.rules.queuedMinutes) ? quiet : undefined;
}

function downEvidence(ev: Evidence, probe: SparkEvidence): string[] {
  const ignored = probe.ignoredProcesses ?? [];
  const notCounted = ignored.length
    ? ` (shells and tools there not counted: ${ignored.map((p) => `${p.comm} pid ${p.pid}`).join(', ')})`
    : '';
  const tail = probe.log.tail;
  return [
    `no process works in ${probe.workerDir.path} or names it${notCounted}`,
    probe.log.status === 'ok'
      ? `logs/worker.log last written ${formatAge(minutesBetween(ev.now, probe.log.modifiedAt))} ago`
      : 'logs/worker.log does not exist',
    ...(tail.length ? [`last log line: ${clip(tail[tail.length - 1], 200)}`] : []),
  ];
}

export const WORKER_RULES: readonly FindingRule[] = [
  {
    id: 'worker-down',
    severity: 'critical',
    scope: 'env',
    rootCauseRank: 8,
    detect: ({ ev, prior }) => {
      // A crash loop caught between two restarts has no process either: it is said once, as the loop.
      if (prior.some((f) => f.id === 'worker-crash-loop')) return [];
      const probe = inState(ev, 'down');
      if (!probe) return [];
      return [
        {
          title: 'the worker is not running on Spark',
          evidence: downEvidence(ev, probe),
          cause: 'the worker crashed or was stopped, or Spark rebooted without starting it',
          fix: `start the worker on Spark the way it is deployed (in ${probe.workerDir.path}), then watch logs/worker.log for polls`,
          requeueSafe: false,
        },
      ];
    },
  },
  {
    id: 'worker-ambiguous',
    severity: 'warning',
    scope: 'env',
    detect: ({ ev }) => {
      const probe = inState(ev, 'ambiguous');
      if (!probe) return [];
      const workers = topLevelProcesses(probe.processes);
      return [
        {
          title: `${workers.length} programs run in the worker folder: which one is the worker is not known`,
          evidence: workers.map((p) => `${describeProcess(p)}, started ${p.startedAt.toISOString()}`),
          cause:
            'besides the worker, something else runs in its folder as its user (a second worker, a script or a server someone started there)',
          fix: `check each on Spark (ps -fp PID); stop what is not the worker, so that exactly one worker polls the queue (in ${probe.workerDir.path})`,
        },
      ];
    },
  },
  {
    id: 'worker-log-stale',
    severity: 'warning',
    scope: 'env',
    detect: ({ ev }) => {
      const probe = inState(ev, 'running');
      const quiet = probe && quietTooLong(ev, probe);
      if (!probe || quiet === undefined) return [];
      return [
        {
          title: `the worker runs but has not written its log for ${formatAge(quiet)}`,
          evidence: [
            `pid ${probe.processes.map((p) => p.pid).join(', ')}, started ${probe.processes[0].startedAt.toISOString()}`,
          ],
          cause: 'the worker hangs (a stuck request, a deadlock) or logs elsewhere',
          fix: 'inspect it on Spark (`py-spy dump --pid PID` for Python, or its own status page) and restart it',
        },
      ];
    },
  },
  {
    id: 'worker-log-missing',
    severity: 'warning',
    scope: 'env',
    detect: ({ ev }) => {
      const probe = inState(ev, 'log-missing');
      if (!probe) return [];
      return [
        {
          title: 'the worker has no logs/worker.log',
          evidence: [`${probe.workerDir.path}/logs/worker.log does not exist`],
          cause: 'the worker logs elsewhere, or has never started in this folder',
          fix: 'make the worker log to logs/worker.log so runbooks (and people) can see what it does',
        },
      ];
    },
  },
];
