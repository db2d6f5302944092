/**
 * Failed jobs and the worker log: each failed job goes to the first failure pattern that matches its error or its
 * lines in the log (a finding per pattern, its id and severity the pattern's); the others are grouped by error
 * signature as unknown-failure. Jobs that used all their attempts are named apart.
 */

import type { Finding } from '../../core/finding.ts';
import { isAttemptsExhausted } from '../../core/stuck-rules.ts';
import { clip } from '../../core/text.ts';
import { type Evidence, formatAge, minutesBetween } from '../../evidence/evidence.ts';
import { linesOfJob, readableLines } from '../../evidence/log-layout.ts';
import type { Job } from '../../io/jobs-db.ts';
import { type ErrorPattern, inScope, logLinesMatching, matchPattern } from '../error-patterns.ts';
import { errorSignature } from '../error-signature.ts';
import type { Draft, FindingFamily, FindingRule, RuleContext } from '../rule.ts';

/**
 * The log lines that belong to a job: the records naming it (by a job field or a mention of its id), each with the
 * traceback under it up to the next record start of the log's layout (lib/evidence/log-layout.ts, detected here).
 */
export function logContextFor(jobId: string, tail: readonly string[]): string[] {
  return linesOfJob(jobId, tail);
}

function jobLine(job: Job, now: Date): string {
  const age = formatAge(minutesBetween(now, job.finished_at ?? job.started_at ?? job.created_at));
  return `${job.id} ${job.job_type} ${job.status} attempts=${job.attempts} (${age} ago)`;
}

const errorLine = (j: Job, now: Date) => `${jobLine(j, now)}: ${clip((j.error ?? '').split('\n')[0], 160)}`;

const firstLine = (j: Job) => (j.error ?? '').split('\n')[0].trim();

/**
 * The jobs a pattern claims: one line each. When they all failed with the same error it is said once, with the
 * count, and each job's line names only what differs (and not the job type when they share it).
 */
function hitEvidence(hits: readonly Job[], since: string, now: Date): string[] {
  if (!hits.length) return [];
  const errors = new Set(hits.map(firstLine));
  const types = new Set(hits.map((j) => j.job_type));
  const day = Math.abs(now.getTime() - 86_400_000 - Date.parse(since)) < 60_000;
  const count = `${hits.length} failed job${hits.length === 1 ? '' : 's'} ${day ? '(24 h)' : `since ${since}`}`;
  if (errors.size !== 1) return [count, ...hits.slice(0, 5).map((j) => errorLine(j, now))];
  const line = (j: Job) => (types.size === 1 ? jobLine(j, now).replace(` ${j.job_type} `, ' ') : jobLine(j, now));
  return [`${count}: ${clip([...errors][0], 160)}`, ...hits.slice(0, 5).map(line)];
}

function logTail(ev: Evidence): readonly string[] {
  return (ev.spark?.ok ? ev.spark.probe : undefined)?.log.tail ?? [];
}

/**
 * Each pattern that matched: the failed jobs it claims and the log lines it matched. A job goes to the first pattern
 * whose scope holds it and which claims the fields it reads (matchPattern); a log line counts for the first pattern
 * that matches it. Nothing is claimed twice.
 */
function matchPatterns(ev: Evidence, patterns: readonly ErrorPattern[]) {
  const failed = ev.queue?.failed.recent ?? [];
  const tail = logTail(ev);
  const hitsOf = new Map<ErrorPattern, Job[]>();
  for (const j of failed) {
    const p = matchPattern(patterns, j, logContextFor(j.id, tail));
    if (!p) continue;
    hitsOf.set(p, [...(hitsOf.get(p) ?? []), j]);
  }
  // The log read as records (JSON tracebacks expanded, colours and CRs gone), and which failed jobs' lines each is.
  const lines = readableLines(tail);
  const typesOf = new Map<string, Set<string>>();
  for (const j of failed)
    for (const l of logContextFor(j.id, tail)) typesOf.set(l, (typesOf.get(l) ?? new Set()).add(j.job_type));
  // A line that is only other job types' lines is no evidence for a pattern scoped away from them.
  const outOfScope = (p: ErrorPattern, l: string) => {
    const types = typesOf.get(l);
    return types !== undefined && ![...types].some((t) => inScope(p, t));
  };
  const seenLines = new Set<number>();
  const matches: { pattern: ErrorPattern; hits: Job[]; logHits: string[] }[] = [];
  for (const p of patterns) {
    const hits = hitsOf.get(p) ?? [];
    const matching = new Set(logLinesMatching(p, lines).filter((l) => !outOfScope(p, l)));
    // The lines this pattern matched that no pattern before it took (most patterns match none: no pass at all).
    const logHits: string[] = [];
    if (matching.size)
      for (const [i, l] of lines.entries()) {
        if (!matching.has(l)) continue;
        if (!seenLines.has(i)) logHits.push(l);
        seenLines.add(i);
      }
    if (!hits.length && !logHits.length) continue;
    matches.push({ pattern: p, hits, logHits });
  }
  return { matches };
}

