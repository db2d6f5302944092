/**
 * The watch view, as data: one refresh's reads (and the worker's reading) turned into what the screen and the JSON
 * show. Pure: rows in, numbers out; no clock, no I/O. The stuck rules decide "over the rule" and "stalled".
 */
import { JOB_STATUSES, type JobStatus } from '../../core/job.ts';
import { type StuckRules, thresholdsFor } from '../../core/stuck-rules.ts';
import type { WorkerReading } from '../../evidence/watch-worker.ts';
import type { WatchReads } from '../../io/watch-reads.ts';

/** The rate window: done and failed per minute are counted over the last this many minutes. */
export const WINDOW_MINUTES = 5;

/** Counts per job_type of one status group, from a bounded list: complete when the list held every job. */
export interface TypeCounts {
  counts: Record<string, number>;
  /** Jobs the counts are over (the list read). */
  sampled: number;
  /** Jobs of the group in the table. */
  total: number;
  complete: boolean;
}

export type EtaState = 'empty' | 'draining' | 'not-draining';

export interface WorkerView {
  state: 'running' | 'down' | 'ambiguous' | 'unknown' | 'not-configured' | 'not-connected';
  /** One line for people. */
  line: string;
  pid?: number;
  upSince?: string;
  logWrittenAt?: string | null;
}

export interface WatchView {
  at: string;
  windowMinutes: number;
  counts: Record<JobStatus, number>;
  /** The statuses whose count is the planner's estimate (above the API's max-rows), shown as "about N". */
  estimated?: JobStatus[];
  /** queued + pending */
  backlog: number;
  byJobType: { queued: TypeCounts; running: TypeCounts; failed: TypeCounts };
  window: { since: string; done: number; failed: number };
  perMinute: { done: number; failed: number };
  /** started_at − created_at of the jobs started in the window (running or finished since). */
  timeInQueue: { p50Seconds: number | null; p95Seconds: number | null; samples: number };
  oldestQueued: { jobType: string; createdAt: string; ageSeconds: number; overRule: boolean } | null;
  /** Among the listed: queued over their rule, running over theirs. */
  overRule: { queued: number; running: number };
  eta: { state: EtaState; minutes: number | null };
  /** Queued jobs over the rule and nothing done in the window. */
  stalled: boolean;
  worker: WorkerView;
}

/** Nearest-rank percentile of ascending values (p in 0..100); null without values. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (!sorted.length) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

const seconds = (later: number, earlier: number) => Math.max(0, (later - earlier) / 1000);

function typeCounts(rows: ReadonlyArray<{ job_type: string }>, total: number): TypeCounts {
  const counts: Record<string, number> = {};
  for (const r of rows) counts[r.job_type] = (counts[r.job_type] ?? 0) + 1;
  const sorted = Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
  return { counts: sorted, sampled: rows.length, total, complete: rows.length >= total };
}

/** Time in queue of the jobs started at or after `since`: the running ones and those finished since. */
function timeInQueue(reads: WatchReads, since: number): WatchView['timeInQueue'] {
  const started = [...reads.running, ...reads.window.latest]
    .filter((j) => j.started_at !== null && Date.parse(j.started_at) >= since)
    .map((j) => seconds(Date.parse(j.started_at!), Date.parse(j.created_at)))
    .sort((a, b) => a - b);
  const p = (n: number) => {
    const v = percentile(started, n);
    return v === null ? null : round1(v);
  };
  return { p50Seconds: p(50), p95Seconds: p(95), samples: started.length };
}

/** Minutes to drain the backlog at the window's done rate. */
export function eta(backlog: number, donePerMinute: number): WatchView['eta'] {
  if (backlog === 0) return { state: 'empty', minutes: 0 };
  if (donePerMinute <= 0) return { state: 'not-draining', minutes: null };
  return { state: 'draining', minutes: backlog / donePerMinute };
}

const round1 = (n: number) => Math.round(n * 10) / 10;

