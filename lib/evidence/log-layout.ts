/**
 * The worker log's layout, and a job's lines in it. Python workers log in several layouts: timestamped plain text (the
 * sandbox worker's `2026-12-01T10:00:00.000Z INFO …`), logging's default `LEVEL:name:message`, the cookbook's
 * `asctime - name - LEVEL - message`, a level first (`ERROR    message`, colorlog's usual format), or JSON lines with
 * the traceback inside a string field; any of them with ANSI colour and CRLF line ends. A record is its start line
 * plus the lines up to the next record start as the layout defines it (a traceback belongs to the record it follows),
 * and a record is a job's when it names the job. Pure: no I/O. Lines are returned without colour codes and line-end
 * CRs; every other control character is left for lib/io/output.ts, which shows it inert.
 */
import { jsonJobIds, jsonRecordLines, parseJsonRecord } from './log-json.ts';

export type LogLayoutKind =
  | 'timestamped'
  | 'python-cookbook'
  | 'python-default'
  | 'level-first'
  | 'json-lines'
  | 'unknown';

export interface LogLayout {
  /** The layout most records are in. */
  readonly kind: LogLayoutKind;
  /** Other layouts with records in the same tail (a worker restarted with another format): their starts count too. */
  readonly also: readonly LogLayoutKind[];
  /** ANSI colour codes (SGR) were seen; they are ignored for matching and left out of the lines. */
  readonly ansi: boolean;
  /** Lines end in CRLF; the CR is ignored. */
  readonly crlf: boolean;
}

