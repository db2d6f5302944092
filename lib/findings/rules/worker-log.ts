/**
 * The worker log's tail read for timing, not for messages: when each line was written, which lines are a worker
 * starting or stopping, and which say a job began or ended. The deaths that leave no message (worker-deaths.ts) are
 * told from these.
 *
 * Layouts read (each line on its own; ANSI colours and a trailing CR removed first):
 * - a leading timestamp, ISO 8601 with or without a zone (`2026-01-15T11:59:30.123Z`, the reference worker), or
 *   Python logging's `%(asctime)s` (`2026-01-15 11:59:30,123`, local time without a zone), optionally in brackets,
 *   then an optional level and logger name (`INFO worker: …`, `[INFO] …`, `INFO - worker - …`);
 * - `logging.basicConfig`'s default `LEVEL:name:message` (no time at all);
 * - JSON objects with the time in `ts`, `time`, `timestamp`, `asctime` or `@timestamp`, the message in `msg`,
 *   `message` or `event`, the logger in `name` or `logger`.
 * A time without a zone is Spark's local time: its offset from UTC is taken from the log's mtime against the last
 * line's time, to the nearest quarter hour (every zone's offset is a multiple of 15 minutes).
 */

export interface LogLine {
  /** Index in the tail. */
  index: number;
  /** The line as read. */
  raw: string;
  /** The line to show: as read, or a JSON record's time, level, message and the last line of its exception. */
  shown: string;
  /** When it was written, on Spark's clock; undefined when the layout has no time. */
  at?: Date;
  logger?: string;
  /** The level, when the layout has one (upper case). */
  level?: string;
  message: string;
}

const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
const STAMP = /^\[?(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?\]?(?:\s+|$)(.*)$/;
const LEVEL = '(?:DEBUG|INFO|WARN|WARNING|ERROR|CRITICAL|FATAL|NOTICE)';
/** After a timestamp: `INFO worker: msg`, `[INFO] msg`, `INFO - worker - msg`, `INFO msg`. */
const AFTER_STAMP = new RegExp(`^\\[?(${LEVEL})\\]?(?:\\s*[-:|]?\\s*([\\w.]+)\\s*[-:|])?\\s*(.*)$`);
/** logging.basicConfig's default format: `INFO:worker:started`. */
const BASIC = new RegExp(`^(${LEVEL}):([^:\\s]*):(.*)$`);
const QUARTER_HOUR_MS = 15 * 60_000;

interface Parsed {
  at?: { utcMs: number; naive: boolean };
  logger?: string;
  level?: string;
  message: string;
  shown?: string;
}

function stampMs(date: string, time: string, frac: string | undefined, zone: string | undefined) {
  const ms = frac ? `.${frac.slice(0, 3).padEnd(3, '0')}` : '';
  const z = !zone ? 'Z' : zone === 'Z' ? 'Z' : zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone;
  const t = Date.parse(`${date}T${time}${ms}${z}`);
  return Number.isNaN(t) ? undefined : { utcMs: t, naive: !zone };
}

function parseJson(text: string): Parsed | undefined {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!o || typeof o !== 'object') return undefined;
  const r = o as Record<string, unknown>;
  const pick = (...keys: string[]) => keys.map((k) => r[k]).find((v) => typeof v === 'string') as string | undefined;
  const ts = pick('ts', 'time', 'timestamp', 'asctime', '@timestamp');
  const m = ts ? STAMP.exec(ts) : null;
  const message = pick('msg', 'message', 'event') ?? text;
  const exception = pick('exc_info', 'exception', 'exc_text', 'stack_info')?.trimEnd().split('\n').at(-1);
  const shown = [ts, pick('level', 'levelname'), message].filter(Boolean).join(' ');
  return {
    at: m ? stampMs(m[1], m[2], m[3], m[4]) : undefined,
    logger: pick('name', 'logger'),
    level: pick('level', 'levelname')?.toUpperCase(),
    message,
    shown: exception ? `${shown} (${exception})` : shown,
  };
}

function parseLine(line: string): Parsed {
  const text = line.replace(ANSI, '').replace(/\r$/, '');
  if (text.startsWith('{')) {
    const json = parseJson(text);
    if (json) return json;
  }
  const stamped = STAMP.exec(text);
  if (stamped) {
    const rest = AFTER_STAMP.exec(stamped[5]);
    return {
      at: stampMs(stamped[1], stamped[2], stamped[3], stamped[4]),
      level: rest?.[1],
      logger: rest?.[2],
      message: rest ? rest[3] : stamped[5],
    };
  }
  const basic = BASIC.exec(text);
  if (basic) return { level: basic[1], logger: basic[2] || undefined, message: basic[3] };
  return { message: text };
}

/** Spark's offset from UTC for zone-less times: the log's mtime against its last time, to the quarter hour. */
function naiveOffsetMs(parsed: readonly Parsed[], modifiedAt: Date | undefined): number {
  const last = parsed.findLast((p) => p.at?.naive);
  if (!last?.at || !modifiedAt) return 0;
  return Math.round((modifiedAt.getTime() - last.at.utcMs) / QUARTER_HOUR_MS) * QUARTER_HOUR_MS;
}

