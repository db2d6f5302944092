/**
 * The requeue plan: for each selected job, either a planned write (the guard it is conditioned on, the state before,
 * the state after, the history entry) or the reason it is left alone. Pure: the preview prints this object and the
 * apply executes the same object.
 */
import { createHash } from 'node:crypto';
import { isStaleRunning, type StuckRules } from '../../core/stuck-rules.ts';
import { errorSignature } from '../../findings/error-signature.ts';
import type { Job, JobGuard, JobStatus } from '../../io/jobs-db.ts';
import { type JobState, jobState, lastRequeue, requeuedState } from './history.ts';
import type { Selection, SelectionRead } from './select.ts';

/** The Supabase project a requeue writes to, as the target guard names it. Never holds a key. */
export interface ProjectTarget {
  origin: string;
  host: string;
  ref?: string;
  /** Where the URL and the key came from, e.g. "SUPABASE_URL in /home/me/proj/.env". */
  credentials: string;
  keyVar?: string;
  /** describeKey's line: kind, role, project, masked. */
  key: string;
  /** A service-role or secret key: anything less sees no rows through row-level security, so writes nothing. */
  privileged: boolean;
}

/** One job the apply will requeue, conditioned on what the preview saw. */
export interface PlannedWrite {
  jobId: string;
  jobType: string;
  accountId: string | null;
  createdAt: string;
  /** job_type-independent error signature, for grouping. */
  signature: string;
  /** The write happens only while status, attempts and started_at are still these. */
  guard: JobGuard;
  before: JobState;
  after: JobState;
  /** A running job (stale by the rule): the worker may still hold it, so it needs its own confirmation. */
  running: boolean;
  /** When it was last requeued (by any command or hand-over): it has been taken and failed, or hung, again since. */
  requeuedBefore?: string;
}

/** Why a selected job is left alone. */
export type ExclusionReason =
  | 'not-found'
  | 'already-queued'
  | 'done-needs-include-done'
  | 'running-not-stale'
  | 'running-not-confirmed';

/** A selected job the plan leaves alone, and why. */
export interface Exclusion {
  jobId: string;
  jobType?: string;
  status?: JobStatus;
  reason: ExclusionReason;
  detail: string;
  /** Something asked for that will not happen (an --id not found or not eligible): exit 1, not 0. */
  problem: boolean;
}

/** The planned writes and the exclusions: what the preview prints and the apply executes. */
export interface RequeuePlan {
  /** This invocation; written into every history entry and audit line. */
  runId: string;
  /** The command; a rerun of the same command skips jobs that already carry it. */
  opId: string;
  plannedAt: string;
  project: ProjectTarget;
  selection: string;
  by: string;
  reason: string | null;
  resetAttempts: boolean;
  writes: PlannedWrite[];
  excluded: Exclusion[];
  /** More jobs match than the limit took (total known when the server did all the filtering). */
  more?: { total?: number; estimated?: boolean };
  limit: number;
  scanCut: boolean;
}

/** Everything {@link buildPlan} decides from. */
export interface PlanInput {
  selection: Selection;
  read: SelectionRead;
  rules: StuckRules;
  now: Date;
  includeDone: boolean;
  resetAttempts: boolean;
  by: string;
  reason: string | null;
  runId: string;
  opId: string;
  project: ProjectTarget;
  selectionText: string;
  limit: number;
}

function ago(now: Date, iso: string | null): string {
  if (!iso) return 'never';
  const min = Math.round((now.getTime() - Date.parse(iso)) / 60_000);
  return min < 120 ? `${min} min ago` : `${Math.round(min / 60)} h ago`;
}

