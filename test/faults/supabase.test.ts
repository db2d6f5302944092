/**
 * Supabase broken on purpose, for every runbook; then the retry rules (reads retry, bounded; writes never retry
 * blindly) and writes whose answer is an error, lost or late. One sandbox for the file, faults through its controls.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import type { HttpFault } from '../../sandbox/stats.ts';
import { type Sandbox, startSandbox } from '../helpers/sandbox.ts';
import {
  closedPort,
  envVariant,
  expectClear,
  faultCase,
  insertFailed,
  jobRows,
  observe,
  RUNBOOKS,
  requeueResults,
  run,
  runbookRequests,
  runbookWrites,
  tempDir,
  withControls,
} from './harness.ts';

let sb: Sandbox;

beforeAll(async () => {
  sb = await startSandbox({ scenario: 'circular-metadata' });
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
  /** Upper bound for the whole run, in ms (the slow case waits for its timeouts and retries). */
  maxMs?: number;
  /** --timeout SECONDS, when not the harness's default. */
  timeout?: string;
}

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
    name: 'missing table (404 PGRST205)',
    fault: { api: 'cloud', kind: 'status', status: 404 },
    says: /table hd_ingestion_jobs not found \(404 PGRST205\)/,
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
    // Three tries of 1 s and 0.25 + 0.5 s of backoff, plus start-up.
    maxMs: 8_000,
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
          if (f.maxMs) expect(r.ms).toBeLessThan(f.maxMs);
          expect(runbookWrites((await sb.stats()).events)).toEqual([]);
        },
      );
    }
  }
});

const JOBS_PATH = '/rest/v1/hd_ingestion_jobs';

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
        { httpFault: { api: 'cloud', method: 'GET', path: JOBS_PATH, kind: 'status', status: 503, times: 2 } },
        () => run('debug-stuck-jobs', ['--env-file', sb.envFile]),
      );
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.report?.findings.map((f) => f.id)).toContain('circular-metadata');
      expect(r.report?.findings.map((f) => f.id)).not.toContain('supabase-unreachable');
      const gets = runbookRequests((await sb.stats()).events).filter((e) => e.method === 'GET');
      expect(gets.filter((e) => e.status === 503)).toHaveLength(2);
      // Four reads, two of them once more.
      expect(gets).toHaveLength(6);
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
        () => run('debug-stuck-jobs', ['--env-file', sb.envFile]),
      );
      expectClear(r, { code: 2, says: /the API failed \(503/, finding: 'supabase-unreachable' });
      const gets = runbookRequests((await sb.stats()).events).filter((e) => e.method === 'GET');
      expect(gets).toHaveLength(12);
      const spread = Math.max(...gets.map((e) => e.startedAt)) - Math.min(...gets.map((e) => e.startedAt));
      expect(spread).toBeGreaterThanOrEqual(700);
      expect(spread).toBeLessThan(3_000);
    },
  );

  faultCase(
    {
      group: 'Retries',
      runbook: 'diagnose-env',
      name: 'one read slower than --timeout, the next one fast',
      expected: 'the slow try abandoned at 2 s, retried, exit 0',
    },
    async () => {
      await sb.resetStats();
      const r = await withControls(
        sb,
        { httpFault: { api: 'cloud', method: 'GET', path: JOBS_PATH, kind: 'slow', delayMs: 10_000, times: 1 } },
        () => run('diagnose-env', ['--env-file', sb.envFile]),
      );
      expect(r.code, r.stdout + r.stderr).toBe(0);
      // The slow try was given up after 2 s (its answer comes after 10 s), and the retry answered.
      expect(r.ms).toBeGreaterThan(2_000);
      expect(r.ms).toBeLessThan(8_000);
      const gets = runbookRequests((await sb.stats()).events).filter((e) => e.method === 'GET');
      expect(gets.filter((e) => e.status === 200)).toHaveLength(1);
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
          '--skip-fix-gate',
          '--audit',
          audit,
        ];
        const r = await withControls(sb, { httpFault: w.fault }, () => run('requeue', args));
        expectClear(r, { code: w.code, says: w.says, fix: w.outcome !== 'requeued' });
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
});
