/**
 * One JSON log record read as text: the message line and the exception carried inside a string field, split into the
 * lines a traceback has when it is written plainly, so the failure catalog and the story-line picker see a traceback
 * as lines. Pure; nothing here is printed (lib/io/output.ts makes shown text inert).
 */

/** A JSON object as JSON.parse gives it. */
type Json = Record<string, unknown>;

/** Keys that make an object a log record rather than data printed into the log. */
const RECORD_KEYS = ['msg', 'message', 'event', 'level', 'levelname', 'severity', 'ts', 'time', 'timestamp', 'asctime'];
const MESSAGE_KEYS = ['msg', 'message', 'event'];
const LEVEL_KEYS = ['level', 'levelname', 'severity', 'lvl', 'log.level'];
const TIME_KEYS = ['ts', 'time', 'timestamp', '@timestamp', 'asctime'];
/** Where JSON formatters put the traceback: python-json-logger `exc_info`, structlog `exception`, ECS, others. */
const EXCEPTION_KEYS = [
  'exc_info',
  'exception',
  'exc_text',
  'stack',
  'stack_trace',
  'stacktrace',
  'traceback',
  'error.stack_trace',
];
/** Where a record names its job: a top-level field, or the `extra` dict some formatters nest. */
const JOB_KEYS = ['job_id', 'jobId', 'job.id', 'job', 'extra.job_id', 'extra.jobId', 'record.extra.job_id'];

/** A value by key: the literal (possibly dotted) key first, then the dotted path through nested objects. */
function field(obj: Json, key: string): unknown {
  if (key in obj) return obj[key];
  let cur: unknown = obj;
  for (const part of key.split('.')) {
    if (!cur || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Json)[part];
  }
  return cur;
}

function firstString(obj: Json, keys: readonly string[]): string | undefined {
  for (const k of keys) {
    const v = field(obj, k);
    if (typeof v === 'string' && v !== '') return v;
    // loguru's and some others' level is an object: {"name": "ERROR", "no": 40}.
    if (v && typeof v === 'object' && typeof (v as Json).name === 'string') return (v as Json).name as string;
  }
  return undefined;
}

/** The object a line holds, when it is a JSON object that looks like a log record. */
export function parseJsonRecord(line: string): Json | undefined {
  const t = line.trim();
  if (!t.startsWith('{') || !t.endsWith('}')) return undefined;
  try {
    const v: unknown = JSON.parse(t);
    if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
    const obj = v as Json;
    return RECORD_KEYS.some((k) => k in obj) || isLoguru(obj) ? obj : undefined;
  } catch {
    return undefined;
  }
}

/** loguru's `serialize=True`: {"text": the formatted record with its traceback, "record": {...}}. */
function isLoguru(obj: Json): boolean {
  return typeof obj.text === 'string' && !!obj.record && typeof obj.record === 'object';
}

/** An exception field as lines (without blank ones): a formatted traceback string, or structlog's dict tracebacks (type: value). */
function exceptionLines(v: unknown): string[] {
  // Blank lines go, as the Spark probe drops them from the plain log.
  if (typeof v === 'string') return v.split(/\r?\n/).filter((l) => l !== '');
  if (!Array.isArray(v)) return [];
  return v.flatMap((e) => {
    if (typeof e === 'string') return exceptionLines(e);
    if (e && typeof e === 'object' && typeof (e as Json).exc_type === 'string') {
      const { exc_type, exc_value } = e as Json;
      return [typeof exc_value === 'string' && exc_value ? `${exc_type}: ${exc_value}` : String(exc_type)];
    }
    return [];
  });
}

/**
 * The job ids a record names in a field of its own (empty: it names none that way). A bare `job` field holding a word
 * without digits is a job type or a name, not an id, and does not count.
 */
export function jsonJobIds(obj: Json): string[] {
  for (const k of JOB_KEYS) {
    const v = field(obj, k);
    if (typeof v === 'string' && v !== '' && (k !== 'job' || /\d/.test(v))) return [v];
    if (typeof v === 'number') return [String(v)];
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const id = (v as Json).id;
      if (typeof id === 'string' || typeof id === 'number') return [String(id)];
    }
  }
  return [];
}

/**
 * The record as lines: "TIME LEVEL message" (the level upper-cased, as plain-text layouts write it), the message's
 * further lines, then the exception field's lines. loguru's serialised records carry the whole formatted text.
 */
export function jsonRecordLines(obj: Json): string[] {
  if (isLoguru(obj)) return exceptionLines(obj.text);
  const message = firstString(obj, MESSAGE_KEYS) ?? '';
  const [first, ...more] = message.split(/\r?\n/);
  const head = [firstString(obj, TIME_KEYS), firstString(obj, LEVEL_KEYS)?.toUpperCase(), first]
    .filter((s) => s !== undefined && s !== '')
    .join(' ');
  // One exception field (a formatter that dumps the record may carry the same traceback twice: exc_info, exc_text),
  // then Python's stack_info when the call asked for it.
  const exc = EXCEPTION_KEYS.map((k) => exceptionLines(field(obj, k))).find((l) => l.length) ?? [];
  return [...(head ? [head] : []), ...more, ...exc, ...exceptionLines(field(obj, 'stack_info'))];
}
