/**
 * Deaths that leave no message (lib/findings/rules/worker-deaths.ts): a worker killed mid-job, and a crash loop.
 * The log lines are genuine Python logging output: python3's `logging` module writes them here (StreamHandler,
 * records stamped with the incident's times), in basicConfig's default layout `LEVEL:name:message` (no times), an
 * `%(asctime)s` layout (local time without a zone, on Spark in UTC and in UTC+05:30) and a JSON formatter; the
 * tracebacks come from a real failed import. The reference worker's own layout (sandbox/spark/worker.mjs) too.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../lib/core/finding.ts';
import { DEFAULT_RULES } from '../../lib/core/stuck-rules.ts';
import type { Evidence } from '../../lib/evidence/evidence.ts';
import type { SparkEvidence, WorkerProcessInfo } from '../../lib/evidence/spark-probe.ts';
import { diagnose } from '../../lib/findings/diagnosis.ts';
import { BUILTIN_ERROR_PATTERNS } from '../../lib/findings/error-patterns.ts';
import { isWorkerStart, readLogLines } from '../../lib/findings/rules/worker-log.ts';
import type { Job, QueueSnapshot } from '../../lib/io/jobs-db.ts';

const NOW = new Date('2026-01-15T12:00:00Z');
const at = (minutesAgo: number) => new Date(NOW.getTime() - minutesAgo * 60_000);
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const J1 = '3f0c6a8e-1b2d-4c5e-8f90-a1b2c3d4e5f6';
const J2 = '7d41e2b9-5a6c-4e3f-9b80-c1d2e3f4a5b6';
const J3 = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';

/** A log record to write: minutes before NOW, level, logger, message, and a real exception to attach. */
interface Rec {
  ago: number;
  msg: string;
  level?: 'INFO' | 'WARNING' | 'ERROR';
  name?: string;
  exc?: 'import';
}
type Layout = 'basic' | 'asctime' | 'asctime+0530' | 'json';
const LAYOUTS: Layout[] = ['basic', 'asctime', 'asctime+0530', 'json'];
const TIMED: Layout[] = ['asctime', 'asctime+0530', 'json'];

/** Python: each record through logging's own machinery (makeRecord, handle, the formatter), stamped at `ago`. */
const WRITER = `
import json, logging, sys, time
spec = json.load(sys.stdin)
class JsonFormatter(logging.Formatter):
    converter = time.gmtime
    def format(self, record):
        d = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + ".%03dZ" % record.msecs,
             "level": record.levelname, "name": record.name, "msg": record.getMessage()}
        if record.exc_info:
            d["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(d)
handler = logging.StreamHandler(sys.stdout)
layout = spec["layout"]
if layout == "basic":
    handler.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
elif layout == "json":
    handler.setFormatter(JsonFormatter())
else:
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
try:
    import hd_gpu_kernels  # not installed: a deploy that lacks a dependency
except ImportError:
    import_error = sys.exc_info()
for r in spec["records"]:
    logger = logging.getLogger(r.get("name", "worker"))
    logger.propagate = False
    if handler not in logger.handlers:
        logger.addHandler(handler)
    level = getattr(logging, r.get("level", "INFO"))
    rec = logger.makeRecord(logger.name, level, "worker.py", 1, r["msg"], (), import_error if r.get("exc") else None)
    rec.created = r["t"]
    rec.msecs = (r["t"] - int(r["t"])) * 1000
    logger.handle(rec)
`;

function pythonLog(layout: Layout, records: readonly Rec[]): string[] {
  const TZ = layout === 'asctime+0530' ? 'IST-5:30' : 'UTC';
  const spec = { layout, records: records.map((r) => ({ ...r, t: at(r.ago).getTime() / 1000 })) };
  const out = execFileSync(PYTHON, ['-c', WRITER], {
    input: JSON.stringify(spec),
    env: { ...process.env, TZ, PYTHONDONTWRITEBYTECODE: '1' },
    encoding: 'utf8',
  });
  return out.replace(/\n$/, '').split('\n');
}

function job(id: string, over: Partial<Job> = {}): Job {
  return {
    id,
    account_id: null,
    job_type: 'import_assets_jsonl',
    status: 'running',
    attempts: 1,
    error: null,
    debug: null,
    created_at: at(30).toISOString(),
    started_at: at(10).toISOString(),
    finished_at: null,
    ...over,
  };
}

