/**
 * A job's lines in the worker log, in the layouts real Python workers write. Every log here is written by python3's
 * own `logging` module: a small worker (WORKER below) logs two jobs interleaved with polls; job A fails with a real
 * exception (the ops note's failure B: a row put into its own metadata, json.dumps raises) logged with
 * `logger.exception`, job B succeeds. The traceback Python formatted is also written to stderr, so each test knows
 * exactly which lines are job A's. python3 is required: without it these tests fail, they do not skip.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeLayout, detectLayout, linesOfJob } from '../../lib/evidence/log-layout.ts';
import { BUILTIN_ERROR_PATTERNS, matchPattern } from '../../lib/findings/error-patterns.ts';
import { storyLines } from '../../lib/findings/log-story.ts';
import { logContextFor } from '../../lib/findings/rules/failures.ts';
import { tempDir } from '../helpers/run.ts';

const PYTHON = '/usr/bin/python3';
const A = '7f3c2a10-0000-4000-8000-00000000000a';
const B = '9b1e4d20-0000-4000-8000-00000000000b';

/**
 * The worker. Formatters: logging.basicConfig's default; the cookbook's; ISO timestamps as the sandbox worker writes
 * them; a JSON formatter (json.dumps in a logging.Formatter subclass, the traceback in `exc_info`); and colour as
 * colorlog's ColoredFormatter writes it. colorlog is not installed here, so COLOURS holds the escape codes it emits
 * for its default log_colors (white, green, yellow, red, bold_red; `%(blue)s` and `%(reset)s`), checked once against
 * colorlog 6.12.0. Message styles: `plain` names the job in the text (`job ID failed`), `kv` as `job_id=ID`, `extra`
 * only in the record's `job_id` attribute (the JSON formatter writes it as a field).
 */
const WORKER = String.raw`
import json, logging, sys, traceback

formatter_name, A, B, style = sys.argv[1:5]

COLOURS = {"DEBUG": "\033[37m", "INFO": "\033[32m", "WARNING": "\033[33m", "ERROR": "\033[31m", "CRITICAL": "\033[1;31m"}

class ColouredFormatter(logging.Formatter):
    def format(self, record):
        record.log_color = COLOURS[record.levelname]
        record.blue = "\033[34m"
        record.reset = "\033[0m"
        return super().format(record)

class JsonFormatter(logging.Formatter):
    def format(self, record):
        out = {"ts": self.formatTime(record), "level": record.levelname, "logger": record.name, "msg": record.getMessage()}
        if getattr(record, "job_id", None):
            out["job_id"] = record.job_id
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out)

FORMATTERS = {
    "cookbook": lambda: logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"),
    "iso": lambda: logging.Formatter("%(asctime)s.%(msecs)03dZ %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S"),
    "json": JsonFormatter,
    "colour-level-first": lambda: ColouredFormatter("%(log_color)s%(levelname)-8s%(reset)s %(blue)s%(message)s%(reset)s"),
    "colour-default": lambda: ColouredFormatter("%(log_color)s%(levelname)s:%(name)s:%(message)s%(reset)s"),
}

if formatter_name == "default":
    logging.basicConfig(stream=sys.stdout, level=logging.INFO)
else:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(FORMATTERS[formatter_name]())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
log = logging.getLogger("worker")

def about(job, what):
    if style == "plain":
        return {"msg": "job %s %s" % (job, what)}
    if style == "kv":
        return {"msg": "%s job_id=%s" % (what, job)}
    return {"msg": "job %s" % what, "extra": {"job_id": job}}

def build_metadata(row):
    row["source_line"] = row
    return json.dumps({"metadata": row})

def process(job, fail):
    row = {"id": job, "assets": 3}
    if fail:
        build_metadata(row)
    return row["assets"]

log.info("polling queued=2")
log.info(**about(B, "claimed"))
log.info(**about(A, "claimed"))
try:
    process(A, True)
except Exception:
    log.exception(**about(A, "failed"))
    sys.stderr.write(traceback.format_exc())
log.info("polling queued=0")
log.info(**about(B, "done assets=%d" % process(B, False)))
log.info("polling queued=0")
`;

let script = '';
beforeAll(() => {
  script = path.join(tempDir('log-layout-'), 'worker.py');
  writeFileSync(script, WORKER);
});

/** What the worker logged with this formatter and style, and the traceback of job A as Python formatted it. */
function runWorker(formatter: string, style: string): { log: string; traceback: string[] } {
  const r = spawnSync(PYTHON, [script, formatter, A, B, style], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`${PYTHON} ${formatter}: ${r.error?.message ?? r.stderr}`);
  return { log: r.stdout, traceback: r.stderr.trimEnd().split('\n') };
}

