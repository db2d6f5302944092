/**
 * Failure patterns over job errors and the worker log, as data. The built-in ones live in catalog/; users add their
 * own in a JSON file (HD_RUNBOOKS_PATTERNS_FILE or --patterns) without touching lib/. {@link matchPattern} is the one
 * place that decides which pattern a failed job belongs to.
 */
import type { Severity } from '../core/finding.ts';
import type { Job } from '../core/job.ts';
import { DEFAULT_FIELDS, type ErrorPattern, PATTERN_FIELDS, type PatternField } from './catalog/pattern.ts';
import { SERIALISATION_PATTERNS } from './catalog/serialisation.ts';
import { WORKER_PATTERNS } from './catalog/worker.ts';

export type { ErrorPattern, PatternField } from './catalog/pattern.ts';

/**
 * Tried in this order; a failed job goes to the first that claims it. Scoped patterns come before the generic ones
 * they refine (circular-metadata before unstorable-structure), and specific wordings before broad ones.
 */
export const BUILTIN_ERROR_PATTERNS: readonly ErrorPattern[] = [...SERIALISATION_PATTERNS, ...WORKER_PATTERNS];

/** The part of a job a pattern can read. */
export type MatchableJob = Pick<Job, 'job_type' | 'error' | 'debug'>;

/** Whether the pattern applies to jobs of this type (no `jobType`: every type). */
export function inScope(pattern: ErrorPattern, jobType: string): boolean {
  if (pattern.jobType === undefined) return true;
  return typeof pattern.jobType === 'string' ? pattern.jobType === jobType : pattern.jobType.includes(jobType);
}

/** The text a pattern reads of a job: the fields it names, joined by newlines. */
export function patternText(pattern: ErrorPattern, job: MatchableJob, logLines: readonly string[]): string {
  const parts: string[] = [];
  for (const field of pattern.fields ?? DEFAULT_FIELDS) {
    if (field === 'error' && job.error) parts.push(job.error);
    if (field === 'debug' && job.debug) parts.push(JSON.stringify(job.debug));
    if (field === 'log') parts.push(...logLines);
  }
  return parts.join('\n');
}

/** Whether the pattern claims a text: one of its `error` regexes matches and none of its `unless` does. */
export function claimsText(pattern: ErrorPattern, text: string): boolean {
  return pattern.error.some((re) => re.test(text)) && !(pattern.unless ?? []).some((re) => re.test(text));
}

/**
 * The pattern a failed job belongs to: the first of `patterns` whose scope holds the job's type and which claims the
 * fields it reads (`logLines`: the job's own lines in the worker log, its traceback). undefined: no pattern knows it,
 * an unknown failure. Requeue-safety is the returned pattern's `requeueSafe`, nothing else.
 */
export function matchPattern(
  patterns: readonly ErrorPattern[],
  job: MatchableJob,
  logLines: readonly string[],
): ErrorPattern | undefined {
  return patterns.find((p) => inScope(p, job.job_type) && claimsText(p, patternText(p, job, logLines)));
}

/** The lines of a log tail that are evidence of the pattern on their own (its `log` regexes, not its `unless`). */
export function logLinesMatching(pattern: ErrorPattern, tail: readonly string[]): string[] {
  const unless = pattern.unless ?? [];
  return tail.filter((l) => pattern.log.some((re) => re.test(l)) && !unless.some((re) => re.test(l)));
}

const ID = /^[a-z0-9][a-z0-9-]{1,63}$/;
const SEVERITIES: readonly Severity[] = ['info', 'warning', 'critical'];

/** What is wrong with one field of a user's pattern. */
class Problem {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}
type Compiled<T> = T | Problem;

