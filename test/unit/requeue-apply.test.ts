import { describe, expect, it } from 'vitest';
import { createApplier, eachBounded } from '../../lib/actions/requeue/apply.ts';
import {
  type AuditJobLine,
  openAuditLog,
  parseAuditText,
  pendingIntents,
  reconcileAudit,
} from '../../lib/actions/requeue/audit.ts';
import type { RpcMode } from '../../lib/actions/requeue/limits.ts';
import { RunbookError } from '../../lib/core/exit-codes.ts';
import type { Clock } from '../../lib/core/ports.ts';
import type { Files } from '../../lib/io/context.ts';
import type { Job } from '../../lib/io/jobs-db.ts';
import { createOutput } from '../../lib/io/output.ts';
import { createMemoryJobsDb, type MemoryJobsDb, NETWORK_TIMEOUT } from '../helpers/memory-db.ts';
import { AUDIT, memFiles, NOW, PROJECT, plannedRequeue } from '../helpers/requeue-plan.ts';

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
function fakeClock(): Clock {
  let t = NOW.getTime();
  return {
    now: () => new Date(t),
    sleep: async (ms) => {
      t += ms;
    },
  };
}

function seed(db: MemoryJobsDb, n: number): Job[] {
  return Array.from({ length: n }, (_, i) =>
    db.insert({
      id: id(i + 1),
      status: 'failed',
      attempts: 2,
      error: `ValueError: Circular reference detected (job ${i + 1})`,
      debug: { note: 'keep me', last_run: { worker_pid: 7 } },
      created_at: `2026-03-10T10:00:${String(i % 60).padStart(2, '0')}.000001+00:00`,
      started_at: '2026-03-10T10:30:00.123456+00:00',
      finished_at: '2026-03-10T10:31:00.654321+00:00',
    }),
  );
}

const PATHS_UNDER_CAP: [string, { rpcInstalled: boolean; rpc: RpcMode; maxRows: number }][] = [
  ['per job, max-rows 100', { rpcInstalled: false, rpc: 'auto', maxRows: 100 }],
  ['per job, max-rows 30 (each read-back of 100 ids is paged)', { rpcInstalled: false, rpc: 'auto', maxRows: 30 }],
  ['hd_requeue_jobs, max-rows 100', { rpcInstalled: true, rpc: 'auto', maxRows: 100 }],
  ['hd_requeue_jobs, max-rows 30', { rpcInstalled: true, rpc: 'auto', maxRows: 30 }],
];

function setup(
  opts: { jobs?: number; rpcInstalled?: boolean; rpc?: RpcMode; signal?: AbortSignal; maxRows?: number } = {},
) {
  const db = createMemoryJobsDb({ rpcInstalled: opts.rpcInstalled ?? false, maxRows: opts.maxRows });
  const jobs = seed(db, opts.jobs ?? 3);
  const files = memFiles();
  const out = createOutput({ write: () => {}, color: false, spinner: false, verbose: false });
  out.addSecret('super-secret-service-key');
  const { plan, audit } = plannedRequeue(jobs, files, out.redact);
  const applier = createApplier({ db, clock: fakeClock(), out, audit, signal: opts.signal }, plan, {
    concurrency: 4,
    rpc: opts.rpc ?? 'auto',
  });
  const lines = () => parseAuditText(files.data.get(AUDIT));
  const jobLines = () => lines().filter((l): l is AuditJobLine => l.outcome !== 'intent');
  return { db, jobs, files, out, plan, audit, applier, lines, jobLines };
}

