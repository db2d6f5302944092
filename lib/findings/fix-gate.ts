/**
 * The fix gate: whether the fix for failed jobs is live, judged from the worker's start time on Spark against the
 * jobs' failure times. debug-stuck-jobs shows it with its recommendation; requeue shows it in the preview and, with
 * --yes, lets it decide (lib/flows/requeue.ts).
 */

import { clip } from '../core/text.ts';
import type { Evidence } from '../evidence/evidence.ts';
import { topLevelProcesses, type WorkerProcessInfo } from '../evidence/spark-probe.ts';
import type { Job } from '../io/jobs-db.ts';

/**
 * The fix gate: a requeue only helps once the fix is deployed. When the worker process started before the jobs
 * failed, the fix (a code or config change needs a restart) is probably not live yet.
 */
export function fixGate(
  ev: Evidence,
  jobs: readonly Pick<Job, 'finished_at'>[],
): { deployed: boolean | undefined; line: string } {
  const probe = ev.spark?.ok ? ev.spark.probe : undefined;
  const failedAt = jobs
    .map((j) => (j.finished_at ? Date.parse(j.finished_at) : Number.NaN))
    .filter((t) => !Number.isNaN(t));
  if (!probe?.processes.length || !failedAt.length) {
    return {
      deployed: undefined,
      line: 'cannot tell whether the fix is deployed (no worker process or failure time seen)',
    };
  }
  const workers = topLevelProcesses(probe.processes);
  if (workers.length > 1) {
    return {
      deployed: undefined,
      line: `cannot tell whether the fix is deployed: ${workers.length} programs run in the worker folder (${workers.map(describeProcess).join('; ')}), and which one is the worker is not known`,
    };
  }
  const started = Math.min(...probe.processes.map((p) => p.startedAt.getTime()));
  const lastFailure = Math.max(...failedAt);
  if (started < lastFailure) {
    return {
      deployed: false,
      line: `the worker started ${new Date(started).toISOString()}, before the last failure (${new Date(lastFailure).toISOString()}): the fix is probably not deployed yet`,
    };
  }
  return {
    deployed: true,
    line: `the worker restarted ${new Date(started).toISOString()}, after the last failure (${new Date(lastFailure).toISOString()})`,
  };
}

/** `pid 4242 (sparkuser: python -m hd_worker)`, the command cut short. */
export function describeProcess(p: WorkerProcessInfo): string {
  return `pid ${p.pid} (${p.user ? `${p.user}: ` : ''}${clip(p.args, 60)})`;
}

/**
 * The gate for a requeue: `fixGate`, unless it was skipped (`--skip-fix-gate REASON`) or Spark is not configured;
 * `unreachable` says why it could not judge when Spark was configured and did not answer (then a run without a
 * confirmation must not write).
 */
export function requeueGate(
  ev: Evidence,
  jobs: readonly Pick<Job, 'finished_at'>[],
  skip: string | undefined,
): { deployed: boolean | undefined; line: string; unreachable?: string } {
  if (skip !== undefined) return { deployed: undefined, line: `skipped (--skip-fix-gate: ${skip})` };
  if (!ev.spark) return { deployed: undefined, line: 'not checked (Spark not probed: SPARK_HOST unset)' };
  if (!ev.spark.ok) {
    return {
      deployed: undefined,
      line: `cannot tell whether the fix is deployed: Spark did not answer (${ev.spark.failure.message})`,
      unreachable: ev.spark.failure.message,
    };
  }
  return fixGate(ev, jobs);
}