/** The worker's line: its pid and start, its log; or why it is not known. */
export function workerView(
  reading: WorkerReading | { status: 'not-configured' | 'not-connected'; reason: string },
  now: Date,
): WorkerView {
  if (reading.status !== 'ok') return { state: reading.status, line: reading.reason };
  const log = reading.logWrittenAt
    ? `log written ${ageText(seconds(now.getTime(), reading.logWrittenAt.getTime()))} ago`
    : 'no logs/worker.log';
  const logWrittenAt = reading.logWrittenAt?.toISOString() ?? null;
  if (!reading.dir.exists) return { state: 'down', line: `${reading.dir.path} does not exist on Spark`, logWrittenAt };
  const [p, ...more] = reading.processes;
  if (!p) return { state: 'down', line: `no worker process in ${reading.dir.path}; ${log}`, logWrittenAt };
  if (more.length) {
    const pids = reading.processes.map((q) => q.pid).join(', ');
    return {
      state: 'ambiguous',
      line: `${reading.processes.length} programs in ${reading.dir.path} (pids ${pids}); ${log}`,
      logWrittenAt,
    };
  }
  const upSince = p.startedAt.toISOString();
  const line = `pid ${p.pid}, up ${ageText(p.elapsedSeconds)} (since ${upSince.replace(/\.\d+Z$/, 'Z')}); ${log}`;
  return { state: 'running', line, pid: p.pid, upSince, logWrittenAt };
}

/** "45 s", "12 min", "3 h 5 min", "2 d 4 h". */
export function ageText(s: number): string {
  if (s < 60) return `${Math.round(s)} s`;
  const m = s / 60;
  if (m < 60) return `${Math.round(m)} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${Math.round(m % 60)} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** One refresh: the reads and the worker's reading at `now`, judged by `rules`. */
export function buildView(reads: WatchReads, worker: WorkerView, rules: StuckRules, now: Date): WatchView {
  const t = now.getTime();
  const counts = Object.fromEntries(JOB_STATUSES.map((s) => [s, reads.counts[s] ?? 0])) as Record<JobStatus, number>;
  const backlog = counts.queued + counts.pending;
  const overQueued = (j: { job_type: string; created_at: string }) =>
    seconds(t, Date.parse(j.created_at)) / 60 > thresholdsFor(rules, j.job_type).queuedMinutes;
  const overRunning = (j: { job_type: string; created_at: string; started_at: string | null }) =>
    seconds(t, Date.parse(j.started_at ?? j.created_at)) / 60 > thresholdsFor(rules, j.job_type).runningMinutes;
  const oldest = reads.backlog[0];
  const since = Date.parse(reads.window.since);
  const minutes = Math.max(1 / 60, (t - since) / 60_000);
  const perMinute = { done: round1(reads.window.done / minutes), failed: round1(reads.window.failed / minutes) };
  const overQueuedCount = reads.backlog.filter(overQueued).length;
  return {
    at: now.toISOString(),
    windowMinutes: Math.round(minutes * 10) / 10,
    counts,
    estimated: JOB_STATUSES.filter((st) => reads.estimated?.[st]),
    backlog,
    byJobType: {
      queued: typeCounts(reads.backlog, backlog),
      running: typeCounts(reads.running, counts.running),
      failed: typeCounts(reads.failed, counts.failed),
    },
    window: { since: reads.window.since, done: reads.window.done, failed: reads.window.failed },
    perMinute,
    timeInQueue: timeInQueue(reads, since),
    oldestQueued: oldest
      ? {
          jobType: oldest.job_type,
          createdAt: oldest.created_at,
          ageSeconds: Math.round(seconds(t, Date.parse(oldest.created_at))),
          overRule: overQueued(oldest),
        }
      : null,
    overRule: { queued: overQueuedCount, running: reads.running.filter(overRunning).length },
    eta: eta(backlog, reads.window.done / minutes),
    stalled: overQueuedCount > 0 && reads.window.done === 0,
    worker,
  };
}