describe('under an API max-rows below the batch (Supabase cuts every answer, a function result too)', () => {
  it.each(PATHS_UNDER_CAP)('%s: 250 jobs are all requeued, reported and audited as requeued', async (_n, o) => {
    const s = setup({ jobs: 250, ...o });
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped).toBeUndefined();
    expect(run.results.filter((r) => r.outcome === 'requeued')).toHaveLength(250);
    expect(new Set(run.results.map((r) => r.jobId)).size).toBe(250);
    expect(s.jobLines().map((l) => l.outcome)).toEqual(Array(250).fill('requeued'));
    for (const j of s.jobs) {
      const history = (s.db.get(j.id)!.debug as { requeue_history: unknown[] }).requeue_history;
      expect(history).toHaveLength(1);
    }
    // The exact state before the write comes from the history entry, also for the jobs the server did not list.
    expect(s.jobLines().every((l) => l.before?.status === 'failed' && l.before?.attempts === 2)).toBe(true);
  });

  it('a batch of 500 by default: one call writes 250, and the 150 it did not list are read back by id', async () => {
    const s = setup({ jobs: 250, maxRows: 100, rpcInstalled: true });
    await s.applier.apply(s.plan.writes);
    expect(s.db.calls.filter((c) => c.method === 'rpc' && c.ids?.length).map((c) => c.ids?.length)).toEqual([250]);
    expect(s.applier.describePath()).toContain('500 jobs per call');
  });

  it('a job the server did not list and that changed meanwhile is skipped, named by what changed', async () => {
    const s = setup({ jobs: 3, maxRows: 1, rpcInstalled: true });
    s.db.beforeWrite = (jobId) => {
      if (jobId === id(3)) s.db.jobs.set(jobId, { ...s.db.jobs.get(jobId)!, status: 'running', attempts: 3 });
    };
    const run = await s.applier.apply(s.plan.writes);
    expect(run.results.map((r) => r.outcome)).toEqual(['requeued', 'requeued', 'skipped']);
    expect(run.results[2].detail).toMatch(/^changed since the preview: status failed → running/);
  });

  it('jobs the server did not list and that cannot be read back are unknown (the run stops), never skipped', async () => {
    const s = setup({ jobs: 3, maxRows: 1, rpcInstalled: true });
    s.db.failRead = (f) => (f.ids?.length === 2 ? NETWORK_TIMEOUT : undefined);
    const run = await s.applier.apply(s.plan.writes);
    expect(run.results.map((r) => r.outcome)).toEqual(['requeued', 'unknown', 'unknown']);
    expect(run.stopped?.kind).toBe('outcome-unknown');
    expect(s.jobLines().map((l) => l.outcome)).toEqual(['requeued']);
  });

  it('a lower --rpc-batch splits the calls', async () => {
    const s = setup({ jobs: 250, maxRows: 100, rpcInstalled: true });
    const applier = createApplier({ db: s.db, clock: fakeClock(), out: s.out, audit: s.audit }, s.plan, {
      concurrency: 4,
      rpc: 'only',
      rpcBatch: 100,
    });
    const run = await applier.apply(s.plan.writes);
    expect(run.results.filter((r) => r.outcome === 'requeued')).toHaveLength(250);
    expect(s.db.calls.filter((c) => c.method === 'rpc' && c.ids?.length).map((c) => c.ids?.length)).toEqual([
      100, 100, 50,
    ]);
  });
});

const PATHS: [string, { rpcInstalled: boolean; rpc: RpcMode }, string][] = [
  ['per-job compare-and-set', { rpcInstalled: false, rpc: 'auto' }, 'compareAndSet'],
  ['server-side hd_requeue_jobs', { rpcInstalled: true, rpc: 'auto' }, 'rpc'],
];