/** Decides, job by job, what the requeue will do. */
export function buildPlan(input: PlanInput): RequeuePlan {
  const byId = input.selection.kind === 'ids';
  const writes: PlannedWrite[] = [];
  const excluded: Exclusion[] = input.read.missingIds.map((id) => ({
    jobId: id,
    reason: 'not-found' as const,
    detail: 'no such job in this project',
    problem: true,
  }));
  for (const job of input.read.jobs) {
    const base = { jobId: job.id, jobType: job.job_type, status: job.status };
    const previous = lastRequeue(job.debug);
    if (job.status === 'queued' || job.status === 'pending') {
      excluded.push({
        ...base,
        reason: 'already-queued',
        detail: `already ${job.status}, nothing to do`,
        problem: false,
      });
      continue;
    }
    if (job.status === 'done' && !input.includeDone) {
      excluded.push({
        ...base,
        reason: 'done-needs-include-done',
        detail: 'done; add --include-done to run it again',
        problem: byId,
      });
      continue;
    }
    if (job.status === 'running' && !isStaleRunning(job, input.rules, input.now)) {
      excluded.push({
        ...base,
        reason: 'running-not-stale',
        detail: `running since ${ago(input.now, job.started_at)}, not stale by the rule: the worker may be on it`,
        problem: byId,
      });
      continue;
    }
    // Idempotence follows the job's state, not the command: a job requeued before is queued (left alone above)
    // until the worker takes it; once it has failed again it is a new state, eligible again (after a fix, the same
    // command or a hand-over must be able to retry it), and named as such in the preview.
    const write = plannedWrite(job, input.resetAttempts);
    writes.push(previous ? { ...write, requeuedBefore: previous.at } : write);
  }
  return {
    runId: input.runId,
    opId: input.opId,
    plannedAt: input.now.toISOString(),
    project: input.project,
    selection: input.selectionText,
    by: input.by,
    reason: input.reason,
    resetAttempts: input.resetAttempts,
    writes,
    excluded,
    more: input.read.more,
    limit: input.limit,
    scanCut: input.read.scanCut,
  };
}

/** The write that requeues `job`, guarded on what was just read. */
export function plannedWrite(job: Job, resetAttempts: boolean): PlannedWrite {
  const before = jobState(job);
  return {
    jobId: job.id,
    jobType: job.job_type,
    accountId: job.account_id,
    createdAt: job.created_at,
    signature: errorSignature(job.error),
    guard: { id: job.id, status: job.status, attempts: job.attempts, started_at: job.started_at },
    before,
    after: requeuedState(before, resetAttempts),
    running: job.status === 'running',
  };
}

/** Drops the running writes (not confirmed) from a plan, recording why. */
export function withoutRunning(plan: RequeuePlan, detail: string, problem: boolean): RequeuePlan {
  const dropped = plan.writes.filter((w) => w.running);
  if (!dropped.length) return plan;
  return {
    ...plan,
    writes: plan.writes.filter((w) => !w.running),
    excluded: [
      ...plan.excluded,
      ...dropped.map((w) => ({
        jobId: w.jobId,
        jobType: w.jobType,
        status: w.before.status,
        reason: 'running-not-confirmed' as const,
        detail,
        problem,
      })),
    ],
  };
}

/** Planned writes of one job_type and error signature. */
export interface WriteGroup {
  jobType: string;
  signature: string;
  statuses: JobStatus[];
  count: number;
  jobIds: string[];
}

/** Writes grouped by job_type and error signature, largest group first. */
export function groupWrites(writes: readonly PlannedWrite[]): WriteGroup[] {
  const groups = new Map<string, WriteGroup>();
  for (const w of writes) {
    const key = `${w.jobType}\u0000${w.signature}`;
    const g = groups.get(key) ?? { jobType: w.jobType, signature: w.signature, statuses: [], count: 0, jobIds: [] };
    g.count++;
    g.jobIds.push(w.jobId);
    if (!g.statuses.includes(w.before.status)) g.statuses.push(w.before.status);
    groups.set(key, g);
  }
  return [...groups.values()].sort((a, b) => b.count - a.count || a.jobType.localeCompare(b.jobType));
}

/** What identifies a command for idempotence: what it selects and why, not when or by whom it runs. */
export interface OpIdInput {
  selection: Selection;
  reason: string | null;
  includeDone: boolean;
  resetAttempts: boolean;
}

/**
 * A short stable id of the command. Filters count as typed (`--older-than 2h`, not the instant it meant), so a
 * rerun of the same command line is the same command.
 */
export function opIdFor(input: OpIdInput): string {
  const s = input.selection;
  const canonical =
    s.kind === 'ids'
      ? { ids: [...s.ids].sort() }
      : {
          statuses: [...s.statuses].sort(),
          jobType: s.jobType ?? null,
          accountId: s.accountId ?? null,
          error: s.error?.given ?? null,
          olderThan: s.olderThan?.given ?? null,
          newerThan: s.newerThan?.given ?? null,
        };
  const text = JSON.stringify({
    v: 1,
    selection: canonical,
    reason: input.reason,
    includeDone: input.includeDone,
    resetAttempts: input.resetAttempts,
  });
  return `op-${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
}
