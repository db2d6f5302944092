/**
 * debug-stuck-jobs: the guided incident flow. Preflight and evidence in one parallel round (queue, Spark, app),
 * findings from the catalog, each with its fix; where a requeue is safe, offer it behind the fix gate.
 */

import { EXIT, type ExitCode } from '../core/exit-codes.ts';
import { atLeastWarning, type Finding } from '../core/finding.ts';
import { describeRules, isOverdueQueued, isStaleRunning } from '../core/stuck-rules.ts';
import { clip, countText } from '../core/text.ts';
import { type Evidence, formatAge, minutesBetween } from '../evidence/evidence.ts';
import { appStep, closeSession, configStep, queueStep, sparkStep } from '../evidence/gather.ts';
import { describeLayout, layoutOf } from '../evidence/log-layout.ts';
import { diagnose, logContextFor } from '../findings/diagnosis.ts';
import { errorSignature } from '../findings/error-signature.ts';
import { storyLines } from '../findings/log-story.ts';
import { stuckRulesFrom } from '../io/config.ts';
import type { Ports } from '../io/context.ts';
import type { Job } from '../io/jobs-db.ts';
import type { Report } from '../io/report.ts';
import { type CheckResult, type Plan, runPlan } from '../io/steps.ts';
import { nextSteps, type RequeueOffer, requeueOffers } from './next-steps.ts';
import { type ExecuteOptions, requeueJobs } from './requeue.ts';
import type { RunState } from './run.ts';
import { type CommonFlags, exitCodeFor, finishRun, showFindings, startRun } from './run.ts';
import { watchQueue, watchSettings } from './watch.ts';

export { DEBUG_STUCK_JOBS_HELP, DEBUG_STUCK_JOBS_OPTIONS } from './usage.ts';

export interface DebugFlags extends CommonFlags {
  'queued-minutes'?: string;
  'running-minutes'?: string;
  'max-attempts'?: string;
  'job-type-rule'?: string[];
  /** After the diagnosis, the live queue view (lib/flows/watch.ts) on the same connections, until Ctrl-C. */
  watch?: boolean;
}

/** What the runbook passes in: its gather steps, Ctrl-C, and (for tests) options for the hand-over's requeue. */
export interface DebugRunOptions {
  /** The evidence steps, in order (inner arrays run at once); default DEBUG_GATHER. */
  gather?: Plan<RunState>;
  /** Ctrl-C: what was gathered is still shown and reported, but nothing more is asked or offered. */
  signal?: AbortSignal;
  /** Called as --watch's live view starts: Ctrl-C then ends it normally (the runbook entry's stopEndsNormally). */
  watchStarts?: () => void;
  /** Overrides for the requeue a hand-over runs (e.g. a shorter verify in tests). */
  requeue?: Partial<ExecuteOptions>;
}

/** Check the config; then read the queue, look at Spark and read the app's env, at once. */
export const DEBUG_GATHER: Plan<RunState> = [configStep, [queueStep, sparkStep, appStep]];

function showQueue(ports: Ports, ev: Evidence): void {
  const { out } = ports;
  const q = ev.queue;
  if (!q) return;
  out.heading('Queue');
  out.line(`rules: ${describeRules(ev.rules)}`);
  out.line(
    `queued/pending ${countText(q.queued.count, q.queued.estimated)} · running ${countText(q.running.count, q.running.estimated)} · failed (24 h) ${countText(q.failed.count, q.failed.estimated)} · done ${countText(q.done.count, q.done.estimated)}${q.done.latest?.finished_at ? ` (last ${formatAge(minutesBetween(ev.now, q.done.latest.finished_at))} ago)` : ''}`,
  );
  const oldest = q.queued.oldest.slice(0, 5);
  if (oldest.length) {
    out.line('oldest queued:');
    for (const j of oldest) {
      const flag = isOverdueQueued(j, ev.rules, ev.now) ? '  ← over the rule' : '';
      out.line(`  ${j.id}  ${j.job_type}  ${formatAge(minutesBetween(ev.now, j.created_at))}${flag}`);
    }
  }
  if (q.running.jobs.length) {
    out.line('running:');
    for (const j of q.running.jobs.slice(0, 5)) {
      const flag = isStaleRunning(j, ev.rules, ev.now) ? '  ← stale' : '';
      out.line(`  ${j.id}  ${j.job_type}  started ${formatAge(minutesBetween(ev.now, j.started_at))} ago${flag}`);
    }
  }
  if (q.failed.recent.length) {
    const groups = new Map<string, number>();
    for (const j of q.failed.recent) {
      const k = `${j.job_type} · ${errorSignature(j.error)}`;
      groups.set(k, (groups.get(k) ?? 0) + 1);
    }
    out.line(
      `recent failures by job_type and error${q.failed.count > q.failed.recent.length ? ` (latest ${q.failed.recent.length} of ${countText(q.failed.count, q.failed.estimated)})` : ''}:`,
    );
    for (const [k, n] of [...groups.entries()].sort((a, b) => b[1] - a[1]))
      out.line(`  ${String(n).padStart(4)} × ${k}`);
  }
}