/** The log as the Spark probe hands it over: split on \n, empty lines dropped (a CRLF file keeps its CRs). */
const tailOf = (text: string) => text.split('\n').filter((l) => l !== '');

const CASES = [
  { name: "logging.basicConfig's default (LEVEL:name:message)", formatter: 'default', style: 'plain' },
  { name: 'the cookbook format, the job as job_id= in the message', formatter: 'cookbook', style: 'kv' },
  { name: 'ISO timestamps, as the sandbox worker writes', formatter: 'iso', style: 'plain' },
  { name: 'JSON lines, the job only in a job_id field', formatter: 'json', style: 'extra' },
  { name: 'JSON lines, the job named in the message', formatter: 'json', style: 'plain' },
  { name: 'colorlog colours, level first', formatter: 'colour-level-first', style: 'plain' },
  { name: "colorlog colours around logging's default", formatter: 'colour-default', style: 'plain' },
] as const;

const EXPECTED_KIND: Record<string, string> = {
  default: 'python-default',
  cookbook: 'python-cookbook',
  iso: 'timestamped',
  json: 'json-lines',
  'colour-level-first': 'level-first',
  'colour-default': 'python-default',
};

describe('a job failing among polls and another job, logged by python3 logging', () => {
  for (const c of CASES) {
    for (const eol of ['LF', 'CRLF'] as const) {
      it(`${c.name}, ${eol}`, () => {
        const { log, traceback } = runWorker(c.formatter, c.style);
        const tail = tailOf(eol === 'CRLF' ? log.replace(/\n/g, '\r\n') : log);
        expect(traceback.at(-1)).toBe('ValueError: Circular reference detected');

        const layout = detectLayout(tail);
        expect(layout.kind).toBe(EXPECTED_KIND[c.formatter]);
        expect(layout.ansi).toBe(c.formatter.startsWith('colour'));
        expect(layout.crlf).toBe(eol === 'CRLF');
        expect(layout.also).toEqual([]);

        const a = logContextFor(A, tail);
        const b = logContextFor(B, tail);
        // A: its claim, its failure line and the whole traceback, ending in the exception line; nothing of B or the polls.
        expect(a).toHaveLength(2 + traceback.length);
        expect(a.slice(2)).toEqual(traceback);
        expect(a[1]).toMatch(/ERROR/);
        // B never gets A's traceback: its claim (logged before A's failure) and its done line.
        expect(b).toHaveLength(2);
        expect(b.join('\n')).not.toMatch(/Traceback|File "|ValueError|failed/);
        expect(b[1]).toMatch(/done assets=3/);
        expect([...a, ...b].join('\n')).not.toMatch(/polling|\x1b|\r/);

        // The catalog and the story-line picker see the traceback as lines.
        const job = { job_type: 'import_assets_jsonl', error: null, debug: null };
        expect(matchPattern(BUILTIN_ERROR_PATTERNS, job, a)?.id).toBe('circular-metadata');
        expect(matchPattern(BUILTIN_ERROR_PATTERNS, job, b)).toBeUndefined();
        expect(storyLines(a)).toEqual([
          a[1],
          expect.stringMatching(/^ {2}File ".*worker\.py", line \d+, in build_metadata$/),
          '    return json.dumps({"metadata": row})',
          'ValueError: Circular reference detected',
        ]);
      });
    }
  }

  it('the CRLF log gives each job the same lines as the LF one', () => {
    for (const c of CASES) {
      const { log } = runWorker(c.formatter, c.style);
      const lf = tailOf(log);
      const crlf = tailOf(log.replace(/\n/g, '\r\n'));
      for (const id of [A, B]) expect(linesOfJob(id, crlf)).toEqual(linesOfJob(id, lf));
    }
  });
});

const fixture = (name: string) =>
  readFileSync(new URL(`../fixtures/tracebacks/${name}.txt`, import.meta.url), 'utf8')
    .trimEnd()
    .split('\n');

describe('the sandbox worker and logs of no known layout', () => {
  it("the sandbox worker's ISO lines: a traceback written raw under the entry stays with its job", () => {
    const tb = fixture('requests-connection-refused');
    const tail = [
      '2026-12-01T10:00:00.000Z INFO poll queued=2',
      `2026-12-01T10:00:00.010Z INFO job ${B} claimed`,
      `2026-12-01T10:00:00.020Z INFO job ${A} claimed`,
      `2026-12-01T10:00:01.000Z ERROR job ${A} failed: ${tb.at(-1)}`,
      ...tb,
      '2026-12-01T10:00:02.000Z INFO poll queued=0',
      `2026-12-01T10:00:03.000Z INFO job ${B} done assets=3`,
    ];
    const layout = detectLayout(tail);
    expect(layout).toEqual({ kind: 'timestamped', also: [], ansi: false, crlf: false });
    expect(describeLayout(layout)).toBe('timestamped plain text (2026-12-01T10:00:00Z LEVEL message)');
    expect(linesOfJob(A, tail)).toEqual(tail.slice(2, 4 + tb.length));
    expect(linesOfJob(B, tail)).toEqual([tail[1], tail.at(-1)]);
  });

  it('no known layout: the lines naming the job and the traceback body under them, not the next line', () => {
    const tb = fixture('json-circular');
    const tail = [`worker | job ${A} failed`, ...tb, 'worker | polling', `worker | job ${B} done`];
    const layout = detectLayout(tail);
    expect(layout.kind).toBe('unknown');
    expect(describeLayout(layout)).toMatch(/^not recognised/);
    expect(linesOfJob(A, tail)).toEqual([tail[0], ...tb]);
    expect(linesOfJob(B, tail)).toEqual([tail.at(-1)]);
  });

  it('a worker restarted with another layout: both layouts start records', () => {
    const tb = fixture('json-circular');
    const tail = [
      `2026-12-01T09:00:00.000Z ERROR job ${A} failed`,
      ...tb,
      '2026-12-01T09:00:01.000Z INFO worker stopping signal=SIGTERM',
      'INFO:worker:worker started',
      `INFO:worker:job ${B} claimed`,
      'INFO:worker:polling',
      `INFO:worker:job ${B} done`,
    ];
    const layout = detectLayout(tail);
    expect(layout).toEqual({ kind: 'python-default', also: ['timestamped'], ansi: false, crlf: false });
    expect(describeLayout(layout)).toBe('Python logging default (LEVEL:name:message), also timestamped plain text');
    expect(linesOfJob(A, tail)).toEqual([tail[0], ...tb]);
    expect(linesOfJob(B, tail)).toEqual([tail.at(-3), tail.at(-1)]);
  });

  it('describes colour and CRLF', () => {
    expect(describeLayout({ kind: 'level-first', also: [], ansi: true, crlf: true })).toBe(
      'level first (LEVEL message, as colorlog formats it), ANSI colour, CRLF line ends',
    );
    expect(describeLayout({ kind: 'json-lines', also: [], ansi: false, crlf: false })).toBe(
      'JSON lines (one object per record, the traceback in a field)',
    );
  });
});

describe("which records are a job's", () => {
  it('the id as a word: a longer id that starts with it is another job', () => {
    const tail = ['INFO:worker:job 7f3c claimed', 'INFO:worker:job 7f3c1 claimed', 'INFO:worker:job 7f3c… failed'];
    expect(linesOfJob('7f3c', tail)).toEqual([tail[0], tail[2]]);
  });

  it("a job named in a field (job_id=, job=) is the record's job, whatever else its text mentions", () => {
    const tail = [
      `2026-12-01 10:00:00,001 - worker - INFO - waiting for ${A} job_id=${B}`,
      `2026-12-01 10:00:00,002 - worker - INFO - job=${A} claimed`,
    ];
    expect(detectLayout(tail).kind).toBe('python-cookbook');
    expect(linesOfJob(A, tail)).toEqual([tail[1]]);
    expect(linesOfJob(B, tail)).toEqual([tail[0]]);
  });

  it("a job= holding a job type is no id: the record mentioning the id is still the job's", () => {
    const tail = [
      `2026-12-01T10:00:00Z ERROR job=import_assets_jsonl id=${A} failed`,
      '{"msg": "job failed", "job": "import_assets_jsonl", "level": "error", "ctx": {"id": "' + B + '"}}',
      '{"msg": "polling", "level": "info"}',
    ];
    expect(linesOfJob(A, tail)).toEqual([tail[0]]);
    // B is named only in a field this module does not know (ctx.id): the raw line still names it.
    expect(linesOfJob(B, tail)).toEqual(['ERROR job failed']);
  });

  it('colour codes go, every other control character stays for the output to show inert', () => {
    const tail = [`\x1b[31mERROR   \x1b[0m job ${A} failed \x1b]52;c;eA==\x07 \x1b[2J fine\rEVIL\r`];
    expect(linesOfJob(A, tail)).toEqual([`ERROR    job ${A} failed \x1b]52;c;eA==\x07 \x1b[2J fine\rEVIL`]);
  });

  it('an empty id names no job', () => {
    expect(linesOfJob('', ['INFO:worker:job  claimed'])).toEqual([]);
  });
});
