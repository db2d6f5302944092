/**
 * Failure patterns over job errors and the worker log, as data. The built-in ones live here; users add their own
 * in a JSON file (HD_RUNBOOKS_PATTERNS_FILE or --patterns) without touching lib/.
 */
import type { Severity } from '../core/finding.ts';

export interface ErrorPattern {
  id: string;
  title: string;
  severity: Severity;
  cause: string;
  fix: string;
  /** Whether requeueing the matched jobs is safe once the fix is deployed. */
  requeueSafe: boolean;
  /** Any of these in a job's error text, or in the log lines that belong to the job (its traceback). */
  error: RegExp[];
  /** Any of these in the log tail counts as evidence even without a failed job row. */
  log: RegExp[];
  /** Only jobs of this type, when set. */
  jobType?: string;
}

export const BUILTIN_ERROR_PATTERNS: readonly ErrorPattern[] = [
  {
    id: 'circular-metadata',
    title: 'import_assets_jsonl writes a circular structure into metadata',
    severity: 'critical',
    cause:
      'the worker puts a whole parsed object (one that refers to itself, or a whole payload) into metadata.source_line, which cannot be serialised to JSON',
    fix: 'store only a small flat subset as source_line (line number, id, name: no nested objects, no self-references, no whole payloads), deploy the worker, then requeue the failed jobs',
    requeueSafe: true,
    error: [/Circular reference detected/i, /Converting circular structure to JSON/i],
    log: [/Circular reference detected/i, /Converting circular structure to JSON/i],
  },
];

const ID = /^[a-z0-9][a-z0-9-]{1,63}$/;
const SEVERITIES: readonly Severity[] = ['info', 'warning', 'critical'];

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
    if (typeof p.id !== 'string' || !ID.test(p.id)) {
      return { ok: false, error: `${where}: "id" must be lowercase letters, digits and dashes` };
    }
    for (const field of ['title', 'cause', 'fix'] as const) {
      if (typeof p[field] !== 'string' || !(p[field] as string).trim()) {
        return { ok: false, error: `${where}: "${field}" must be a non-empty string` };
      }
    }
    const severity = (p.severity ?? 'warning') as Severity;
    if (!SEVERITIES.includes(severity))
      return { ok: false, error: `${where}: "severity" must be info, warning or critical` };
    const match = (p.match ?? {}) as Record<string, unknown>;
    const regexes = (field: 'error' | 'log'): RegExp[] | string => {
      const v = match[field];
      const arr = v === undefined ? [] : Array.isArray(v) ? v : [v];
      const res: RegExp[] = [];
      for (const s of arr) {
        if (typeof s !== 'string' || s.length === 0 || s.length > 500)
          return `match.${field} entries must be non-empty strings`;
        try {
          res.push(new RegExp(s, 'i'));
        } catch (e) {
          return `match.${field} "${s}" is not a valid regular expression (${(e as Error).message})`;
        }
      }
      return res;
    };
    const error = regexes('error');
    if (typeof error === 'string') return { ok: false, error: `${where}: ${error}` };
    const log = regexes('log');
    if (typeof log === 'string') return { ok: false, error: `${where}: ${log}` };
    if (error.length === 0 && log.length === 0) return { ok: false, error: `${where}: needs match.error or match.log` };
    if (match.jobType !== undefined && typeof match.jobType !== 'string') {
      return { ok: false, error: `${where}: match.jobType must be a string` };
    }
    out.push({
      id: p.id,
      title: p.title as string,
      severity,
      cause: p.cause as string,
      fix: p.fix as string,
      requeueSafe: p.requeueSafe === true,
      error,
      log,
      jobType: match.jobType as string | undefined,
    });
  }
  return { ok: true, patterns: out };
}