/** The jobs worth linking to the log: over the rule, stale, or recently failed. */
function stuckJobs(ev: Evidence): Job[] {
  const q = ev.queue;
  if (!q) return [];
  return [
    ...q.queued.oldest.filter((j) => isOverdueQueued(j, ev.rules, ev.now)),
    ...q.running.jobs.filter((j) => isStaleRunning(j, ev.rules, ev.now)),
    ...q.failed.recent,
  ];
}

/** Each stuck job's lines in the worker log (its own lines and the traceback that follows), for the report. */
function logLinks(ev: Evidence): Record<string, string[]> {
  const probe = ev.spark?.ok ? ev.spark.probe : undefined;
  const links: Record<string, string[]> = {};
  if (probe?.log.status !== 'ok') return links;
  for (const j of stuckJobs(ev)) {
    const lines = logContextFor(j.id, probe.log.tail);
    if (lines.length) links[j.id] = lines.slice(0, MAX_LINES_PER_JOB);
  }
  return links;
}

const MAX_LINES_PER_JOB = 40;

/**
 * The worker log, cut to the lines behind the findings: for the first jobs a finding names, the failure line, the
 * frame of the worker's own code that raised and the exception line. --verbose shows the log's last lines and every
 * line of every stuck job.
 */
function showLogLines(ports: Ports, ev: Evidence, findings: readonly Finding[], links: Record<string, string[]>): void {
  const probe = ev.spark?.ok ? ev.spark.probe : undefined;
  if (probe?.log.status !== 'ok') return;
  const { out } = ports;
  const read = `${probe.log.tail.length} lines of the last ${Math.round(Math.min(probe.log.size, 65_536) / 1024)} KB read (log is ${Math.round(probe.log.size / 1024)} KB)`;
  const claimed = [...new Set(findings.filter(atLeastWarning).flatMap((f) => f.jobIds ?? []))].filter(
    (id) => links[id],
  );
  if (!out.verbose) {
    if (!claimed.length) return;
    // The finding already shows the job's error: here the frame of the worker's own code that raised, and the
    // exception the traceback ends on.
    const [id] = claimed;
    const story = storyLines(links[id]).slice(1);
    if (!story.length) return;
    out.heading(`Worker log, job ${id} (all lines: --verbose)`);
    // Paths inside the worker's folder are shown from it: the folder is named in the Spark step above.
    const dir = probe.workerDir.path.replace(/\/$/, '');
    for (const l of story) out.line(`  ${clip(l.replaceAll(`${dir}/`, '…/'), 200)}`);
    return;
  }
  out.heading('Worker log');
  out.line(read);
  out.line(`layout: ${describeLayout(layoutOf(probe.log.tail))}`);
  for (const l of probe.log.tail.slice(-5)) out.line(`  ${clip(l, 200)}`);
  const ids = Object.keys(links);
  if (ids.length) {
    out.line('lines naming stuck jobs:');
    for (const id of ids.slice(0, 10)) {
      out.line(`  ${id}:`);
      for (const l of links[id]) out.line(`    ${clip(l, 200)}`);
    }
  }
}

/** The numbered "Next steps" block. */
function showNextSteps(
  state: RunState,
  findings: readonly Finding[],
  offers: readonly RequeueOffer[],
  flags: CommonFlags,
): void {
  const { ports, evidence } = state;
  const restartCmd = state.config.values.WORKER_RESTART_CMD;
  const lines = nextSteps(evidence, findings, offers, { flags, restartCmd, runbook: 'debug-stuck-jobs' });
  if (!lines.length) return;
  // Whether the fix is live decides whether to requeue now: the gate's verdict comes first, then the steps.
  ports.out.heading('Next steps');
  for (const { finding: f, gate } of offers) ports.out.line(`fix gate [${f.id}]: ${gate.line}`);
  for (const l of lines) ports.out.line(l);
}

/** Offers the requeue where it is safe, behind the fix gate; only interactive runs are asked. */
async function offerRequeue(
  state: RunState,
  offers: readonly RequeueOffer[],
  options: DebugRunOptions,
): Promise<{ actions: Report['actions']; aborted: boolean; code?: ExitCode }> {
  const { ports } = state;
  const actions: Report['actions'] = [];
  // Without a terminal, "Next steps" (which holds each requeue's command) is the offer.
  if (!offers.length || !ports.prompt.interactive) return { actions, aborted: false };
  let code: ExitCode | undefined;
  // Right under "Next steps" (which holds each requeue's command and, above it, the fix gate's verdict).
  for (const { finding: f, gate, command } of offers) {
    const go = await ports.prompt.confirm(
      `requeue-${f.id}`,
      `Hand the ${f.jobIds!.length} job(s) of ${f.id} over to requeue (preview first)?`,
      false,
    );
    if (!go) {
      ports.out.line(`  not requeued. Later: ${command}`);
      continue;
    }
    // The reason kept in each job's history says which finding, and what the gate saw of the fix.
    const reason = clip(`${f.id} fixed (fix gate: ${gate.line})`, 480);
    const request = { ids: f.jobIds!, reason, findingId: f.id };
    const result = await requeueJobs(ports, state, request, { ...options.requeue, signal: options.signal });
    actions.push({ title: result.title, lines: result.lines });
    if (result.code === EXIT.aborted) return { actions, aborted: true };
    if (result.code !== EXIT.ok) code = result.code;
  }
  return { actions, aborted: false, code };
}