/** `match.<field>`: a string or a list of strings, each a case-insensitive regex. */
function regexes(match: Record<string, unknown>, field: 'error' | 'log' | 'unless'): Compiled<RegExp[]> {
  const v = match[field];
  const arr = v === undefined ? [] : Array.isArray(v) ? v : [v];
  const res: RegExp[] = [];
  for (const s of arr) {
    if (typeof s !== 'string' || s.length === 0 || s.length > 500)
      return new Problem(`match.${field} entries must be non-empty strings`);
    try {
      res.push(new RegExp(s, 'i'));
    } catch (e) {
      return new Problem(`match.${field} "${s}" is not a valid regular expression (${(e as Error).message})`);
    }
  }
  return res;
}

/** `match.jobType`: a job type or a non-empty list of them. */
function jobTypes(v: unknown): Compiled<string | string[] | undefined> {
  if (v === undefined || typeof v === 'string') return v;
  if (Array.isArray(v) && v.length > 0 && v.every((t) => typeof t === 'string' && t.length > 0)) return v as string[];
  return new Problem('match.jobType must be a string or a list of strings');
}

/** `match.fields`: which of the job's fields `match.error` reads. */
function fields(v: unknown): Compiled<PatternField[] | undefined> {
  if (v === undefined) return undefined;
  if (Array.isArray(v) && v.length > 0 && v.every((f) => PATTERN_FIELDS.includes(f as PatternField)))
    return v as PatternField[];
  return new Problem(`match.fields must be a list of ${PATTERN_FIELDS.join(', ')}`);
}

/** One pattern of a user's file; a string names what is wrong with it. */
function compileOne(p: Record<string, unknown>): ErrorPattern | string {
  if (typeof p.id !== 'string' || !ID.test(p.id)) return '"id" must be lowercase letters, digits and dashes';
  for (const field of ['title', 'cause', 'fix'] as const) {
    if (typeof p[field] !== 'string' || !(p[field] as string).trim()) return `"${field}" must be a non-empty string`;
  }
  const severity = (p.severity ?? 'warning') as Severity;
  if (!SEVERITIES.includes(severity)) return '"severity" must be info, warning or critical';
  const match = (p.match ?? {}) as Record<string, unknown>;
  const error = regexes(match, 'error');
  if (error instanceof Problem) return error.message;
  const log = regexes(match, 'log');
  if (log instanceof Problem) return log.message;
  if (error.length === 0 && log.length === 0) return 'needs match.error or match.log';
  const unless = regexes(match, 'unless');
  if (unless instanceof Problem) return unless.message;
  const jobType = jobTypes(match.jobType);
  if (jobType instanceof Problem) return jobType.message;
  const read = fields(match.fields);
  if (read instanceof Problem) return read.message;
  return {
    id: p.id,
    title: p.title as string,
    severity,
    cause: p.cause as string,
    fix: p.fix as string,
    requeueSafe: p.requeueSafe === true,
    error,
    log,
    ...(jobType !== undefined ? { jobType } : {}),
    ...(read !== undefined ? { fields: read } : {}),
    ...(unless.length ? { unless } : {}),
  };
}

/** Validates and compiles a user's pattern file; errors name the file, the pattern and the field. */
export function compilePatternFile(
  text: string,
  file: string,
): { ok: true; patterns: ErrorPattern[] } | { ok: false; error: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `${file} is not valid JSON (${(e as Error).message})` };
  }
  const list = Array.isArray(json) ? json : (json as { patterns?: unknown })?.patterns;
  if (!Array.isArray(list)) return { ok: false, error: `${file} must hold { "patterns": [ ... ] }` };
  const out: ErrorPattern[] = [];
  for (const [i, raw] of list.entries()) {
    const p = raw as Record<string, unknown>;
    const where = `${file}: pattern ${i + 1}${typeof p?.id === 'string' ? ` (${p.id})` : ''}`;
    if (typeof p !== 'object' || p === null) return { ok: false, error: `${where} is not an object` };
    const compiled = compileOne(p);
    if (typeof compiled === 'string') return { ok: false, error: `${where}: ${compiled}` };
    out.push(compiled);
  }
  return { ok: true, patterns: out };
}