function patternFindings({ ev, patterns }: RuleContext): Finding[] {
  const queue = ev.queue;
  if (!queue) return [];
  return matchPatterns(ev, patterns).matches.map(({ pattern: p, hits, logHits }): Finding => {
    // Seen only in the log (no failed job in the window): history, or a failure that never reached the table.
    // Worth knowing, not worth waking anyone for.
    const logOnly = hits.length === 0;
    return {
      id: p.id,
      severity: logOnly ? 'info' : p.severity,
      title: logOnly ? `${p.title} (seen in the worker log only)` : p.title,
      evidence: [
        ...hitEvidence(hits, queue.failed.since, ev.now),
        ...(logHits.length && !hits.some((j) => firstLine(j) && logHits.at(-1)!.includes(firstLine(j)))
          ? [`log: ${clip(logHits[logHits.length - 1], 200)}`]
          : []),
      ],
      cause: p.cause,
      fix: p.fix,
      jobIds: hits.map((j) => j.id),
      requeueSafe: p.requeueSafe,
    };
  });
}

/** The failure patterns: a family of findings whose ids and severities are the patterns' own. */
export const PATTERN_FAMILY: FindingFamily = { family: 'failure-pattern', scope: 'all', detect: patternFindings };

function unknownFailures({ ev, patterns, prior }: RuleContext): Draft[] {
  const failed = ev.queue?.failed.recent ?? [];
  // The pattern family runs first (table.ts): the jobs its findings name are the claimed ones, not matched twice.
  const ids = new Set(patterns.map((p) => p.id));
  const claimed = new Set(prior.filter((f) => ids.has(f.id)).flatMap((f) => f.jobIds ?? []));
  const tail = logTail(ev);
  const bySignature = new Map<string, Job[]>();
  for (const j of failed) {
    if (claimed.has(j.id)) continue;
    const sig = `${j.job_type}: ${errorSignature(j.error)}`;
    bySignature.set(sig, [...(bySignature.get(sig) ?? []), j]);
  }
  return [...bySignature.entries()]
    .sort((a, b) => b[1].length - a[1].length)
    .map(([sig, jobs]) => ({
      title: `${jobs.length} job${jobs.length === 1 ? '' : 's'} failed with an error no pattern knows: ${sig}`,
      evidence: [
        ...jobs.slice(0, 3).map((j) => errorLine(j, ev.now)),
        ...jobs
          .slice(0, 1)
          .flatMap((j) => logContextFor(j.id, tail).slice(0, 4))
          .map((l) => `log: ${clip(l, 200)}`),
      ],
      cause: 'not in the failure-pattern catalog',
      fix: 'read the error and the log lines above; once understood, add a pattern to your patterns file (see README) so the next on-call sees the fix',
      jobIds: jobs.map((j) => j.id),
      requeueSafe: false,
    }));
}

export const FAILURE_RULES: readonly FindingRule[] = [
  {
    id: 'attempts-exhausted',
    severity: 'warning',
    scope: 'all',
    detect: ({ ev }) => {
      const exhausted = ev.queue?.failed.recent.filter((j) => isAttemptsExhausted(j, ev.rules)) ?? [];
      if (!exhausted.length) return [];
      return [
        {
          title: `${exhausted.length} failed job${exhausted.length === 1 ? ' has' : 's have'} used all attempts`,
          evidence: exhausted.slice(0, 5).map((j) => jobLine(j, ev.now)),
          cause: `the worker gives up after ${ev.rules.maxAttempts} attempts; these will not be retried by themselves`,
          fix: 'fix the cause first (see the other findings), then requeue with --reset-attempts',
          jobIds: exhausted.map((j) => j.id),
          requeueSafe: false,
        },
      ];
    },
  },
  { id: 'unknown-failure', severity: 'warning', scope: 'all', detect: unknownFailures },
];
