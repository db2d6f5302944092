/**
 * Supabase broken on purpose, for every runbook; then the retry rules (reads retry, bounded; writes never retry
 * blindly) and writes whose answer is an error, lost or late. One sandbox for the file, faults through its controls.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import type { HttpEvent, HttpFault } from '../../sandbox/stats.ts';
import { runRunbook, type Sandbox, startSandbox } from '../helpers/sandbox.ts';
import {
  closedPort,
  envVariant,
  expectClear,
  faultCase,
  HANG_MS,
  insertFailed,
  jobRows,
  NO_GATE,
  observe,
  RUNBOOKS,
  type Run,
  type RunbookName,
  requestsOfRun,
  requeueResults,
  run,
  runbookRequests,
  runbookWrites,
  tempDir,
  triesByRequest,
  withControls,
} from './harness.ts';

let sb: Sandbox;

beforeAll(async () => {
  // A short wait for a pool connection (Supabase: 10 s), so the pool-exhausted case answers within --timeout 2.
  sb = await startSandbox({ scenario: 'circular-metadata', poolTimeoutMs: 300 });
});

afterAll(async () => {
  await sb?.down();
});

interface SupabaseFault {
  name: string;
  fault?: HttpFault;
  /** Instead of a fault: a laptop config pointing somewhere else. */
  env?: () => Promise<Record<string, string>>;
  says: RegExp;
  finding: string;
  /**
   * The runbook must give up at --timeout: its JSON report (the finding's cause, or requeue's error) says so in the
   * words of `says`, as the output does.
   */
  givesUp?: boolean;
  /** --timeout SECONDS, when not the harness's default. */
  timeout?: string;
  /**
   * An answer of the gateway in front of the API: no HTML may reach the output, and each read is asked this many
   * times in all (3: retried twice; 1: never retried).
   */
  gateway?: { tries: number };
}

/** Markup on the terminal or in a report: what an HTML error page must never become. */
const MARKUP = /<!DOCTYPE|<\/?(?:html|head|title|body|div|span|h1|script)\b|cf-error-details|&bull;/i;

