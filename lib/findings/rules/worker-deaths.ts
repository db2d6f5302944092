/**
 * Deaths that leave no message: told by timing, not text (worker-log.ts reads the times and the kinds of lines).
 * - worker-killed-mid-job: a job's last lines say it began, none says it ended, and the worker started again after
 *   them (a start line, or a process that started later than they were written); the queue still has the job
 *   running, or failed without an error. The OOM killer's SIGKILL and a plain `kill` leave nothing in the log.
 * - worker-crash-loop: many starts in a short window (or, in a log without times, runs that did no work), none of
 *   the runs between them stopped on request, and a young worker process (or none right now).
 */

import { clip } from '../../core/text.ts';
import {
  CRASH_LOOP_MIN_STARTS,
  CRASH_LOOP_WINDOW_MINUTES,
  CRASH_LOOP_YOUNG_MINUTES,
  PROCESS_START_SLACK_MS,
} from '../../core/thresholds.ts';
import { type Evidence, formatAge, minutesBetween } from '../../evidence/evidence.ts';
import { type SparkEvidence, topLevelProcesses, type WorkerProcessInfo } from '../../evidence/spark-probe.ts';
import type { Draft, FindingRule } from '../rule.ts';
import {
  finishedWell,
  isWorkerStart,
  jobEvent,
  type LogLine,
  pidOf,
  readLogLines,
  stoppedOnRequest,
} from './worker-log.ts';

function probeOf(ev: Evidence): SparkEvidence | undefined {
  return ev.spark?.ok ? ev.spark.probe : undefined;
}

/** The log's tail as lines, when the probe read it. */
function logLines(probe: SparkEvidence): LogLine[] | undefined {
  if (probe.log.status !== 'ok' || probe.missingSections.includes('logtail')) return undefined;
  return readLogLines(probe.log.tail, probe.log.modifiedAt);
}

const quote = (l: LogLine) => `"${clip(l.shown, 200)}"`;
const when = (l: LogLine) => (l.at ? ` at ${l.at.toISOString()}` : '');

/** A job the worker began and never ended, with what ended the process that ran it. */
interface Killed {
  jobId: string;
  begin: LogLine;
  /** The next start of the worker after the job's last line, if the log shows one. */
  restart?: LogLine;
  /** The process that is the worker now started after the job's last line (on Spark's clock). */
  startedAfter?: WorkerProcessInfo;
  /** The worker was asked to stop (and said so, naming the signal when it did) before the restart, with no error. */
  stopped?: { signal?: string };
  /** The last line the dead process wrote. */
  lastWords: LogLine;
  /** The dead process's pid, when its start line named it. */
  pid?: number;
}

/** Each job's last `begin` line, for the jobs with no `end` line after it. */
function unfinished(lines: readonly LogLine[]): Map<string, LogLine> {
  const open = new Map<string, LogLine>();
  for (const l of lines) {
    const e = jobEvent(l);
    if (e?.kind === 'begin') open.set(e.jobId, l);
    else if (e?.kind === 'end') open.delete(e.jobId);
  }
  return open;
}

function killedJobs(lines: readonly LogLine[], probe: SparkEvidence): Killed[] {
  const starts = lines.filter(isWorkerStart);
  const top = topLevelProcesses(probe.processes);
  // Two programs in the folder: which one wrote which line is not known, so a start time says nothing.
  const worker = top.length === 1 ? top[0] : undefined;
  const out: Killed[] = [];
  for (const [jobId, begin] of unfinished(lines)) {
    const restart = starts.find((s) => s.index > begin.index);
    const before = (l: LogLine) =>
      l.at && worker && l.at.getTime() < worker.startedAt.getTime() - PROCESS_START_SLACK_MS;
    // The job's last line (its begin, or a progress line after it) was written before the worker process started.
    const lastOfJob = lines.findLast((l) => l.index >= begin.index && jobEvent(l)?.jobId === jobId) ?? begin;
    const startedAfter = before(lastOfJob) ? worker : undefined;
    if (!restart && !startedAfter) continue;
    // The dead process's lines: up to the restart, or (no start line) those written before the process started.
    const end = restart?.index ?? lines.find((l) => l.index > begin.index && l.at && !before(l))?.index ?? lines.length;
    const run = lines.slice(begin.index + 1, end);
    const ownStart = starts.findLast((s) => s.index < begin.index);
    out.push({
      jobId,
      begin,
      restart,
      startedAfter,
      stopped: stoppedOnRequest(run),
      lastWords: run.at(-1) ?? begin,
      pid: ownStart ? pidOf(ownStart) : undefined,
    });
  }
  return out;
}

