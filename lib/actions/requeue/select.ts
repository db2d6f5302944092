/**
 * Which jobs a requeue is about: the operator's selection flags validated into a {@link Selection} (pure; bad input
 * is a {@link RunbookError}, exit 2, before anything is read or written), and the read that turns a selection into
 * jobs (server-side filters, pages, then the client-side error regex).
 */

import { RunbookError } from '../../core/exit-codes.ts';
import { JOB_STATUSES, type Job, type JobStatus } from '../../core/job.ts';
import type { JobFilter, JobsDb } from '../../io/jobs-db.ts';
import { PAGE_SIZE, readJobsById, scanJobs } from './read.ts';

/** How many jobs a run selects when `--limit` is not given, and the most it may ask for. */
export const DEFAULT_LIMIT = 500;
/** The most `--limit` (and `--id`) may name in one run. */
export const MAX_LIMIT = 100_000;

/** Rows read at most while an error regex filters client-side: bounds a run on a huge table. */
const SCAN_MAX = 50_000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const JOB_TYPE = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Statuses a requeue can act on; queued and pending jobs already wait for the worker. */
export type RequeueableStatus = Extract<JobStatus, 'failed' | 'running' | 'done'>;

/** `--error`: a case-insensitive substring, or `/regex/flags`. */
export interface ErrorMatcher {
  /** As typed. */
  given: string;
  kind: 'substring' | 'regex';
  source: string;
  flags: string;
}

/** `--older-than` / `--newer-than`: as typed, and the instant it means for this run. */
export interface TimeBound {
  given: string;
  at: Date;
}

/** What the operator asked for: named jobs, or a filter. */
export type Selection =
  | { kind: 'ids'; ids: string[] }
  | {
      kind: 'filter';
      statuses: RequeueableStatus[];
      /** queued/pending asked for and dropped: nothing to do for them. */
      ignoredStatuses: JobStatus[];
      jobType?: string;
      accountId?: string;
      error?: ErrorMatcher;
      /** created_at before this */
      olderThan?: TimeBound;
      /** created_at at or after this */
      newerThan?: TimeBound;
    };

function usage(message: string, fix: string): RunbookError {
  return new RunbookError(message, fix);
}

/** Printable and bounded: user input is echoed in errors, never whole. */
function shown(value: string): string {
  return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
}

/** A job or account id as Postgres prints a uuid (any case). */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** `--id`, repeatable; a value may also hold a comma-separated list (pasted from a report). */
export function parseIds(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const value of values) {
    const parts = value.split(',').map((p) => p.trim());
    for (const part of parts) {
      if (part === '') {
        throw usage('--id is empty', 'pass a job id (a UUID), e.g. --id 3fa85f64-5717-4562-b3fc-2c963f66afa6');
      }
      if (!isUuid(part)) {
        throw usage(
          `--id ${shown(part)} is not a job id (a UUID)`,
          'copy the id from the report or the table, e.g. --id 3fa85f64-5717-4562-b3fc-2c963f66afa6',
        );
      }
      const id = part.toLowerCase();
      if (!out.includes(id)) out.push(id);
    }
  }
  if (out.length > MAX_LIMIT) {
    throw usage(`--id names ${out.length} jobs; at most ${MAX_LIMIT} per run`, 'split the ids over several runs');
  }
  return out;
}

/** `--limit`: 1 to {@link MAX_LIMIT}, default {@link DEFAULT_LIMIT}; nothing else (no sign, no exponent). */
export function parseLimit(value: string | undefined): number {
  if (value === undefined) return DEFAULT_LIMIT;
  if (!/^\d{1,7}$/.test(value) || Number(value) < 1 || Number(value) > MAX_LIMIT) {
    throw usage(
      `--limit must be a whole number from 1 to ${MAX_LIMIT} (got ${shown(value)})`,
      `e.g. --limit ${DEFAULT_LIMIT}`,
    );
  }
  return Number(value);
}