const FAULTS: SupabaseFault[] = [
  {
    name: '401: the key is rejected',
    fault: { api: 'cloud', kind: 'status', status: 401 },
    says: /the key was rejected \(401/,
    finding: 'supabase-key-rejected',
  },
  {
    name: '403: permission denied',
    fault: { api: 'cloud', kind: 'status', status: 403 },
    says: /permission denied \(403/,
    finding: 'supabase-key-rejected',
  },
  {
    name: 'missing table (404 PGRST205; 42P01 on PostgREST 12)',
    fault: { api: 'cloud', kind: 'status', status: 404 },
    says: /table hd_ingestion_jobs not found \(404 (PGRST205|42P01)\)/,
    finding: 'jobs-table-missing',
  },
  {
    name: '500: internal error',
    fault: { api: 'cloud', kind: 'status', status: 500 },
    says: /the API failed \(500/,
    finding: 'supabase-unreachable',
  },
  {
    name: '503 on every try',
    fault: { api: 'cloud', kind: 'status', status: 503 },
    says: /the API failed \(503/,
    finding: 'supabase-unreachable',
  },
  {
    name: 'an answer slower than --timeout 1',
    fault: { api: 'cloud', kind: 'slow', delayMs: 60_000 },
    says: /no answer from 127\.0\.0\.1:\d+ within 1000 ms/,
    finding: 'supabase-unreachable',
    timeout: '1',
    // Its own timeout message, not the stopwatch, shows the runbook gave up; a runbook that waited for the answer
    // (60 s) would run past the harness's hang limit (30 s) and fail the case. How many tries, with which backoff, is
    // counted in test/unit/jobs-db.test.ts and test/unit/http.test.ts, where no clock is real.
    givesUp: true,
  },
  {
    name: 'connection refused',
    env: async () => ({ SUPABASE_URL: `http://127.0.0.1:${await closedPort()}` }),
    says: /connection to 127\.0\.0\.1:\d+ refused/,
    finding: 'supabase-unreachable',
  },
  {
    name: 'malformed JSON (a body cut short)',
    fault: { api: 'cloud', kind: 'malformed-json' },
    says: /answered 200 with a body that is not JSON/,
    finding: 'supabase-unreachable',
  },
  {
    name: 'connection reset before the answer',
    fault: { api: 'cloud', kind: 'reset' },
    says: /connection to 127\.0\.0\.1:\d+ was reset/,
    finding: 'supabase-unreachable',
  },
  // The gateway in front of Supabase: Cloudflare's captured pages (test/fixtures/gateway), Supabase's own 540/544.
  {
    name: 'gateway 520: Cloudflare error page (HTML)',
    fault: { api: 'cloud', kind: 'gateway', status: 520 },
    says: /the gateway in front of Supabase \(Cloudflare\) answered 520: \S+ \| 520: Web server is returning an unknown error/,
    finding: 'supabase-unreachable',
    gateway: { tries: 3 },
  },
  {
    name: 'gateway 522: Cloudflare error page (HTML)',
    fault: { api: 'cloud', kind: 'gateway', status: 522 },
    says: /the gateway in front of Supabase \(Cloudflare\) answered 522: \S+ \| 522: Connection timed out/,
    finding: 'supabase-unreachable',
    gateway: { tries: 3 },
  },
  {
    name: 'gateway 524: Cloudflare error page (HTML)',
    fault: { api: 'cloud', kind: 'gateway', status: 524 },
    says: /the gateway in front of Supabase \(Cloudflare\) answered 524: \S+ \| 524: A timeout occurred/,
    finding: 'supabase-unreachable',
    gateway: { tries: 3 },
  },
  {
    name: 'gateway 540: the project is paused',
    fault: { api: 'cloud', kind: 'gateway', status: 540 },
    says: /the Supabase project at 127\.0\.0\.1:\d+ is paused \(540: project paused\)/,
    finding: 'supabase-unreachable',
    gateway: { tries: 1 },
  },
  {
    name: "gateway 544: Supabase's gateway timeout",
    fault: { api: 'cloud', kind: 'gateway', status: 544 },
    says: /Supabase's API gateway answered 544: project API gateway timeout/,
    finding: 'supabase-unreachable',
    gateway: { tries: 3 },
  },
  {
    // A proxy with a URL limit far below Supabase's 16 KB: Cloudflare's own 414 page for every longer URL.
    name: "url-too-long: a proxy's 120-byte URL limit, 414 page",
    fault: { api: 'cloud', kind: 'url-too-long', bytes: 120 },
    says: /refused the request's URL as too long \(414: 414 Request-URI Too Large\)/,
    finding: 'supabase-unreachable',
    gateway: { tries: 1 },
  },
  {
    // The sandbox's pool really held (every connection checked out); this file's sandbox waits 300 ms for one
    // instead of Supabase's 10 s, so three tries fit in the runbooks' 2 s per-request timeout.
    name: 'pool-exhausted: every connection held, 504 PGRST003',
    fault: { api: 'cloud', kind: 'pool-exhausted' },
    says: /the database pool was saturated \(504 PGRST003: Timed out acquiring connection from connection pool\.\)/,
    finding: 'supabase-unreachable',
    gateway: { tries: 3 },
  },
];

describe('Supabase faults', () => {
  for (const f of FAULTS) {
    for (const runbook of RUNBOOKS) {
      faultCase(
        {
          group: 'Supabase',
          runbook,
          name: f.name,
          expected: runbook === 'requeue' ? 'exit 2 · error + fix, nothing written' : `exit 2 · ${f.finding}`,
        },
        async () => {
          const env = f.env ? envVariant(sb, await f.env()) : sb.envFile;
          await sb.resetStats();
          const r = await withControls(sb, f.fault ? { httpFault: f.fault } : {}, () =>
            run(runbook, ['--env-file', env, ...(f.timeout ? ['--timeout', f.timeout] : [])]),
          );
          expectClear(r, {
            code: 2,
            says: f.says,
            ...(runbook === 'requeue' ? {} : { finding: f.finding }),
          });
          if (runbook === 'requeue') expect(r.stderr).toMatch(/^error: could not read the jobs: /m);
          if (f.givesUp) expect(reportedFailure(r, runbook, f.finding)).toMatch(f.says);
          const events = (await sb.stats()).events;
          expect(runbookWrites(events)).toEqual([]);
          if (f.gateway) expectGatewayNamed(r, runbook, f, events);
        },
      );
    }
  }
});

/**
 * The watch (not in the harness's bundle: run from its source, as an operator does) with `--once`: a queue it never
 * read is exit 2, with the failure's own line and fix.
 */
describe('Supabase faults in the watch', () => {
  for (const f of FAULTS.filter((x) => x.gateway)) {
    faultCase(
      { group: 'Supabase', runbook: 'watch', name: f.name, expected: 'exit 2 · the queue could not be read: its line' },
      async () => {
        await sb.resetStats();
        const dir = tempDir('watch');
        const startedAt = Date.now();
        const r = await withControls(sb, { httpFault: f.fault }, () =>
          runRunbook('watch', ['--config', sb.envFile, '--once', '--ci', '--timeout', '2'], {
            env: { HOME: dir, XDG_STATE_HOME: path.join(dir, 'state') },
            timeoutMs: HANG_MS,
          }),
        );
        const run = { ...r, ms: Date.now() - startedAt, startedAt };
        observe(`exit ${r.code}`);
        expectClear(run, { code: 2, says: f.says });
        expect(r.stderr).toMatch(/^error: the queue could not be read: /m);
        expect(`${r.stdout}\n${r.stderr}`, 'markup in the output').not.toMatch(MARKUP);
        const events = (await sb.stats()).events;
        expect(runbookWrites(events)).toEqual([]);
        const reads = triesByRequest(requestsOfRun(run, events));
        expect(reads.size).toBeGreaterThan(0);
        for (const [read, tries] of reads) expect(tries.length, read).toBe(f.gateway!.tries);
      },
    );
  }
});

/**
 * A gateway answer: named in the report as in the output, no markup anywhere (output, JSON report), and each read
 * asked as often as the rule says (retried twice, or once for a paused project), no more.
 */
function expectGatewayNamed(r: Run, runbook: RunbookName, f: SupabaseFault, events: readonly HttpEvent[]): void {
  const report = JSON.stringify(r.report ?? {});
  expect(`${r.stdout}\n${r.stderr}`, 'markup in the output').not.toMatch(MARKUP);
  expect(report, 'markup in the JSON report').not.toMatch(MARKUP);
  expect(reportedFailure(r, runbook, f.finding)).toMatch(f.says);
  const reads = triesByRequest(requestsOfRun(r, events).filter((e) => e.method === 'GET' || e.method === 'HEAD'));
  expect(reads.size).toBeGreaterThan(0);
  for (const [read, tries] of reads) expect(tries.length, read).toBe(f.gateway!.tries);
  observe(`${reads.size} read${reads.size === 1 ? '' : 's'} × ${f.gateway!.tries}`);
}

/** What the JSON report gives as the reason of the failure: requeue's error, or the finding's cause and evidence. */
function reportedFailure(r: Run, runbook: RunbookName, finding: string): string {
  const report = r.report as
    | { error?: { message?: string }; findings?: Array<{ id: string; cause?: string; evidence?: string[] }> }
    | undefined;
  if (runbook === 'requeue') return report?.error?.message ?? '';
  return (report?.findings ?? [])
    .filter((x) => x.id === finding)
    .flatMap((x) => [x.cause ?? '', ...(x.evidence ?? [])])
    .join('\n');
}

const JOBS_PATH = '/rest/v1/hd_ingestion_jobs';
/** The runbook's per-call budget in the 503 cases, where a timeout is not what is tested (see below). */
const PATIENT_TIMEOUT = ['--timeout', '10'];

/** Waits (up to the hang limit) until the sandbox has recorded a request matching `match`, and returns it. */
async function recorded(match: (e: HttpEvent) => boolean): Promise<HttpEvent> {
  const deadline = Date.now() + HANG_MS;
  for (;;) {
    const found = runbookRequests((await sb.stats()).events).find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`the sandbox recorded no such request within ${HANG_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('retries', () => {
  beforeAll(async () => {
    // The worker's polls would take the faults meant for the runbook.
    await sb.worker('stop');
  });
  afterAll(async () => {
    await sb.worker('start');
  });

  faultCase(
    {
      group: 'Retries',
      runbook: 'debug-stuck-jobs',
      name: 'two reads answered 503, then the API recovers',
      expected: 'reads retried with backoff; the run completes (not exit 2)',
    },
    async () => {
      await sb.resetStats();
      const r = await withControls(
        sb,
        // The runbook's own reads (supabase-js): the probe's request from Spark reads the same path, sometimes first.
        {
          httpFault: {
            api: 'cloud',
            method: 'GET',
            path: JOBS_PATH,
            client: 'supabase-js',
            kind: 'status',
            status: 503,
            times: 2,
          },
        },
        // A patient --timeout: with the harness's 2 s, a healthy read that a loaded machine answers late is given up
        // and retried too (or, three times late, fails the run), which is the next cases' subject, not this one's.
        () => run('debug-stuck-jobs', ['--env-file', sb.envFile, ...PATIENT_TIMEOUT]),
      );
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.report?.findings.map((f) => f.id)).toContain('circular-metadata');
      expect(r.report?.findings.map((f) => f.id)).not.toContain('supabase-unreachable');
      const gets = requestsOfRun(r, (await sb.stats()).events).filter((e) => e.method === 'GET');
      const failed = gets.filter((e) => e.status === 503);
      expect(failed).toHaveLength(2);
      // Four reads (queued, running, the last done, the recent failures); each ends answered, after two retries
      // at most. Normally that makes six requests: four, two of them once more. A try that outlived --timeout
      // (the machine more loaded than 10 s per answer) would add one: a retry of the same read, within these bounds.
      const reads = triesByRequest(gets);
      expect([...reads.keys()], JSON.stringify(gets)).toHaveLength(4);
      for (const tries of reads.values()) {
        expect(tries.length).toBeLessThanOrEqual(3);
        expect(tries.at(-1)!.status).toBeLessThan(300);
      }
      // Each 503 was retried: the same read asked again, after the 0.25 s backoff (a lower bound, less the
      // millisecond rounding of the clocks: load only makes the retry later).
      for (const f of failed) {
        const tries = [...reads.values()].find((t) => t.includes(f))!;
        const retry = tries[tries.indexOf(f) + 1];
        expect(retry, `no retry after the 503 of ${f.path}${f.query ?? ''}`).toBeDefined();
        expect(retry.startedAt - f.startedAt).toBeGreaterThanOrEqual(240);
      }
      expect(gets.length).toBeGreaterThanOrEqual(6);
      observe('2 × 503, then 200');
    },
  );

  faultCase(
    {
      group: 'Retries',
      runbook: 'debug-stuck-jobs',
      name: 'every read answered 503',
      expected: 'each read tried 3 times (backoff 0.25 s, 0.5 s), then exit 2',
    },
    async () => {
      await sb.resetStats();
      const r = await withControls(
        sb,
        { httpFault: { api: 'cloud', method: 'GET', path: JOBS_PATH, kind: 'status', status: 503 } },
        () => run('debug-stuck-jobs', ['--env-file', sb.envFile, ...PATIENT_TIMEOUT]),
      );
      expectClear(r, { code: 2, says: /the API failed \(503/, finding: 'supabase-unreachable' });
      const gets = requestsOfRun(r, (await sb.stats()).events).filter((e) => e.method === 'GET');
      // Four reads, each tried three times and no more, every try answered 503.
      const reads = triesByRequest(gets);
      expect([...reads.keys()], JSON.stringify(gets)).toHaveLength(4);
      for (const tries of reads.values()) {
        expect(tries.map((e) => e.status)).toEqual([503, 503, 503]);
        // The backoff before each retry: 0.25 s, then 0.5 s. Lower bounds (less the clocks' millisecond
        // rounding): load only makes a retry later. That the backoff is not longer is counted in
        // test/unit/jobs-db.test.ts, without a real clock.
        expect(tries[1].startedAt - tries[0].startedAt).toBeGreaterThanOrEqual(240);
        expect(tries[2].startedAt - tries[1].startedAt).toBeGreaterThanOrEqual(490);
      }
      expect(gets).toHaveLength(12);
    },
  );

  faultCase(
    {
      group: 'Retries',
      runbook: 'diagnose-env',
      name: 'one read slower than --timeout, the next one fast',
      expected:
        'the slow try abandoned at 2 s, retried; the read succeeds (the stopped worker, and the read that took over 1 s with its abandoned try)',
    },
    async () => {
      await sb.resetStats();
      const r = await withControls(
        sb,
        // The runbook's own read (supabase-js), not the probe's request from Spark to the same path.
        {
          httpFault: {
            api: 'cloud',
            method: 'GET',
            path: JOBS_PATH,
            client: 'supabase-js',
            kind: 'slow',
            delayMs: 10_000,
            times: 1,
          },
        },
        () => run('diagnose-env', ['--env-file', sb.envFile]),
      );
      // The worker is stopped for the Retries group (its polls would take the faults): that is the critical finding.
      // The read took the 2 s of its abandoned try too: over a quarter of the statement timeout, so it is named.
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.report?.findings.map((f) => f.id)).toEqual(['worker-down', 'queue-read-slow']);
      expect(r.stdout).toMatch(/^✔ Query Supabase from this machine: answered in \d+ ms; key accepted/m);
      // The run includes the 2 s the slow try was given (a lower bound: load only adds to it).
      expect(r.ms).toBeGreaterThan(2_000);
      // The sandbox records a request when it answers it: the slow try only 10 s after it came in, when the
      // runbook has long moved on. Waiting for it also keeps it out of the cases that follow. (Over 5 s to answer:
      // only the slow try; a healthy answer takes milliseconds, far below that even on a loaded machine.)
      const slow = await recorded(
        (e) => e.method === 'GET' && e.startedAt >= r.startedAt && e.endedAt - e.startedAt > 5_000,
      );
      const gets = requestsOfRun(r, (await sb.stats()).events).filter((e) => e.method === 'GET');
      const tries = triesByRequest(gets).get(`GET ${slow.path}${slow.query ?? ''}`)!;
      // The slow try came first and the same read was asked again, and answered. A 200 is never retried, so only
      // giving up on the slow try explains the second request: a runbook that waited would have asked once. (A
      // second try that outlived --timeout on a very loaded machine makes a third, within the two retries.)
      expect(tries[0]).toEqual(slow);
      expect(tries.length, JSON.stringify(gets)).toBeGreaterThanOrEqual(2);
      expect(tries.length).toBeLessThanOrEqual(3);
      expect(tries.at(-1)!.status).toBe(200);
    },
  );
});

describe('writes', () => {
  let n = 0;
  beforeAll(async () => {
    // Requeued jobs must stay queued so the test can read what was written.
    await sb.worker('stop');
  });
  afterAll(async () => {
    await sb.worker('start');
  });

  interface WriteFault {
    name: string;
    fault: HttpFault;
    rpc: 'off' | 'auto';
    /** What the run must say about the job, and the exit code. */
    outcome: 'requeued' | 'unknown' | 'failed';
    code: number;
    says: RegExp;
    /** Whether the row ends up written (for a late write: after the run). */
    written: boolean;
    /** Wait this long after the run before reading the row (a write that commits late). */
    settleMs?: number;
    timeout?: string;
  }

  const WRITES: WriteFault[] = [
    {
      name: 'the compare-and-set PATCH answered 503 (not written)',
      fault: { api: 'cloud', method: 'PATCH', kind: 'status', status: 503 },
      rpc: 'off',
      outcome: 'unknown',
      code: 1,
      says: /503/,
      written: false,
    },
    {
      name: 'the PATCH committed, its answer lost (reset)',
      fault: { api: 'cloud', method: 'PATCH', kind: 'reset-after' },
      rpc: 'off',
      outcome: 'requeued',
      code: 0,
      says: /requeued 1 of 1 job/,
      written: true,
    },
    {
      name: 'the PATCH slower than --timeout (commits late)',
      // Commits 5 s after it arrived; the runbook gives up at 2 s and reads the job back at once.
      fault: { api: 'cloud', method: 'PATCH', kind: 'slow', delayMs: 5_000 },
      rpc: 'off',
      outcome: 'unknown',
      code: 1,
      says: /no answer from .* within 2000 ms/,
      written: true,
      settleMs: 4_000,
    },
    {
      name: 'the PATCH refused (401: key revoked since the preview)',
      fault: { api: 'cloud', method: 'PATCH', kind: 'status', status: 401 },
      rpc: 'off',
      outcome: 'failed',
      code: 2,
      says: /the key was rejected \(401/,
      written: false,
    },
    {
      name: 'the batch RPC committed, its answer lost (reset)',
      fault: { api: 'cloud', method: 'POST', path: '/rpc/hd_requeue_jobs', kind: 'reset-after', skip: 1 },
      rpc: 'auto',
      outcome: 'requeued',
      code: 0,
      says: /requeued 1 of 1 job/,
      written: true,
    },
    {
      name: "the PATCH answered 522, Cloudflare's page (not written)",
      fault: { api: 'cloud', method: 'PATCH', kind: 'gateway', status: 522 },
      rpc: 'off',
      outcome: 'unknown',
      code: 1,
      says: /answered 522: \S+ \| 522: Connection timed out/,
      written: false,
    },
    {
      name: 'the PATCH answered 540: the project was paused since the preview',
      fault: { api: 'cloud', method: 'PATCH', kind: 'gateway', status: 540 },
      rpc: 'off',
      outcome: 'failed',
      code: 2,
      says: /is paused \(540: project paused\)/,
      written: false,
    },
    {
      name: "the batch RPC answered 524, Cloudflare's page (not written)",
      fault: { api: 'cloud', method: 'POST', path: '/rpc/hd_requeue_jobs', kind: 'gateway', status: 524, skip: 1 },
      rpc: 'auto',
      outcome: 'unknown',
      code: 1,
      says: /answered 524: \S+ \| 524: A timeout occurred/,
      written: false,
    },
    {
      // A proxy with a body limit below the batch: the call is refused before the API sees it.
      name: "the batch RPC's body over a proxy's limit (413 page, not written)",
      fault: { api: 'cloud', method: 'POST', path: '/rpc/hd_requeue_jobs', kind: 'body-too-large', bytes: 300 },
      rpc: 'auto',
      outcome: 'failed',
      code: 2,
      says: /refused the request's body as too large \(413: 413 Request Entity Too Large\)/,
      written: false,
    },
    {
      name: 'the batch RPC answered 503 (not written)',
      fault: { api: 'cloud', method: 'POST', path: '/rpc/hd_requeue_jobs', kind: 'status', status: 503, skip: 1 },
      rpc: 'auto',
      outcome: 'unknown',
      code: 1,
      says: /503/,
      written: false,
    },
  ];

  for (const w of WRITES) {
    faultCase(
      {
        group: 'Writes',
        runbook: 'requeue',
        name: w.name,
        expected: `exit ${w.code} · reported ${w.outcome}; one write, no blind retry${w.outcome === 'unknown' ? '; a rerun reads again, writes once at most' : ''}`,
      },
      async () => {
        const jobType = `fault_write_${++n}`;
        const [id] = await insertFailed(sb, 1, jobType);
        await sb.resetStats();
        const audit = path.join(tempDir('audit'), 'audit.jsonl');
        const args = [
          '--env-file',
          sb.envFile,
          '--job-type',
          jobType,
          '--apply',
          '--yes',
          '--reason',
          'fault harness',
          '--rpc',
          w.rpc,
          ...NO_GATE,
          '--audit',
          audit,
        ];
        const r = await withControls(sb, { httpFault: w.fault }, () => run('requeue', args));
        expectClear(r, { code: w.code, says: w.says, fix: w.outcome !== 'requeued' });
        expect(`${r.stdout}\n${r.stderr}`, 'markup in the output').not.toMatch(MARKUP);
        expect(JSON.stringify(r.report ?? {}), 'markup in the report').not.toMatch(MARKUP);
        const results = requeueResults(r);
        expect(results.map((x) => [x.jobId, x.outcome])).toEqual([[id, w.outcome]]);
        if (w.settleMs) await new Promise((resolve) => setTimeout(resolve, w.settleMs));
        const row = (await jobRows(sb, [id])).get(id)!;
        const history = row.debug?.requeue_history ?? [];
        expect(row.status).toBe(w.written ? 'queued' : 'failed');
        expect(history).toHaveLength(w.written ? 1 : 0);
        // A write the run did not report would be a row written while the run said "failed".
        if (w.outcome === 'failed') expect(row.status).toBe('failed');
        const events = (await sb.stats()).events;
        const writes = runbookWrites(events);
        const patches = writes.filter((e) => e.method === 'PATCH');
        // The first call of the function is the empty probe for it; the second carries the batch.
        const rpcCalls = writes.filter((e) => e.path === '/rest/v1/rpc/hd_requeue_jobs').slice(1);
        const jobWrites = w.rpc === 'off' ? patches : rpcCalls;
        expect(jobWrites, 'the write is never retried').toHaveLength(1);
        if (w.rpc === 'auto') expect(patches).toEqual([]);
        // After a write of unknown outcome, the job is read again (never written again).
        const after = runbookRequests(events).filter((e) => e.startedAt > jobWrites[0].startedAt);
        if (w.outcome !== 'failed') expect(after.some((e) => e.method === 'GET')).toBe(true);
        expect(after.filter((e) => e.method !== 'GET')).toEqual([]);
        observe(`row ${row.status}, ${history.length} history entr${history.length === 1 ? 'y' : 'ies'}`);

        if (w.outcome === 'unknown') {
          // The same command again, the API healthy: it reads the job again and writes it once at most.
          await sb.resetStats();
          const again = await run('requeue', args);
          expect(again.code, again.stdout + again.stderr).toBe(0);
          const after = (await jobRows(sb, [id])).get(id)!;
          expect(after.status).toBe('queued');
          expect(after.debug?.requeue_history ?? []).toHaveLength(1);
          const rerunWrites = runbookWrites((await sb.stats()).events);
          const rerunRpc = rerunWrites.filter((e) => e.path === '/rest/v1/rpc/hd_requeue_jobs').length;
          // Writes of the job: its PATCH, or the batch call after the empty probe for the function.
          const jobWritesAgain = rerunWrites.filter((e) => e.method === 'PATCH').length + Math.max(0, rerunRpc - 1);
          expect(jobWritesAgain).toBe(w.written ? 0 : 1);
          observe(`rerun: ${jobWritesAgain} write, row queued, 1 history entry`);
        }
      },
    );
  }

  faultCase(
    {
      group: 'Writes',
      runbook: 'requeue',
      name: 'two PATCHes answered 504 PGRST003, the pool saturated (injected)',
      expected:
        'exit 0 · concurrency halved, said in the summary; each refused job read back, then written once; all reported',
    },
    async () => {
      const jobType = `fault_write_${++n}`;
      const ids = await insertFailed(sb, 8, jobType);
      await sb.resetStats();
      const audit = path.join(tempDir('audit'), 'audit.jsonl');
      const args = ['--env-file', sb.envFile, '--job-type', jobType, '--apply', '--yes', '--reason', 'fault harness'];
      const r = await withControls(
        sb,
        { httpFault: { api: 'cloud', method: 'PATCH', kind: 'status', status: 504, times: 2 } },
        () => run('requeue', [...args, '--rpc', 'off', '--concurrency', '4', ...NO_GATE, '--audit', audit]),
      );
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const said =
        /the database pool was saturated: concurrency lowered to ([12]) \(2 writes turned away with 504 PGRST003, each read back before it was retried\)/;
      expect(r.stdout).toMatch(said);
      expect(r.stdout).toMatch(/^requeued 8 of 8 jobs; the database pool was saturated: concurrency lowered to [12]/m);
      expect(JSON.stringify(r.report)).toMatch(/the database pool was saturated: concurrency lowered to/);
      expect(requeueResults(r).map((x) => x.outcome)).toEqual(Array(8).fill('requeued'));
      const rows = await jobRows(sb, ids);
      for (const id of ids) {
        expect(rows.get(id)!.status).toBe('queued');
        expect(rows.get(id)!.debug?.requeue_history ?? []).toHaveLength(1);
      }
      const events = requestsOfRun(r, (await sb.stats()).events);
      const patches = events.filter((e) => e.method === 'PATCH');
      expect(patches).toHaveLength(10);
      // Each refused job was read back (its own read by id) after the refusal and before it was sent again.
      for (const refused of patches.filter((e) => e.status === 504)) {
        const id = /id=eq\.([0-9a-f-]{36})/.exec(refused.query ?? '')![1];
        const again = patches.find(
          (e) => e !== refused && e.startedAt >= refused.startedAt && e.query?.includes(`id=eq.${id}`),
        );
        const readBack = events.find(
          (e) => e.method === 'GET' && e.startedAt >= refused.endedAt && (e.query ?? '').includes(id),
        );
        expect(again, `the refused write of ${id} was sent again`).toBeDefined();
        expect(readBack, `the refused job ${id} was read back`).toBeDefined();
        expect(readBack!.startedAt).toBeLessThanOrEqual(again!.startedAt);
      }
      observe(`${patches.length} PATCHes for 8 jobs; ${r.stdout.match(said)?.[0] ?? ''}`);
    },
  );

  faultCase(
    {
      group: 'Writes',
      runbook: 'requeue',
      name: 'the batch RPC turned away once with 504 PGRST003, the pool saturated (injected)',
      expected: 'exit 0 · the batch read back, then sent again in halves; each job written once; the summary says it',
    },
    async () => {
      const jobType = `fault_write_${++n}`;
      const ids = await insertFailed(sb, 4, jobType);
      await sb.resetStats();
      const audit = path.join(tempDir('audit'), 'audit.jsonl');
      const args = ['--env-file', sb.envFile, '--job-type', jobType, '--apply', '--yes', '--reason', 'fault harness'];
      const rpcPath = '/rest/v1/rpc/hd_requeue_jobs';
      const r = await withControls(
        sb,
        // skip 1: the empty probe for the function goes through; the batch's call is turned away, once.
        { httpFault: { api: 'cloud', method: 'POST', path: '/rpc/', kind: 'status', status: 504, skip: 1, times: 1 } },
        () => run('requeue', [...args, '--rpc', 'auto', ...NO_GATE, '--audit', audit]),
      );
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(
        /^requeued 4 of 4 jobs; the database pool was saturated: batches halved \(1 call of the SQL function turned away with 504 PGRST003/m,
      );
      expect(requeueResults(r).map((x) => x.outcome)).toEqual(Array(4).fill('requeued'));
      const rows = await jobRows(sb, ids);
      for (const id of ids) expect(rows.get(id)!.debug?.requeue_history ?? []).toHaveLength(1);
      const events = requestsOfRun(r, (await sb.stats()).events);
      const calls = events.filter((e) => e.path === rpcPath).slice(1);
      expect(calls.map((e) => e.status)).toEqual([504, 200, 200]);
      // Read back between the refused call and the first call sent again.
      expect(
        events.some((e) => e.method === 'GET' && e.startedAt >= calls[0].endedAt && e.endedAt <= calls[1].startedAt),
      ).toBe(true);
      expect(events.filter((e) => e.method === 'PATCH')).toEqual([]);
    },
  );
});