describe.each(PATHS)('apply via %s', (_name, opts, writeMethod) => {
  it('requeues, keeps the old error and the rest of debug, and audits each job with before and after', async () => {
    const s = setup(opts);
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped).toBeUndefined();
    expect(run.results.map((r) => r.outcome)).toEqual(['requeued', 'requeued', 'requeued']);
    expect(s.db.calls.some((c) => c.method === writeMethod && c.ids?.length)).toBe(true);
    const row = s.db.get(id(1))!;
    expect(row).toMatchObject({ status: 'queued', attempts: 2, error: null, started_at: null, finished_at: null });
    expect(row.debug).toMatchObject({ note: 'keep me', last_run: { worker_pid: 7 } });
    const history = (row.debug as { requeue_history: Record<string, unknown>[] }).requeue_history;
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({
      by: 'alice@example.com',
      reason: 'fix deployed',
      from_status: 'failed',
      from_error: 'ValueError: Circular reference detected (job 1)',
      from_attempts: 2,
      started_at: '2026-03-10T10:30:00.123456+00:00',
      finished_at: '2026-03-10T10:31:00.654321+00:00',
      run_id: 'run-1',
      op_id: 'op-1',
    });
    expect(s.lines()[0]).toMatchObject({ outcome: 'intent', job_ids: [id(1), id(2), id(3)] });
    const jl = s.jobLines();
    expect(jl.map((l) => [l.job_id, l.outcome])).toEqual([
      [id(1), 'requeued'],
      [id(2), 'requeued'],
      [id(3), 'requeued'],
    ]);
    expect(jl[0].before).toEqual({
      status: 'failed',
      attempts: 2,
      error: 'ValueError: Circular reference detected (job 1)',
      started_at: '2026-03-10T10:30:00.123456+00:00',
      finished_at: '2026-03-10T10:31:00.654321+00:00',
    });
    expect(jl[0].after).toEqual({ status: 'queued', attempts: 2, error: null, started_at: null, finished_at: null });
    expect(jl[0]).toMatchObject({
      run_id: 'run-1',
      by: 'alice@example.com',
      project: { origin: PROJECT.origin, ref: 'mem' },
    });
  });

  it('skips and reports a job the worker claimed after the preview, without overwriting it', async () => {
    const s = setup(opts);
    s.db.beforeWrite = (jobId) => {
      if (jobId !== id(2)) return;
      const row = s.db.jobs.get(jobId)!;
      s.db.jobs.set(jobId, {
        ...row,
        status: 'running',
        attempts: 3,
        started_at: '2026-03-10T12:00:01.000000+00:00',
        finished_at: null,
      });
    };
    const run = await s.applier.apply(s.plan.writes);
    const skipped = run.results.find((r) => r.jobId === id(2))!;
    expect(skipped.outcome).toBe('skipped');
    expect(skipped.detail).toContain('status failed → running');
    expect(s.db.get(id(2))).toMatchObject({
      status: 'running',
      attempts: 3,
      error: 'ValueError: Circular reference detected (job 2)',
    });
    expect(s.db.get(id(2))!.debug).not.toHaveProperty('requeue_history');
    expect(s.jobLines().find((l) => l.job_id === id(2))).toMatchObject({ outcome: 'skipped' });
    expect(run.results.filter((r) => r.outcome === 'requeued')).toHaveLength(2);
  });

  it('settles a lost answer by reading the job back: written is written', async () => {
    const s = setup(opts);
    s.db.failWrite = (jobId) => (jobId === id(1) ? { failure: NETWORK_TIMEOUT, applied: true } : undefined);
    const run = await s.applier.apply(s.plan.writes);
    expect(run.results.find((r) => r.jobId === id(1))?.outcome).toBe('requeued');
    expect(s.jobLines().find((l) => l.job_id === id(1))?.outcome).toBe('requeued');
  });

  it('stops on a write of unknown outcome and leaves its intent for the next run to settle', async () => {
    const s = setup(opts);
    s.db.failWrite = (jobId) => (jobId === id(1) ? { failure: NETWORK_TIMEOUT } : undefined);
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped?.kind).toBe('outcome-unknown');
    expect(run.results.find((r) => r.jobId === id(1))?.outcome).toBe('unknown');
    expect(s.jobLines().some((l) => l.job_id === id(1))).toBe(false);
    const pending = pendingIntents(s.lines());
    expect(pending.flatMap((p) => p.jobIds)).toContain(id(1));
    const settled = await reconcileAudit(
      s.db,
      s.audit,
      pending,
      { origin: PROJECT.origin, ref: 'mem' },
      'run-2',
      () => NOW,
    );
    expect(settled.notWritten).toBeGreaterThanOrEqual(1);
    expect(pendingIntents(s.lines())).toEqual([]);
    expect(s.jobLines().find((l) => l.job_id === id(1))).toMatchObject({ outcome: 'skipped', recovered_by: 'run-2' });
  });

  it('stops on a refused write, records it as not written, and touches nothing else', async () => {
    const s = setup(opts);
    s.db.failWrite = () => ({
      failure: { kind: 'forbidden', status: 403, message: 'permission denied (403)', fix: 'use the service-role key' },
    });
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped).toMatchObject({ kind: 'write-failed', fix: 'use the service-role key' });
    expect(run.results.some((r) => r.outcome === 'requeued')).toBe(false);
    expect(s.db.get(id(1))!.status).toBe('failed');
    expect(pendingIntents(s.lines())).toEqual([]);
  });

  it('never writes a secret into the audit file', async () => {
    const s = setup(opts);
    const row = s.db.jobs.get(id(1))!;
    s.db.jobs.set(id(1), { ...row, error: 'HTTP 401 with apikey super-secret-service-key' });
    await s.applier.apply(s.plan.writes);
    const text = s.files.data.get(AUDIT)!;
    expect(text).not.toContain('super-secret-service-key');
    expect(text).toContain('[redacted]');
  });
});