/**
 * After a hand-over: the queue read again, the findings judged again. Those gone are listed as resolved; what is
 * left (if anything) is shown, and decides the end line and the exit code.
 */
async function judgeAgain(
  state: RunState,
  before: readonly Finding[],
  checks: CheckResult[],
): Promise<{ findings: Finding[]; resolved: Finding[] }> {
  const { ports, evidence } = state;
  evidence.now = ports.clock.now();
  ports.out.heading('After the requeue');
  checks.push(...(await runPlan(state, [queueStep], ports.out)));
  const findings = diagnose(evidence, state.patterns, 'all');
  // Resolved: at warning or above before, gone or below warning now (old tracebacks in the log stay as info).
  const resolved = before.filter((f) => atLeastWarning(f) && !findings.some((g) => g.id === f.id && atLeastWarning(g)));
  for (const f of resolved) ports.out.line(`resolved: ${f.title} [${f.id}]`);
  if (!findings.some(atLeastWarning)) ports.out.line('nothing is left at warning level or above');
  if (findings.length) showFindings(ports, findings);
  return { findings, resolved };
}

export async function runDebugStuckJobs(
  ports: Ports,
  flags: DebugFlags,
  options: DebugRunOptions = {},
): Promise<ExitCode> {
  const { signal } = options;
  const state = startRun(ports, flags, (values) =>
    stuckRulesFrom(values, {
      queuedMinutes: flags['queued-minutes'],
      runningMinutes: flags['running-minutes'],
      maxAttempts: flags['max-attempts'],
      jobTypeRules: flags['job-type-rule'],
    }),
  );
  const { evidence } = state;
  const ref = evidence.laptop.url?.projectRef ?? evidence.laptop.declaredRef;
  ports.out.heading(
    `debug-stuck-jobs · ${evidence.laptop.url?.origin}${ref ? ` (project ${ref})` : ''} · ${evidence.now.toISOString()}${ports.prompt.interactive ? '' : ' · read-only'}`,
  );
  try {
    const checks = await runPlan(state, options.gather ?? DEBUG_GATHER, ports.out);
    showQueue(ports, evidence);
    const links = logLinks(evidence);
    const findings = diagnose(evidence, state.patterns, 'all');
    showFindings(ports, findings);
    showLogLines(ports, evidence, findings, links);
    const offers = requeueOffers(evidence, findings, flags);
    if (!signal?.aborted) showNextSteps(state, findings, offers, flags);
    const couldNotRun = exitCodeFor(findings) === EXIT.couldNotRun;
    const offer =
      couldNotRun || signal?.aborted
        ? { actions: [], aborted: Boolean(signal?.aborted) }
        : await offerRequeue(state, offers, options);
    // The end line describes the world after the action: when a hand-over wrote, read the queue again and judge again.
    const after = offer.actions.length && !offer.aborted ? await judgeAgain(state, findings, checks) : undefined;
    if (after) showNextSteps(state, after.findings, requeueOffers(evidence, after.findings, flags), flags);
    const q = evidence.queue;
    const extra = {
      rules: evidence.rules,
      queue: q
        ? {
            queued: q.queued.count,
            running: q.running.count,
            failedLast24h: q.failed.count,
            done: q.done.count,
            // The counts that are the planner's estimate (PostgREST count=estimated, above the API's max-rows).
            estimatedCounts: (['queued', 'running', 'failed', 'done'] as const)
              .filter((k) => q[k].estimated)
              .map((k) => (k === 'failed' ? 'failedLast24h' : k)),
            oldestQueued: q.queued.oldest[0]?.created_at ?? null,
          }
        : null,
      logLinks: links,
      // How the worker's log was read (which layout, colours, CRLF): which lines are a job's depends on it.
      logLayout:
        evidence.spark?.ok && evidence.spark.probe.log.status === 'ok' ? layoutOf(evidence.spark.probe.log.tail) : null,
      ...(after ? { resolved: after.resolved.map((f) => f.id) } : {}),
    };
    const code = finishRun(
      state,
      'debug-stuck-jobs',
      flags,
      after?.findings ?? findings,
      checks,
      offer.actions,
      extra,
      // A hand-over that could not write (exit 2) outranks the findings' exit 1; an abort is an abort.
      offer.aborted ? EXIT.aborted : 'code' in offer && offer.code === EXIT.couldNotRun ? EXIT.couldNotRun : undefined,
    );
    // --watch: instead of exiting, the watch view on this run's connections until Ctrl-C; the report is written.
    if (flags.watch && !signal?.aborted) {
      // Leaving the live view with Ctrl-C is how it ends: the diagnosis's exit code stands.
      options.watchStarts?.();
      await watchQueue(state, flags, watchSettings({}), { stop: signal, reports: false });
    }
    return code;
  } finally {
    await closeSession(state);
  }
}