/** The tail's lines with their times (on Spark's clock), loggers and messages. */
export function readLogLines(tail: readonly string[], modifiedAt?: Date): LogLine[] {
  const parsed = tail.map(parseLine);
  const offset = naiveOffsetMs(parsed, modifiedAt);
  return parsed.map((p, index) => ({
    index,
    raw: tail[index],
    shown: p.shown ?? tail[index].replace(ANSI, '').replace(/\r$/, ''),
    at: p.at ? new Date(p.at.utcMs + (p.at.naive ? offset : 0)) : undefined,
    logger: p.logger,
    level: p.level,
    message: p.message,
  }));
}

const UUID = /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/i;

/**
 * A worker starting. The wordings accepted (the worker's own message, any case):
 * - `worker started pid=… url=…` (the reference worker in sandbox/spark/worker.mjs);
 * - `worker started`, `worker starting`, `worker is starting`, `worker booting`, `hd-worker started` (also with a
 *   name between: `Worker rq:worker:… started with PID …`, RQ's wording);
 * - `starting worker`, `started worker`, `starting the worker`;
 * - `started` / `starting` / `starting up` as the whole message of a logger whose name holds "worker"
 *   (`INFO:worker:started`, basicConfig's default layout).
 * A logger name in brackets before the message (`INFO [hd_worker] worker starting`) is read past.
 * A line naming a job (a UUID) is never a worker start ("worker started job …").
 */
const START_MESSAGE =
  /^(?:\[[\w.-]+\]\s*)?(?:\W*)(?:(?:hd[-_ ])?worker\b(?:\s+\S+)?\s+(?:is\s+)?(?:started|starting|booting)\b|start(?:ed|ing)\s+(?:the\s+)?(?:hd[-_ ])?worker\b)/i;
const BARE_START = /^\W*start(?:ed|ing)(?:\s+up)?\b/i;

export function isWorkerStart(line: LogLine): boolean {
  if (UUID.test(line.message)) return false;
  if (START_MESSAGE.test(line.message)) return true;
  return BARE_START.test(line.message) && /worker/i.test(line.logger ?? '');
}

/** A worker saying it stops (`worker stopping signal=SIGTERM`, `shutting down`): the signal, when it names one. */
const STOP_MESSAGE = /\b(?:stopping|stopped|shutting down|shutdown|terminating|exiting)\b/i;
export function stopOf(line: LogLine): { signal?: string } | undefined {
  if (UUID.test(line.message) || !STOP_MESSAGE.test(line.message)) return undefined;
  return { signal: /\b(SIG[A-Z]+)\b/.exec(line.message)?.[1] };
}

/** An error: an ERROR/CRITICAL/FATAL record, or the start of a Python traceback. */
export function isError(line: LogLine): boolean {
  return (
    /^(?:ERROR|CRITICAL|FATAL)$/.test(line.level ?? '') || /^Traceback \(most recent call last\):/.test(line.shown)
  );
}

/**
 * A run of the worker (its lines up to the next start) that ended because it was asked to: a stop line naming a
 * signal, or a stop line in a run without errors. A worker that logs "exiting" on its way down after a crash did not.
 */
export function stoppedOnRequest(run: readonly LogLine[]): { signal?: string } | undefined {
  const stops = run.map(stopOf).filter((s) => s !== undefined);
  const signalled = stops.find((s) => s.signal);
  if (signalled) return signalled;
  return stops.length && !run.some(isError) ? stops[0] : undefined;
}

/** The pid a start line names (`pid=4242`, `PID 4242`), if any. */
export function pidOf(line: LogLine): number | undefined {
  const m = /\bpid[=:\s]\s*(\d+)/i.exec(line.message);
  return m ? Number(m[1]) : undefined;
}

/** What a line says of the job it names: it began, it ended (done, failed, skipped, released), or neither. */
const JOB_END =
  /\b(?:done|finished|complete[ds]?|succeeded|success(?:ful)?|failed|failure|error|exception|traceback|cancel(?:l?ed)?|abort(?:ed)?|skip(?:ping|ped)?|requeued|released|gave up|timed out|discarded|abandoned|not written)\b/i;
const JOB_BEGIN =
  /\b(?:claim(?:ed|ing)?|start(?:ed|ing)?|processing|picked up|running job|begin(?:ning)?|working on)\b/i;

export function jobEvent(line: LogLine): { jobId: string; kind: 'begin' | 'end' | 'other' } | undefined {
  const id = UUID.exec(line.message)?.[0];
  if (!id) return undefined;
  const kind = JOB_END.test(line.message) ? 'end' : JOB_BEGIN.test(line.message) ? 'begin' : 'other';
  return { jobId: id.toLowerCase(), kind };
}

/** A line that says a job finished well (for the crash loop: a run that did work was not a crash). */
export function finishedWell(line: LogLine): boolean {
  return UUID.test(line.message) && /\b(?:done|finished|complete[ds]?|succeeded)\b/i.test(line.message);
}
