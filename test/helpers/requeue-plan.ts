/**
 * A requeue planned and audited in memory, as the unit tests of the applier need it: the plan of the given jobs (by
 * id, as an operator's --id list), an audit log over in-memory files, and the project they are written to.
 */
import { openAuditLog } from '../../lib/actions/requeue/audit.ts';
import { buildPlan, type RequeuePlan } from '../../lib/actions/requeue/plan.ts';
import { DEFAULT_RULES } from '../../lib/core/stuck-rules.ts';
import type { Files } from '../../lib/io/context.ts';
import type { Job } from '../../lib/io/jobs-db.ts';

export const NOW = new Date('2026-03-10T12:00:00Z');
export const AUDIT = '/state/requeue-audit.jsonl';
export const PROJECT = {
  origin: 'http://memory.local',
  host: 'memory.local',
  ref: 'mem',
  credentials: 'test',
  key: 'k',
  privileged: true,
};

/** Files held in a map (`data`), for the audit log. */
export function memFiles(): Files & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    read: (f) => data.get(f),
    write: (f, t) => void data.set(f, t),
    append: (f, t) => void data.set(f, (data.get(f) ?? '') + t),
  };
}

/** The plan of requeueing `jobs` (run run-1, op op-1, by alice) and its audit log in `files`. */
export function plannedRequeue(jobs: Job[], files: Files, redact: (text: string) => string) {
  const plan: RequeuePlan = buildPlan({
    selection: { kind: 'ids', ids: jobs.map((j) => j.id) },
    read: { jobs, missingIds: [], scanCut: false, requests: 1 },
    rules: DEFAULT_RULES,
    now: NOW,
    includeDone: false,
    resetAttempts: false,
    by: 'alice@example.com',
    reason: 'fix deployed',
    runId: 'run-1',
    opId: 'op-1',
    project: PROJECT,
    selectionText: 'ids',
    limit: 500,
  });
  const audit = openAuditLog(files, redact, AUDIT, {
    run_id: plan.runId,
    op_id: plan.opId,
    by: plan.by,
    reason: plan.reason,
    project: { origin: PROJECT.origin, ref: PROJECT.ref },
  });
  return { plan, audit };
}