function queue(over: { running?: Job[]; failed?: Job[]; done?: Job | null } = {}): QueueSnapshot {
  const running = over.running ?? [];
  const failed = over.failed ?? [];
  return {
    queued: { count: 0, oldest: [] },
    running: { count: running.length, jobs: running },
    failed: { count: failed.length, recent: failed, since: at(24 * 60).toISOString() },
    done: {
      count: 5,
      latest: over.done === undefined ? job(J1, { status: 'done', finished_at: at(19).toISOString() }) : over.done,
    },
  };
}

const proc = (pid: number, minutesAgo: number, ppid?: number): WorkerProcessInfo => ({
  pid,
  ppid,
  elapsedSeconds: minutesAgo * 60,
  startedAt: at(minutesAgo),
  args: 'python3 /home/sparkuser/srv/hd-worker/worker.py',
});

function evidence(
  tail: string[],
  o: { processes?: WorkerProcessInfo[]; queue?: QueueSnapshot | null; modifiedAgo?: number },
) {
  const probe: SparkEvidence = {
    sparkNow: NOW,
    clockSkewMs: 0,
    workerDir: { path: '/home/sparkuser/srv/hd-worker', exists: true },
    env: { status: 'ok', vars: {} },
    processes: o.processes ?? [proc(4242, 5)],
    log: { status: 'ok', size: 8192, modifiedAt: at(o.modifiedAgo ?? 0.5), tail, truncated: true },
    reach: { status: 'ok', httpStatus: 200, seconds: 0.1 },
    missingSections: [],
  };
  const ev: Evidence = {
    now: NOW,
    rules: DEFAULT_RULES,
    laptop: { source: 'SUPABASE_URL in /l/.env', urlVar: 'SUPABASE_URL', issues: [] },
    supabase: { ok: true, ms: 40 },
    queue: o.queue === null ? undefined : (o.queue ?? queue({ running: [job(J2)] })),
    spark: {
      ok: true,
      target: { host: 'spark', port: 2222, user: 'sparkuser', source: 'SPARK_HOST' },
      fingerprint: 'SHA256:x',
      probe,
      connectMs: 10,
    },
  };
  return ev;
}

const findings = (ev: Evidence, id: string): Finding[] =>
  diagnose(ev, BUILTIN_ERROR_PATTERNS, 'all').filter((f) => f.id === id);

/** A worker that finished J1, claimed J2, was killed without a word, and started again 5 minutes ago. */
const killedSilently = (restartLine = true): Rec[] => [
  { ago: 30, msg: 'worker started pid=4100 url=https://abcdefghijklmnopqrst.supabase.co' },
  { ago: 20, msg: `claimed job ${J1}` },
  { ago: 19, msg: `job ${J1} done assets=12` },
  { ago: 10, msg: `claimed job ${J2}` },
  { ago: 9.5, msg: `job ${J2}: embedding 4096 assets on cuda:0` },
  ...(restartLine ? [{ ago: 5, msg: 'worker started pid=4242 url=https://abcdefghijklmnopqrst.supabase.co' }] : []),
  { ago: 4, msg: 'poll queued=0' },
  { ago: 0.5, msg: 'poll queued=0' },
];

describe('the log read for timing', () => {
  it.each(TIMED)(
    'reads the times of the %s layout on Spark’s clock (a zone-less time by the log’s mtime)',
    (layout) => {
      const tail = pythonLog(layout, killedSilently());
      const lines = readLogLines(tail, at(0.5));
      expect(lines.filter((l) => l.at).map((l) => l.at?.toISOString())).toEqual(
        [30, 20, 19, 10, 9.5, 5, 4, 0.5].map((m) => at(m).toISOString()),
      );
    },
  );

  it('reads the reference worker’s own layout (sandbox/spark/worker.mjs)', () => {
    const line = `${at(5).toISOString()} INFO worker started pid=4242 url=http://127.0.0.1:39011`;
    const [l] = readLogLines([line], at(5));
    expect(l.at).toEqual(at(5));
    expect(isWorkerStart(l)).toBe(true);
  });

  const starts: [msg: string, name: string, start: boolean][] = [
    ['worker started pid=4242 url=https://x.supabase.co', 'worker', true],
    ['Worker started', 'app', true],
    ['Worker starting', '__main__', true],
    ['worker is starting', 'root', true],
    ['Starting worker (concurrency=1)', '__main__', true],
    ['started', 'worker', true],
    ['starting up', 'hd_worker', true],
    // RQ's own start line, rq/worker.py: self.log.info('Worker %s started with PID %d, version %s', self.key, …).
    ['Worker rq:worker:0f3a9c started with PID 4242, version 1.16.2', 'rq.worker', true],
    ['started', 'uvicorn.error', false],
    [`worker started job ${J2}`, 'worker', false],
    [`job ${J2} started`, 'worker', false],
    ['poll queued=0', 'worker', false],
  ];
  it.each(starts)('takes "%s" (logger %s) for a worker start: %s', (msg, name, start) => {
    for (const layout of LAYOUTS) {
      const [line] = readLogLines(pythonLog(layout, [{ ago: 1, msg, name }]), at(1));
      expect(isWorkerStart(line), `${layout}: ${line.raw}`).toBe(start);
    }
  });
});