/** `--status`, repeatable or comma-separated. Unknown → exit 2; `done` needs `--include-done`. */
export function parseStatuses(
  values: readonly string[] | undefined,
  includeDone: boolean,
): { statuses: RequeueableStatus[]; ignored: JobStatus[] } {
  const given = (values ?? []).flatMap((v) => v.split(',')).map((s) => s.trim().toLowerCase());
  if (given.length === 0) return { statuses: ['failed'], ignored: [] };
  const statuses: RequeueableStatus[] = [];
  const ignored: JobStatus[] = [];
  for (const s of given) {
    if (!(JOB_STATUSES as readonly string[]).includes(s)) {
      throw usage(`--status ${shown(s)} is not a job status`, `use one of ${JOB_STATUSES.join(', ')} (default failed)`);
    }
    const status = s as JobStatus;
    if (status === 'queued' || status === 'pending') {
      if (!ignored.includes(status)) ignored.push(status);
      continue;
    }
    if (status === 'done' && !includeDone) {
      throw usage(
        '--status done needs --include-done: it runs finished work again',
        'add --include-done if that is really what you want',
      );
    }
    if (!statuses.includes(status)) statuses.push(status);
  }
  return { statuses, ignored };
}

/** `--job-type`: an identifier-like name; anything else cannot be a job type and is refused. */
export function parseJobType(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!JOB_TYPE.test(value)) {
    throw usage(
      `--job-type ${shown(value)} is not a job type`,
      'letters, digits and _ . : - only, e.g. --job-type import_assets_jsonl',
    );
  }
  return value;
}

/** `--account`: a UUID. */
export function parseAccount(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!isUuid(value))
    throw usage(`--account ${shown(value)} is not an account id (a UUID)`, 'copy account_id from the job');
  return value.toLowerCase();
}

/** `--error TEXT` (case-insensitive substring) or `--error /regex/flags`. */
export function parseErrorMatcher(value: string | undefined): ErrorMatcher | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === '') throw usage('--error is empty', 'pass a part of the error text, or /a regex/');
  if (value.length > 500) throw usage('--error is longer than 500 characters', 'use a shorter part of the error text');
  const m = /^\/(.*)\/([a-z]*)$/s.exec(value);
  if (!m) return { given: value, kind: 'substring', source: value, flags: '' };
  const [, source, flags] = m;
  if (source === '') throw usage('--error // is an empty regex', 'e.g. --error "/Circular reference/"');
  if (!/^[imsu]*$/.test(flags) || new Set(flags).size !== flags.length) {
    throw usage(
      `--error ${shown(value)}: regex flags may be i, m, s, u (got ${shown(flags)})`,
      'e.g. --error "/circular/i"',
    );
  }
  try {
    new RegExp(source, flags);
  } catch (e) {
    const why = (e as Error).message.replace(/^Invalid regular expression: /, '');
    throw usage(
      `--error ${shown(value)} is not a valid regex: ${why}`,
      'fix the regex, or drop the slashes to match plain text',
    );
  }
  return { given: value, kind: 'regex', source, flags };
}

/** A predicate over a job's error text; a substring matches case-insensitively, like the server's ilike. */
export function compileErrorMatcher(m: ErrorMatcher): (error: string | null) => boolean {
  if (m.kind === 'substring') {
    const needle = m.source.toLowerCase();
    return (error) => error?.toLowerCase().includes(needle) === true;
  }
  const re = new RegExp(m.source, m.flags);
  return (error) => error !== null && re.test(error);
}

/**
 * The substring the server may filter on, or undefined. Only plain text: `%`, `_` and `\` are LIKE syntax and
 * PostgREST turns `*` into `%`, and escaping them does not survive both layers reliably; such text, and any
 * regex, is matched client-side instead.
 */