/** Where the queue has the job: still running, failed with no error, or settled (done, failed with an error, requeued). */
function queueState(ev: Evidence, jobId: string): string | null {
  const q = ev.queue;
  if (!q) return 'the queue was not read: whether it still runs there is not known';
  const same = (id: string) => id.toLowerCase() === jobId;
  const running = q.running.jobs.find((j) => same(j.id));
  if (running)
    return `still running in the queue (started ${formatAge(minutesBetween(ev.now, running.started_at))} ago)`;
  const failed = q.failed.recent.find((j) => same(j.id));
  if (failed && !failed.error?.trim()) return 'failed in the queue with no error';
  // Settled (done, failed with an error the patterns judge, queued again), or not in what was read: nothing to say.
  return null;
}

function killedEvidence(k: Killed, state: string): string[] {
  const restarted = k.restart
    ? `the worker started again after it: ${quote(k.restart)}`
    : `the worker process (pid ${k.startedAfter?.pid}) started at ${k.startedAfter?.startedAt.toISOString()}, after the job's last line`;
  return [
    `job ${k.jobId} began${when(k.begin)}: ${quote(k.begin)}; no line says it ended; ${state}`,
    restarted,
    `the last line the process wrote before: ${quote(k.lastWords)}`,
  ];
}

function requeueCommand(ids: readonly string[]): string {
  return `npx zx runbooks/requeue.mts ${ids.map((id) => `--id ${id}`).join(' ')} --reason "killed mid-job"`;
}

function killedDrafts(ev: Evidence): Draft[] {
  const probe = probeOf(ev);
  const lines = probe && logLines(probe);
  if (!probe || !lines) return [];
  const found = killedJobs(lines, probe).flatMap((k) => {
    const state = queueState(ev, k.jobId);
    return state ? [{ k, state }] : [];
  });
  const silent = found.filter((f) => !f.k.stopped);
  const stopped = found.filter((f) => f.k.stopped);
  const drafts: Draft[] = [];
  if (silent.length) {
    const ids = silent.map((f) => f.k.jobId);
    const pids = silent.flatMap((f) => (f.k.pid ? [f.k.pid] : []));
    const since = silent.map((f) => f.k.begin.at).find((t) => t);
    drafts.push({
      title: `${ids.length === 1 ? 'a job' : `${ids.length} jobs`} died with the worker: it ended mid-job and was started again`,
      evidence: silent.flatMap((f) => killedEvidence(f.k, f.state)),
      cause:
        "the process ended without finishing or failing the job: killed without a word in its log (the kernel OOM killer's SIGKILL when Spark runs out of memory, `kill -9`, a restart that did not wait for the job), or a crash outside the job's own error handling (its last line is shown); the job stays claimed",
      fix: `on Spark, look for the OOM killer: \`journalctl -k${since ? ` --since "${since.toISOString().slice(0, 19).replace('T', ' ')} UTC"` : ''} | grep -iE "out of memory|killed process${pids.length ? ` (${pids.join('|')})` : ''}"\` (or \`dmesg -T\`). If it was the OOM killer, the job needs more memory than the worker had: lower its batch size or concurrency before requeueing (\`--canary 1\`); if it was a restart, requeue: \`${requeueCommand(ids)}\` (a running job once it is stale by STUCK_RUNNING_MINUTES)`,
      jobIds: ids,
      requeueSafe: false,
    });
  }
  if (stopped.length) {
    const ids = stopped.map((f) => f.k.jobId);
    const signal = stopped.map((f) => f.k.stopped?.signal).find((x) => x);
    drafts.push({
      title: `${ids.length === 1 ? 'a job was' : `${ids.length} jobs were`} cut short when the worker stopped${signal ? ` (${signal})` : ''} and never finished`,
      evidence: stopped.flatMap((f) => killedEvidence(f.k, f.state)),
      cause:
        'the worker was stopped (a restart or a deploy) while it ran the job, and exited before finishing or releasing it; the job stays claimed',
      fix: `requeue it: \`${requeueCommand(ids)}\` (a running job once it is stale by STUCK_RUNNING_MINUTES); make the worker finish or release its job on SIGTERM (and give it the time: systemd's TimeoutStopSec)`,
      jobIds: ids,
      requeueSafe: true,
    });
  }
  return drafts;
}