describe('worker-killed-mid-job', () => {
  it.each(LAYOUTS)('names the job the killed worker held (%s layout)', (layout) => {
    const ev = evidence(pythonLog(layout, killedSilently()), {});
    const [f] = findings(ev, 'worker-killed-mid-job');
    expect(f.severity).toBe('warning');
    expect(f.jobIds).toEqual([J2]);
    expect(f.requeueSafe).toBe(false);
    expect(f.title).toBe('a job died with the worker: it ended mid-job and was started again');
    expect(f.evidence[0]).toMatch(
      new RegExp(
        `^job ${J2} began.*claimed job ${J2}.*no line says it ended; still running in the queue \\(started 10 min ago\\)$`,
      ),
    );
    expect(f.evidence[1]).toMatch(/^the worker started again after it: ".*worker started pid=4242/);
    expect(f.evidence[2]).toContain(`job ${J2}: embedding 4096 assets`);
    // The pid the dead process logged leads to the OOM killer's line.
    expect(f.fix).toContain('killed process (4100)');
    expect(f.fix).toContain(`--id ${J2}`);
  });

  it.each(TIMED)('tells it by the process start time when the worker logs no start line (%s layout)', (layout) => {
    const ev = evidence(pythonLog(layout, killedSilently(false)), {});
    const [f] = findings(ev, 'worker-killed-mid-job');
    expect(f.jobIds).toEqual([J2]);
    expect(f.evidence[1]).toBe(
      `the worker process (pid 4242) started at ${at(5).toISOString()}, after the job's last line`,
    );
    expect(f.evidence[2]).toContain(`job ${J2}: embedding`);
  });

  it('counts a job failed with no error as killed too', () => {
    const failed = job(J2, { status: 'failed', error: null, finished_at: at(4).toISOString() });
    const ev = evidence(pythonLog('asctime', killedSilently()), { queue: queue({ failed: [failed] }) });
    expect(findings(ev, 'worker-killed-mid-job')[0].evidence[0]).toMatch(/failed in the queue with no error$/);
  });

  it('is safe to requeue when the worker stopped on a signal it caught and never finished the job', () => {
    const recs: Rec[] = [
      ...killedSilently().slice(0, 5),
      { ago: 6, msg: 'worker stopping signal=SIGTERM' },
      { ago: 5, msg: 'worker started pid=4242 url=https://abcdefghijklmnopqrst.supabase.co' },
    ];
    const [f] = findings(evidence(pythonLog('basic', recs), {}), 'worker-killed-mid-job');
    expect(f.title).toBe('a job was cut short when the worker stopped (SIGTERM) and never finished');
    expect(f.requeueSafe).toBe(true);
    expect(f.jobIds).toEqual([J2]);
  });

  it('is not safe to requeue when the worker crashed (a traceback) before saying it stopped', () => {
    const recs: Rec[] = [
      ...killedSilently().slice(0, 5),
      { ago: 6.1, msg: 'unhandled error in the poll loop', level: 'ERROR', exc: 'import' },
      { ago: 6, msg: 'worker stopped' },
      ...killedSilently().slice(5),
    ];
    const [f] = findings(evidence(pythonLog('asctime', recs), {}), 'worker-killed-mid-job');
    expect(f.requeueSafe).toBe(false);
    expect(f.evidence[2]).toContain('worker stopped');
  });

  it('says "stopped" without a signal when the stop line names none', () => {
    const recs: Rec[] = [
      ...killedSilently().slice(0, 5),
      { ago: 6, msg: 'shutting down' },
      ...killedSilently().slice(5),
    ];
    const [f] = findings(evidence(pythonLog('json', recs), {}), 'worker-killed-mid-job');
    expect(f.title).toBe('a job was cut short when the worker stopped and never finished');
    expect(f.requeueSafe).toBe(true);
  });

  const settled: [name: string, recs: () => Rec[], over: Parameters<typeof evidence>[1]][] = [
    [
      'the job ended before the restart',
      () => [
        ...killedSilently().slice(0, 5),
        { ago: 8, msg: `job ${J2} done assets=4096` },
        ...killedSilently().slice(5),
      ],
      {},
    ],
    ['the new process claimed the job again', () => [...killedSilently(), { ago: 0.2, msg: `claimed job ${J2}` }], {}],
    ['the queue has the job done', killedSilently, { queue: queue({ done: job(J2, { status: 'done' }) }) }],
    [
      'the queue has the job failed with an error (the failure patterns judge it)',
      killedSilently,
      { queue: queue({ failed: [job(J2, { status: 'failed', error: 'CUDA out of memory' })] }) },
    ],
    [
      'two programs run in the folder and the log has no start line',
      () => killedSilently(false),
      { processes: [proc(4242, 5), proc(5151, 120)] },
    ],
    [
      'the process started before the job began (the log has no start line)',
      () => killedSilently(false),
      { processes: [proc(4242, 60)] },
    ],
  ];
  it.each(settled)('is not reported when %s', (_name, recs, over) => {
    expect(findings(evidence(pythonLog('asctime', recs()), over), 'worker-killed-mid-job')).toEqual([]);
  });

  // The reference worker's own lines (sandbox/spark/worker.mjs: `${ISO} ${LEVEL} ${message}`, its messages verbatim).
  const reference = (ago: number, level: string, msg: string) => `${at(ago).toISOString()} ${level} ${msg}`;
  const refStart = (ago: number, pid: number) =>
    reference(ago, 'INFO', `worker started pid=${pid} url=http://127.0.0.1:39011`);
  const endings: [name: string, line: string, killed: boolean][] = [
    ['done', reference(8, 'INFO', `job ${J2} done assets=12`), false],
    ['failed', reference(8, 'ERROR', `job ${J2} failed: ValueError: Circular reference detected`), false],
    ['finish failed', reference(8, 'ERROR', `job ${J2} finish failed: HTTP 503`), false],
    [
      'changed meanwhile',
      reference(8, 'WARN', `job ${J2} was changed by someone else while running; result not written`),
      false,
    ],
    ['claimed by another worker', reference(8, 'INFO', `job ${J2} claimed by another worker; skipping`), false],
    ['nothing (killed)', reference(8, 'INFO', 'poll queued=3'), true],
  ];
  it.each(endings)('reads the reference worker’s job ending "%s" (killed: %s)', (_name, ending, killed) => {
    const tail = [refStart(30, 4100), reference(10, 'INFO', `job ${J2} claimed`), ending, refStart(5, 4242)];
    const ev = evidence(tail, { queue: null });
    expect(findings(ev, 'worker-killed-mid-job').map((f) => f.jobIds)).toEqual(killed ? [[J2]] : []);
  });

  it('judges by the log alone in diagnose-env (no queue read), and says so', () => {
    const ev = evidence(pythonLog('asctime', killedSilently()), { queue: null });
    const f = diagnose(ev, BUILTIN_ERROR_PATTERNS, 'env').find((x) => x.id === 'worker-killed-mid-job');
    expect(f?.evidence[0]).toMatch(/the queue was not read: whether it still runs there is not known$/);
  });
});

/** A deploy that lacks a module: each run starts, fails to import it, dies; the supervisor starts it again. */
function crashing(startsAgo: readonly number[], startMsg = 'Starting worker'): Rec[] {
  return [
    { ago: 120, msg: `job ${J3} done assets=3` },
    ...startsAgo.flatMap((ago): Rec[] => [
      { ago, msg: startMsg },
      { ago: ago - 0.05, msg: 'worker crashed', level: 'ERROR', exc: 'import' },
    ]),
  ];
}

describe('worker-crash-loop', () => {
  it.each(TIMED)('is reported for 3 starts in 7 minutes and a young process (%s layout)', (layout) => {
    const tail = pythonLog(layout, crashing([8, 5, 1]));
    const ev = evidence(tail, { processes: [proc(4300, 1)], modifiedAgo: 0.95, queue: queue() });
    const [f] = findings(ev, 'worker-crash-loop');
    expect(f.severity).toBe('critical');
    expect(f.requeueSafe).toBe(false);
    expect(f.title).toBe('the worker is in a crash loop: 3 starts in 7 min, the process is 1 min old');
    expect(f.evidence[0]).toBe(`3 worker starts in the log from ${at(8).toISOString()} to ${at(1).toISOString()}`);
    expect(f.evidence).toContain('the worker process (pid 4300) is 1 min old');
    // The genuine traceback's last line: what each dead run said.
    expect(f.evidence.join('\n')).toContain("No module named 'hd_gpu_kernels'");
  });

  it('is reported in basicConfig’s default layout (no times) when no run between the starts did any work', () => {
    const tail = pythonLog('basic', crashing([8, 5, 1], 'started'));
    expect(tail).toContain('INFO:worker:started');
    expect(tail).toContain("ModuleNotFoundError: No module named 'hd_gpu_kernels'");
    const [f] = findings(evidence(tail, { processes: [proc(4300, 1)], queue: queue() }), 'worker-crash-loop');
    expect(f.title).toBe('the worker is in a crash loop: 3 starts, the process is 1 min old');
    expect(f.evidence[0]).toMatch(/^3 worker starts at the end of the log \(it has no times\)/);
  });

  it('is reported when each dead run says it exits after its traceback (a finally clause), not a requested stop', () => {
    const recs = crashing([8, 5, 1]).flatMap((r) => (r.exc ? [r, { ago: r.ago - 0.01, msg: 'worker exiting' }] : [r]));
    const ev = evidence(pythonLog('asctime', recs), { processes: [proc(4300, 1)], queue: queue() });
    expect(findings(ev, 'worker-crash-loop')).toHaveLength(1);
  });

  it('is reported instead of worker-down while no process runs between two starts (the loop is the cause)', () => {
    const ev = evidence(pythonLog('asctime', crashing([9, 6, 3])), {
      processes: [],
      modifiedAgo: 2.95,
      queue: queue(),
    });
    const ids = diagnose(ev, BUILTIN_ERROR_PATTERNS, 'env').map((f) => f.id);
    expect(ids).toContain('worker-crash-loop');
    expect(ids).not.toContain('worker-down');
    expect(findings(ev, 'worker-crash-loop')[0].evidence).toContain(
      'no worker process runs right now; the last start was 3 min ago',
    );
  });

  const healthy: [name: string, layout: Layout, recs: () => Rec[], processes: WorkerProcessInfo[]][] = [
    ['starts 30 minutes apart', 'asctime', () => crashing([61, 31, 1]), [proc(4300, 1)]],
    ['a process up for an hour after a burst of starts', 'asctime', () => crashing([68, 65, 61]), [proc(4300, 61)]],
    [
      'restarts that each stopped on their own (an operator restarting it)',
      'asctime',
      () => [
        { ago: 8, msg: 'Starting worker' },
        { ago: 6, msg: 'worker stopping signal=SIGTERM' },
        { ago: 5, msg: 'Starting worker' },
        { ago: 3, msg: 'worker stopping signal=SIGTERM' },
        { ago: 1, msg: 'Starting worker' },
      ],
      [proc(4300, 1)],
    ],
    [
      'runs that finished jobs (no times in the log)',
      'basic',
      () => [
        { ago: 8, msg: 'started' },
        { ago: 7, msg: `job ${J1} done assets=1` },
        { ago: 5, msg: 'started' },
        { ago: 4, msg: `job ${J3} done assets=2` },
        { ago: 1, msg: 'started' },
      ],
      [proc(4300, 1)],
    ],
    ['two starts only', 'asctime', () => crashing([5, 1]), [proc(4300, 1)]],
  ];
  it.each(healthy)('is not reported for %s', (_name, layout, recs, processes) => {
    expect(findings(evidence(pythonLog(layout, recs()), { processes, queue: queue() }), 'worker-crash-loop')).toEqual(
      [],
    );
  });
});