export function serverErrorSubstring(m: ErrorMatcher | undefined): string | undefined {
  if (m?.kind !== 'substring') return undefined;
  return /[%_\\*]/.test(m.source) ? undefined : m.source;
}

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const MAX_AGE_MS = 3650 * 86_400_000;
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** `30m`, `2h`, `7d`, `1w`, or an ISO date/timestamp (times need Z or an offset). Strict; past only. */
export function parseTimeBound(flag: string, value: string | undefined, now: Date): TimeBound | undefined {
  if (value === undefined) return undefined;
  const fix = `e.g. ${flag} 30m, ${flag} 2h, ${flag} 7d or ${flag} 2025-01-31T12:00:00Z`;
  const d = /^(\d{1,7})([smhdw])$/.exec(value);
  if (d) {
    const ms = Number(d[1]) * UNIT_MS[d[2]];
    if (ms < 1_000 || ms > MAX_AGE_MS) throw usage(`${flag} ${shown(value)} must be between 1s and 3650d`, fix);
    return { given: value, at: new Date(now.getTime() - ms) };
  }
  const iso = ISO.exec(value);
  if (!iso) throw usage(`${flag} ${shown(value)} is neither a duration nor an ISO timestamp`, fix);
  const [, y, mo, da, hh, , , zone] = iso;
  if (hh !== undefined && zone === undefined) {
    throw usage(`${flag} ${shown(value)} has no time zone`, `add Z (UTC) or an offset: ${value}Z`);
  }
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(da)));
  const t = Date.parse(hh === undefined ? `${value}T00:00:00Z` : value.replace(' ', 'T'));
  if (
    Number.isNaN(t) ||
    day.getUTCFullYear() !== Number(y) ||
    day.getUTCMonth() !== Number(mo) - 1 ||
    day.getUTCDate() !== Number(da)
  ) {
    throw usage(`${flag} ${shown(value)} is not a valid date`, fix);
  }
  if (t > now.getTime()) throw usage(`${flag} ${shown(value)} is in the future`, fix);
  return { given: value, at: new Date(t) };
}

/** The selection flags as typed; see {@link parseSelection}. */
export interface SelectionFlags {
  id?: string[];
  status?: string[];
  'job-type'?: string;
  account?: string;
  error?: string;
  'older-than'?: string;
  'newer-than'?: string;
  'include-done'?: boolean;
}

/** Validates the selection flags. `--id` and the filters do not mix: either name the jobs or describe them. */
export function parseSelection(flags: SelectionFlags, now: Date): Selection {
  const filterFlags = (['status', 'job-type', 'account', 'error', 'older-than', 'newer-than'] as const).filter(
    (k) => flags[k] !== undefined && !(Array.isArray(flags[k]) && flags[k].length === 0),
  );
  if (flags.id !== undefined && flags.id.length > 0) {
    if (filterFlags.length) {
      throw usage(
        `--id cannot be combined with --${filterFlags[0]}`,
        'either name the jobs with --id, or describe them with --status/--job-type/--account/--error/--older-than/--newer-than',
      );
    }
    return { kind: 'ids', ids: parseIds(flags.id) };
  }
  const { statuses, ignored } = parseStatuses(flags.status, flags['include-done'] ?? false);
  const olderThan = parseTimeBound('--older-than', flags['older-than'], now);
  const newerThan = parseTimeBound('--newer-than', flags['newer-than'], now);
  if (olderThan && newerThan && newerThan.at.getTime() >= olderThan.at.getTime()) {
    throw usage(
      `--newer-than ${flags['newer-than']} and --older-than ${flags['older-than']} leave no time between them`,
      'newer-than must be further back than older-than, e.g. --newer-than 7d --older-than 1h',
    );
  }
  return {
    kind: 'filter',
    statuses,
    ignoredStatuses: ignored,
    jobType: parseJobType(flags['job-type']),
    accountId: parseAccount(flags.account),
    error: parseErrorMatcher(flags.error),
    olderThan,
    newerThan,
  };
}