const LEVELS = 'TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRITICAL|FATAL|SEVERE|Level \\d+';
/** A date and time first: ISO 8601, logging's asctime (`2026-12-01 10:00:00,123`), optionally in brackets. */
const TIMESTAMP = /^\[?\d{4}[-/]\d{2}[-/]\d{2}[T ]\d{2}:\d{2}/;
/** The logging cookbook's `'%(asctime)s - %(name)s - %(levelname)s - %(message)s'`. */
const COOKBOOK = new RegExp(`^\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}(?:[,.]\\d+)? - \\S+ - (?:${LEVELS}) - `);
/** logging.basicConfig's default `'%(levelname)s:%(name)s:%(message)s'` (the root logger's name is `root`). */
const PYTHON_DEFAULT = new RegExp(`^(?:${LEVELS}):[^\\s:]+:`);
/** A level first, padded, bracketed or followed by a colon or bar: `ERROR    msg`, `[ERROR] msg`, `ERROR | msg`. */
const LEVEL_FIRST = new RegExp(`^\\[?(?:${LEVELS})\\]?(?=[\\s:|]|$)`);

/** ANSI SGR sequences (colour, bold, reset), as colorlog and rich write them. */
const SGR = /\x1b\[[0-9;:]*m/g;
const HAS_SGR = /\x1b\[[0-9;:]*m/;

/** A line as it is matched and shown: no colour codes, no line-end CR. */
export function cleanLine(line: string): string {
  return line.replace(SGR, '').replace(/\r+$/, '');
}

type Known = Exclude<LogLayoutKind, 'unknown'>;
/** Tried in this order: the first that fits a line is its layout (the cookbook is a timestamp, and more). */
const ORDER: readonly Known[] = ['json-lines', 'python-cookbook', 'timestamped', 'python-default', 'level-first'];

const STARTS: Record<Known, (line: string) => boolean> = {
  'json-lines': (l) => parseJsonRecord(l) !== undefined,
  'python-cookbook': (l) => TIMESTAMP.test(l),
  timestamped: (l) => TIMESTAMP.test(l),
  'python-default': (l) => PYTHON_DEFAULT.test(l),
  'level-first': (l) => LEVEL_FIRST.test(l),
};

function classify(line: string): Known | undefined {
  if (parseJsonRecord(line)) return 'json-lines';
  if (COOKBOOK.test(line)) return 'python-cookbook';
  if (TIMESTAMP.test(line)) return 'timestamped';
  if (PYTHON_DEFAULT.test(line)) return 'python-default';
  if (LEVEL_FIRST.test(line)) return 'level-first';
  return undefined;
}

/** A second layout needs this many record starts: one stray line that looks like a start is not a layout. */
const MIN_ALSO = 2;

/** The layout of a log tail: the one most lines start a record in; `unknown` when no line starts one. */
export function detectLayout(tail: readonly string[]): LogLayout {
  const counts = new Map<Known, number>();
  let ansi = false;
  let crlf = false;
  for (const raw of tail) {
    if (raw.endsWith('\r')) crlf = true;
    if (HAS_SGR.test(raw)) ansi = true;
    const kind = classify(cleanLine(raw));
    if (kind) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  const ranked = [...counts].sort((a, b) => b[1] - a[1] || ORDER.indexOf(a[0]) - ORDER.indexOf(b[0]));
  return {
    kind: ranked[0]?.[0] ?? 'unknown',
    also: ranked.slice(1).flatMap(([k, n]) => (n >= MIN_ALSO ? [k] : [])),
    ansi,
    crlf,
  };
}

const NAMES: Record<LogLayoutKind, string> = {
  timestamped: 'timestamped plain text (2026-12-01T10:00:00Z LEVEL message)',
  'python-cookbook': 'Python logging cookbook (asctime - name - LEVEL - message)',
  'python-default': 'Python logging default (LEVEL:name:message)',
  'level-first': 'level first (LEVEL message, as colorlog formats it)',
  'json-lines': 'JSON lines (one object per record, the traceback in a field)',
  unknown: 'not recognised (a job has the lines naming it and the traceback under them)',
};

/** A short human description: "Python logging default (LEVEL:name:message), ANSI colour, CRLF line ends". */
export function describeLayout(layout: LogLayout): string {
  const extras = [
    ...(layout.ansi ? ['ANSI colour'] : []),
    ...(layout.crlf ? ['CRLF line ends'] : []),
    ...(layout.also.length ? [`also ${layout.also.map((k) => NAMES[k].replace(/ \(.*$/, '')).join(', ')}`] : []),
  ];
  return [NAMES[layout.kind], ...extras].join(', ');
}

/** A record of the log: its lines (a JSON record's message and traceback), and the job ids it names in a field. */
export interface LogRecord {
  readonly lines: string[];
  readonly jobIds: readonly string[];
  /** A JSON record's line as written: an id anywhere in it (a field not known here) still names the job. */
  readonly raw?: string;
}

/**
 * `job_id=ID`, `jobId=ID`, `job=ID` (logfmt, structlog's console renderer): the job named in a field of a line. A
 * `job=` holding a word without digits is a job type or a name, not an id.
 */
const TEXT_JOB_FIELD = /(?<![\w.])job(_id|Id|\.id)?=["']?([^\s"',;)\]}]+)/g;

function textJobIds(line: string): string[] {
  return [...line.matchAll(TEXT_JOB_FIELD)].flatMap((m) => (m[1] || /\d/.test(m[2]) ? [m[2]] : []));
}

/** In a log whose layout is not known: what a traceback's body looks like (frames, source, carets, chaining). */
const TRACEBACK_BODY =
  /^(?:\s|Traceback \(most recent call last\):|Stack \(most recent call last\):|During handling of the above exception|The above exception was the direct cause)/;
const EXCEPTION_LINE =
  /^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Warning|Timeout|Failure|Group)\b/;

function startsRecord(line: string, prev: string | undefined, layout: LogLayout): boolean {
  if (layout.kind === 'unknown') {
    if (TRACEBACK_BODY.test(line)) return false;
    return !(EXCEPTION_LINE.test(line) && prev !== undefined && /^\s/.test(prev));
  }
  return [layout.kind, ...layout.also].some((k) => k !== 'unknown' && STARTS[k](line));
}

/** The tail cut into records. Lines before the first record start (a tail cut mid-record) form one of their own. */
export function logRecords(tail: readonly string[], layout: LogLayout = detectLayout(tail)): LogRecord[] {
  const json = layout.kind === 'json-lines' || layout.also.includes('json-lines');
  const records: LogRecord[] = [];
  let current: LogRecord | undefined;
  let prev: string | undefined;
  for (const raw of tail) {
    const line = cleanLine(raw);
    const obj = json ? parseJsonRecord(line) : undefined;
    if (obj) {
      current = { lines: jsonRecordLines(obj).map(cleanLine), jobIds: jsonJobIds(obj), raw: line };
      records.push(current);
    } else if (!current || startsRecord(line, prev, layout)) {
      current = { lines: [line], jobIds: textJobIds(line) };
      records.push(current);
    } else current.lines.push(line);
    prev = line;
  }
  return records;
}

/** Records of a tail already cut, by the tail itself (a diagnosis asks for many jobs' lines in the same tail). */
const recordCache = new WeakMap<readonly string[], { length: number; key: string; records: LogRecord[] }>();

function cachedRecords(tail: readonly string[], layout: LogLayout): LogRecord[] {
  const key = JSON.stringify(layout);
  const hit = recordCache.get(tail);
  if (hit && hit.length === tail.length && hit.key === key) return hit.records;
  const records = logRecords(tail, layout);
  recordCache.set(tail, { length: tail.length, key, records });
  return records;
}

const layoutCache = new WeakMap<readonly string[], { length: number; layout: LogLayout }>();

/** {@link detectLayout}, once per tail. */
export function layoutOf(tail: readonly string[]): LogLayout {
  const hit = layoutCache.get(tail);
  if (hit && hit.length === tail.length) return hit.layout;
  const layout = detectLayout(tail);
  layoutCache.set(tail, { length: tail.length, layout });
  return layout;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A job's lines: every record that is the job's, whole (its traceback included). A record is the job's when it names
 * the job in a field (`job_id` in JSON, `job_id=`/`job=` in text); a record naming no job in a field is the job's when
 * one of its lines mentions the id as a word (a JSON record: anywhere in it, its message and traceback included).
 */
export function linesOfJob(jobId: string, tail: readonly string[], layout: LogLayout = layoutOf(tail)): string[] {
  if (!jobId) return [];
  const mention = new RegExp(`(?<![\\w-])${escapeRegExp(jobId)}(?![\\w-])`);
  return cachedRecords(tail, layout)
    .filter((r) =>
      r.jobIds.length ? r.jobIds.includes(jobId) : r.lines.some((l) => mention.test(l)) || mention.test(r.raw ?? ''),
    )
    .flatMap((r) => r.lines);
}

/** The whole tail as lines to match and show: colour and CRs gone, JSON records as their message and traceback. */
export function readableLines(tail: readonly string[], layout: LogLayout = layoutOf(tail)): string[] {
  return cachedRecords(tail, layout).flatMap((r) => r.lines);
}