/** The starts of the current loop: the latest start, and the ones before it whose runs died (see the header). */
function loopStarts(lines: readonly LogLine[]): LogLine[] {
  const starts = lines.filter(isWorkerStart);
  const last = starts.at(-1);
  if (!last) return [];
  const loop = [last];
  for (let i = starts.length - 2; i >= 0; i--) {
    const run = lines.slice(starts[i].index + 1, starts[i + 1].index);
    if (stoppedOnRequest(run)) break; // asked to stop: a restart, not a death
    const { at } = starts[i];
    if (at && last.at) {
      if (at.getTime() < last.at.getTime() - CRASH_LOOP_WINDOW_MINUTES * 60_000) break;
    } else if (run.some(finishedWell)) break; // no times: a run that finished a job was not a crash
    loop.unshift(starts[i]);
  }
  return loop;
}

/** Whether the loop goes on: the worker process is young, or none runs and the latest start is recent. */
function stillLooping(ev: Evidence, probe: SparkEvidence, last: LogLine): { line: string } | undefined {
  const top = topLevelProcesses(probe.processes);
  if (top.length) {
    const youngest = top.reduce((a, b) => (a.elapsedSeconds <= b.elapsedSeconds ? a : b));
    if (youngest.elapsedSeconds >= CRASH_LOOP_YOUNG_MINUTES * 60) return undefined;
    return { line: `the worker process (pid ${youngest.pid}) is ${formatAge(youngest.elapsedSeconds / 60)} old` };
  }
  if (probe.missingSections.includes('process')) return undefined;
  const sparkNow = probe.sparkNow ?? ev.now;
  const lastAt = last.at ?? (probe.log.status === 'ok' ? probe.log.modifiedAt : undefined);
  const since = minutesBetween(sparkNow, lastAt);
  if (since === undefined || since > CRASH_LOOP_WINDOW_MINUTES) return undefined;
  return { line: `no worker process runs right now; the last start was ${formatAge(since)} ago` };
}

function crashLoopDrafts(ev: Evidence): Draft[] {
  const probe = probeOf(ev);
  const lines = probe && logLines(probe);
  if (!probe || !lines) return [];
  const loop = loopStarts(lines);
  const last = loop.at(-1);
  if (!last || loop.length < CRASH_LOOP_MIN_STARTS) return [];
  const now = stillLooping(ev, probe, last);
  if (!now) return [];
  const first = loop[0];
  const timed = first.at && last.at;
  const span = timed ? (last.at!.getTime() - first.at!.getTime()) / 60_000 : undefined;
  // What each dead run wrote last before the next start: the reason it died, when it said one.
  const lastWords = loop.slice(1).flatMap((s) => {
    const before = lines[s.index - 1];
    return before && before.index > loop[0].index && !isWorkerStart(before) ? [quote(before)] : [];
  });
  return [
    {
      title: `the worker is in a crash loop: ${loop.length} starts${timed ? ` in ${formatAge(span)}` : ''}, ${now.line.replace(/^the worker process \(pid \d+\) is /, 'the process is ')}`,
      evidence: [
        timed
          ? `${loop.length} worker starts in the log from ${first.at!.toISOString()} to ${last.at!.toISOString()}`
          : `${loop.length} worker starts at the end of the log (it has no times), and no run between them finished a job or stopped on its own`,
        `latest: ${quote(last)}`,
        now.line,
        ...[...new Set(lastWords)].slice(0, 3).map((w) => `before a restart the worker last wrote: ${w}`),
      ],
      cause:
        'the worker dies soon after each start and its supervisor (systemd Restart=, a shell loop, a container restart policy) starts it again: after a deploy, typically an import error, a missing setting or file, or a crash on the first job',
      fix: "read what each run wrote before the next start (logs/worker.log; what went to stderr is in `journalctl -u <the worker's unit>` or the container's log); fix or roll back the deploy, restart once and watch it stay up; requeue nothing until it does",
      requeueSafe: false,
    },
  ];
}

export const DEATH_RULES: readonly FindingRule[] = [
  {
    id: 'worker-crash-loop',
    severity: 'critical',
    scope: 'env',
    // A stalled queue is the loop's doing (before worker-down, which a loop between restarts also looks like).
    rootCauseRank: 7.5,
    detect: ({ ev }) => crashLoopDrafts(ev),
  },
  { id: 'worker-killed-mid-job', severity: 'warning', scope: 'env', detect: ({ ev }) => killedDrafts(ev) },
];