describe('apply', () => {
  it('falls back to compare-and-set when hd_requeue_jobs is not installed, and says why', async () => {
    const s = setup({ rpcInstalled: false, rpc: 'auto' });
    await s.applier.apply(s.plan.writes);
    expect(s.applier.path()).toBe('cas');
    expect(s.applier.describePath()).toContain('hd_requeue_jobs is not installed');
  });

  it('refuses to write with --rpc only when the function is missing', async () => {
    const s = setup({ rpcInstalled: false, rpc: 'only' });
    await expect(s.applier.apply(s.plan.writes)).rejects.toBeInstanceOf(RunbookError);
    expect(s.db.get(id(1))!.status).toBe('failed');
  });

  it('does not call the server function with --rpc off', async () => {
    const s = setup({ rpcInstalled: true, rpc: 'off' });
    await s.applier.apply(s.plan.writes);
    expect(s.db.calls.some((c) => c.method === 'rpc')).toBe(false);
  });

  it('stops starting writes once interrupted, and settles the announced batch in the audit file', async () => {
    const controller = new AbortController();
    const s = setup({ jobs: 120, rpc: 'off', signal: controller.signal });
    let writes = 0;
    s.db.beforeWrite = () => {
      if (++writes === 10) controller.abort();
    };
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped?.kind).toBe('aborted');
    const requeued = run.results.filter((r) => r.outcome === 'requeued').length;
    expect(requeued).toBeGreaterThanOrEqual(10);
    expect(requeued).toBeLessThan(50);
    expect(run.results).toHaveLength(120);
    // Every job announced got a line; nothing is left pending after a clean interruption.
    expect(pendingIntents(s.lines())).toEqual([]);
    const inDb = [...s.db.jobs.values()]
      .filter((j) => j.status === 'queued')
      .map((j) => j.id)
      .sort();
    const audited = s
      .jobLines()
      .filter((l) => l.outcome === 'requeued')
      .map((l) => l.job_id)
      .sort();
    expect(audited).toEqual(inDb);
  });

  it('keeps at most the given number of writes in flight', async () => {
    let inFlight = 0;
    let peak = 0;
    await eachBounded(
      Array.from({ length: 50 }, (_, i) => i),
      8,
      async () => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 1));
        inFlight--;
      },
      () => false,
    );
    expect(peak).toBe(8);
  });
});

describe('a note another writer adds to debug while the requeue writes (per job)', () => {
  it('is kept: the job is read again and written on top of it, never overwritten', async () => {
    const s = setup({ jobs: 3, rpc: 'off' });
    let noted = false;
    s.db.beforeWrite = (jobId) => {
      if (jobId !== id(2) || noted) return;
      noted = true;
      const row = s.db.jobs.get(jobId)!;
      s.db.jobs.set(jobId, { ...row, debug: { ...(row.debug as object), oncall: 'looked at it' } });
    };
    const run = await s.applier.apply(s.plan.writes);
    expect(run.results.map((r) => r.outcome)).toEqual(['requeued', 'requeued', 'requeued']);
    const debug = s.db.get(id(2))!.debug as { oncall?: string; requeue_history: unknown[] };
    expect(debug.oncall).toBe('looked at it');
    expect(debug.requeue_history).toHaveLength(1);
    // One write missed (debug had moved), one read again, one write held.
    expect(s.db.calls.filter((c) => c.method === 'compareAndSet' && c.ids?.[0] === id(2))).toHaveLength(2);
  });

  it('gives up after a few tries when debug keeps changing, and says so', async () => {
    const s = setup({ jobs: 1, rpc: 'off' });
    let n = 0;
    s.db.beforeWrite = (jobId) => {
      const row = s.db.jobs.get(jobId)!;
      s.db.jobs.set(jobId, { ...row, debug: { ...(row.debug as object), tick: ++n } });
    };
    const run = await s.applier.apply(s.plan.writes);
    expect(run.results[0]).toMatchObject({ outcome: 'skipped' });
    expect(run.results[0].detail).toContain('its debug kept changing while it was written');
    expect((s.db.get(id(1))!.debug as { tick: number }).tick).toBe(n);
    expect(s.db.get(id(1))!.status).toBe('failed');
  });
});