/** One line saying what was asked for, e.g. `status failed · job_type x · error ~ /circ/i · created before 2h ago`. */
export function describeSelection(sel: Selection): string {
  if (sel.kind === 'ids') return `${sel.ids.length} job id${sel.ids.length === 1 ? '' : 's'} given with --id`;
  return [
    `status ${sel.statuses.join(', ') || '(none)'}`,
    sel.jobType ? `job_type ${sel.jobType}` : '',
    sel.accountId ? `account ${sel.accountId}` : '',
    sel.error
      ? sel.error.kind === 'regex'
        ? `error ~ ${sel.error.given}`
        : `error contains ${JSON.stringify(sel.error.given)}`
      : '',
    sel.olderThan
      ? `created before ${sel.olderThan.given}${/^\d+[smhdw]$/.test(sel.olderThan.given) ? ' ago' : ''}`
      : '',
    sel.newerThan
      ? `created since ${sel.newerThan.given}${/^\d+[smhdw]$/.test(sel.newerThan.given) ? ' ago' : ''}`
      : '',
  ]
    .filter(Boolean)
    .join(' · ');
}

/** What a selection read found. */
export interface SelectionRead {
  /** In created_at order, at most the limit. */
  jobs: Job[];
  /** `--id` values with no such job. */
  missingIds: string[];
  /**
   * More jobs match than were taken: how many when the server did all the filtering (`estimated`: the planner's
   * estimate, above the API's max-rows).
   */
  more?: { total?: number; estimated?: boolean };
  /** The client-side scan stopped at its bound before the end of the candidates. */
  scanCut: boolean;
  requests: number;
}

function failure(message: string, fix: string): RunbookError {
  return new RunbookError(message, fix);
}

async function readIds(db: JobsDb, ids: string[]): Promise<SelectionRead> {
  const r = await readJobsById(db, ids);
  if (!r.ok) throw failure(`could not read the jobs: ${r.failure.message}`, r.failure.fix);
  const found = r.found;
  const jobs = ids.map((id) => found.get(id)).filter((j): j is Job => j !== undefined);
  jobs.sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
  return { jobs, missingIds: ids.filter((id) => !found.has(id)), scanCut: false, requests: r.requests };
}

/**
 * Reads the jobs a selection names: ids in chunks, filters page by page (keyset on created_at, id; a page shorter
 * than asked is not the end, the count is), then the client-side error regex over every page.
 */
export async function readSelection(db: JobsDb, sel: Selection, limit: number): Promise<SelectionRead> {
  if (sel.kind === 'ids') return readIds(db, sel.ids);
  if (sel.statuses.length === 0) return { jobs: [], missingIds: [], scanCut: false, requests: 0 };

  const serverSubstring = serverErrorSubstring(sel.error);
  const clientTest = sel.error && serverSubstring === undefined ? compileErrorMatcher(sel.error) : undefined;
  const filter: Omit<JobFilter, 'limit'> = {
    statuses: sel.statuses,
    jobType: sel.jobType,
    accountId: sel.accountId,
    createdBefore: sel.olderThan?.at,
    createdAfter: sel.newerThan?.at,
    errorContains: serverSubstring,
  };
  const jobs: Job[] = [];
  let total: { n: number | null; estimated: boolean } | undefined;
  let scanned = 0;
  let scanCut = false;
  let overflow = false;
  const r = await scanJobs(
    db,
    filter,
    () => (clientTest ? PAGE_SIZE : limit - jobs.length),
    (page, first) => {
      if (first) total = { n: page.total, estimated: page.estimated };
      for (const j of page.jobs) {
        scanned++;
        if (clientTest && !clientTest(j.error)) continue;
        if (jobs.length < limit) jobs.push(j);
        else overflow = true;
      }
      if (jobs.length >= limit) return false;
      // The bound on a client-side scan of a huge table: say so rather than read on. (A server-side filter reads
      // only matching rows, which --limit bounds.)
      if (clientTest && scanned >= SCAN_MAX) scanCut = true;
      return !scanCut;
    },
  );
  if (!r.ok) throw failure(`could not read the jobs: ${r.failure.message}`, r.failure.fix);
  if (scanCut && r.ended) scanCut = false;
  const result: SelectionRead = { jobs, missingIds: [], scanCut, requests: r.requests };
  if (!clientTest && total?.n != null && total.n > jobs.length) {
    result.more = { total: total.n, ...(total.estimated ? { estimated: true } : {}) };
  } else if (!clientTest && !r.ended && jobs.length >= limit) result.more = {};
  else if (clientTest && (overflow || (!r.ended && !scanCut))) result.more = {};
  return result;
}