describe('audit file location', () => {
  it('defaults to the XDG state folder, else ~/.local/state; --audit and REQUEUE_AUDIT_FILE override', async () => {
    const { defaultAuditFile, resolveAuditFile } = await import('../../lib/actions/requeue/audit.ts');
    expect(defaultAuditFile({ XDG_STATE_HOME: '/xdg' }, '/home/op')).toBe(
      '/xdg/hd-worker-runbooks/requeue-audit.jsonl',
    );
    expect(defaultAuditFile({ XDG_STATE_HOME: 'relative' }, '/home/op')).toBe(
      '/home/op/.local/state/hd-worker-runbooks/requeue-audit.jsonl',
    );
    expect(resolveAuditFile(undefined, '~/audit.jsonl', {}, '/home/op', '/work')).toBe('/home/op/audit.jsonl');
    expect(resolveAuditFile('a.jsonl', '/ignored', {}, '/home/op', '/work')).toBe('/work/a.jsonl');
  });

  it('never glues a line onto one cut by a kill', () => {
    const files = memFiles();
    files.data.set(AUDIT, '{"run_id":"r0","outcome":"requeu');
    const out = createOutput({ write: () => {}, color: false, spinner: false, verbose: false });
    const log = openAuditLog(files, out.redact, AUDIT, {
      run_id: 'r1',
      op_id: 'o',
      by: 'me',
      reason: null,
      project: { origin: 'x', ref: null },
    });
    log.intent([id(1)], NOW.toISOString(), false);
    expect(parseAuditText(files.data.get(AUDIT))).toEqual([
      expect.objectContaining({ run_id: 'r1', outcome: 'intent' }),
    ]);
  });

  it('opens the file once for all its lines where it can, and again after a close', () => {
    const text: string[] = [];
    const opened: string[] = [];
    const files: Files = {
      read: () => undefined,
      write: () => {},
      append: () => {
        throw new Error('not used when the file can be kept open');
      },
      openAppend: (file) => {
        opened.push(file);
        return { append: (t) => void text.push(t), close: () => void opened.push('closed') };
      },
    };
    const out = createOutput({ write: () => {}, color: false, spinner: false, verbose: false });
    const ctx = { run_id: 'r1', op_id: 'o', by: 'me', reason: null, project: { origin: 'x', ref: null } };
    const log = openAuditLog(files, out.redact, AUDIT, ctx);
    log.intent([id(1), id(2)], NOW.toISOString(), false);
    for (const n of [1, 2])
      log.job({ at: NOW.toISOString(), job_id: id(n), before: null, after: null, outcome: 'skipped' });
    log.close();
    log.job({ at: NOW.toISOString(), job_id: id(3), before: null, after: null, outcome: 'skipped' });
    log.close();
    expect(opened).toEqual([AUDIT, 'closed', AUDIT, 'closed']);
    expect(parseAuditText(text.join('')).map((l) => l.outcome)).toEqual(['intent', 'skipped', 'skipped', 'skipped']);
  });

  it('turns an unreadable audit path into a usage error naming --audit', async () => {
    const { readAuditFile } = await import('../../lib/actions/requeue/audit.ts');
    const files: Files = {
      read: () => {
        throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
      },
      write: () => {},
      append: () => {},
    };
    expect(() => readAuditFile(files, '/tmp')).toThrow(/cannot read the audit file \/tmp: EISDIR/);
  });
});
