/**
 * Many batches: the per-job writes flow from one batch into the next (the next batch read while this one is
 * written), and the SQL function's batches go a few at a time. Every guarantee of one batch at a time holds:
 * each batch announced before its first write, each job written once and audited once, an interruption or a
 * stop settling every announced job, the results in the plan's order for the SQL function.
 */
import { describe, expect, it } from 'vitest';
import { createApplier } from '../../lib/actions/requeue/apply.ts';
import { type AuditJobLine, type AuditLine, parseAuditText, pendingIntents } from '../../lib/actions/requeue/audit.ts';
import { RPC_IN_FLIGHT } from '../../lib/actions/requeue/limits.ts';
import type { Clock } from '../../lib/core/ports.ts';
import { createOutput } from '../../lib/io/output.ts';
import { createMemoryJobsDb, NETWORK_TIMEOUT, POOL_EXHAUSTED } from '../helpers/memory-db.ts';
import { AUDIT, memFiles, NOW, plannedRequeue } from '../helpers/requeue-plan.ts';

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const tick = () => new Promise<void>((r) => setTimeout(r, 1));
const FORBIDDEN = { kind: 'forbidden' as const, status: 403, message: 'permission denied (403)', fix: 'use the key' };

function setup(n: number, o: { rpc?: boolean; concurrency?: number; rpcBatch?: number; signal?: AbortSignal } = {}) {
  const db = createMemoryJobsDb({ rpcInstalled: o.rpc ?? false });
  const jobs = Array.from({ length: n }, (_, i) =>
    db.insert({
      id: id(i + 1),
      status: 'failed',
      attempts: 1,
      error: 'ValueError: Circular reference detected',
      debug: { note: 'keep me' },
      created_at: `2026-03-10T10:${String(Math.floor(i / 60) % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}.000001+00:00`,
      started_at: '2026-03-10T10:30:00.123456+00:00',
      finished_at: '2026-03-10T10:31:00.654321+00:00',
    }),
  );
  const files = memFiles();
  const out = createOutput({ write: () => {}, color: false, spinner: false, verbose: false });
  const { plan, audit } = plannedRequeue(jobs, files, out.redact);
  const clock: Clock = { now: () => NOW, sleep: async () => {} };
  const applier = createApplier({ db, clock, out, audit, signal: o.signal }, plan, {
    concurrency: o.concurrency ?? 24,
    rpc: o.rpc ? 'only' : 'off',
    rpcBatch: o.rpcBatch,
  });
  const lines = (): AuditLine[] => parseAuditText(files.data.get(AUDIT));
  const jobLines = () => lines().filter((l): l is AuditJobLine => l.outcome !== 'intent');
  const intents = () => lines().filter((l) => l.outcome === 'intent') as Extract<AuditLine, { outcome: 'intent' }>[];
  const history = (k: number) =>
    ((db.get(id(k))!.debug as { requeue_history?: unknown[] }).requeue_history ?? []).length;
  return { db, plan, applier, lines, jobLines, intents, history };
}

/** Every job line comes after the intent that names its job. */
function announcedFirst(lines: AuditLine[]): boolean {
  const announced = new Set<string>();
  for (const l of lines) {
    if (l.outcome === 'intent') for (const j of l.job_ids) announced.add(j);
    else if (!announced.has(l.job_id)) return false;
  }
  return true;
}

describe('per job, many batches of 240', () => {
  it('writes each of 500 jobs once, each batch announced before its first write and audited once per job', async () => {
    const s = setup(500);
    expect(s.plan.writes).toHaveLength(500);
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped).toBeUndefined();
    expect(run.results.filter((r) => r.outcome === 'requeued')).toHaveLength(500);
    expect(new Set(run.results.map((r) => r.jobId)).size).toBe(500);
    for (let k = 1; k <= 500; k++) expect(s.history(k)).toBe(1);
    expect(s.intents().map((l) => l.job_ids.length)).toEqual([240, 240, 20]);
    expect(s.jobLines()).toHaveLength(500);
    expect(new Set(s.jobLines().map((l) => l.job_id)).size).toBe(500);
    expect(announcedFirst(s.lines())).toBe(true);
    expect(pendingIntents(s.lines())).toEqual([]);
  });

  it('reads the next batch while this one is written, and never waits for its slowest write', async () => {
    const s = setup(300, { concurrency: 4 });
    const order: string[] = [];
    const read = s.db.findJobs.bind(s.db);
    s.db.findJobs = async (f) => {
      order.push(`read ${f.ids?.[0]}`);
      return read(f);
    };
    // Job 10's write hangs until a write of the second batch has been sent.
    let release!: () => void;
    const hung = new Promise<void>((r) => {
      release = r;
    });
    const write = s.db.compareAndSet.bind(s.db);
    s.db.compareAndSet = async (guard, patch, also) => {
      order.push(`write ${guard.id}`);
      if (guard.id === id(241)) release();
      if (guard.id === id(10)) await hung;
      await tick();
      return write(guard, patch, also);
    };
    const run = await s.applier.apply(s.plan.writes);
    expect(run.results.filter((r) => r.outcome === 'requeued')).toHaveLength(300);
    // Batch 2 (from job 241) was read before the first write of batch 1 went out (100 ids a read).
    expect(order.indexOf(`read ${id(241)}`)).toBeLessThan(order.indexOf(`write ${id(1)}`));
    expect(order.filter((o) => o.startsWith('read'))).toEqual([1, 101, 201, 241].map((k) => `read ${id(k)}`));
    expect(announcedFirst(s.lines())).toBe(true);
  });

  it('an interruption across two open batches leaves every announced job settled and no job unaudited', async () => {
    const controller = new AbortController();
    const s = setup(600, { concurrency: 8, signal: controller.signal });
    let writes = 0;
    s.db.beforeWrite = () => {
      if (++writes === 236) controller.abort();
    };
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped?.kind).toBe('aborted');
    expect(run.results).toHaveLength(600);
    expect(new Set(run.results.map((r) => r.jobId)).size).toBe(600);
    expect(pendingIntents(s.lines())).toEqual([]);
    const queued = [...s.db.jobs.values()].filter((j) => j.status === 'queued').map((j) => j.id);
    const audited = s.jobLines().filter((l) => l.outcome === 'requeued');
    expect(audited.map((l) => l.job_id).sort()).toEqual(queued.sort());
    // The third batch was never reached: never announced, never written.
    expect(s.intents().some((l) => l.job_ids.includes(id(481)))).toBe(false);
    for (let k = 481; k <= 600; k++) expect(s.history(k)).toBe(0);
  });

  it('a batch that cannot be read is not written, and the run stops before the next one', async () => {
    const s = setup(600, { concurrency: 8 });
    s.db.failRead = (f) => (f.ids?.[0] === id(241) ? NETWORK_TIMEOUT : undefined);
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped?.kind).toBe('write-failed');
    expect(run.results.filter((r) => r.outcome === 'requeued').map((r) => r.jobId)).toHaveLength(240);
    for (let k = 241; k <= 600; k++) expect(s.history(k)).toBe(0);
    const failed = run.results.filter((r) => r.outcome === 'failed');
    expect(failed).toHaveLength(240);
    expect(s.intents()).toHaveLength(2);
    expect(pendingIntents(s.lines())).toEqual([]);
    expect(run.results).toHaveLength(600);
  });

  it('a refused write stops the run: nothing written after, every announced job settled', async () => {
    const s = setup(600, { concurrency: 8 });
    s.db.failWrite = (jobId) => (jobId === id(250) ? { failure: FORBIDDEN } : undefined);
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped).toMatchObject({ kind: 'write-failed', fix: 'use the key' });
    expect(run.results).toHaveLength(600);
    expect(pendingIntents(s.lines())).toEqual([]);
    expect(s.history(250)).toBe(0);
    for (let k = 481; k <= 600; k++) expect(s.history(k)).toBe(0);
  });
});

describe('the SQL function, many batches', () => {
  /** Makes each call take a little time and records the most calls in flight at once. */
  function slowRpc(s: ReturnType<typeof setup>, onCall?: (ids: string[]) => void) {
    const rpc = s.db.rpc.bind(s.db);
    const seen = { inFlight: 0, peak: 0, peaks: [] as number[] };
    s.db.rpc = async <T>(fn: string, args: Record<string, unknown>) => {
      seen.inFlight++;
      seen.peak = Math.max(seen.peak, seen.inFlight);
      seen.peaks.push(seen.inFlight);
      onCall?.(((args.p_jobs as { id: string }[]) ?? []).map((g) => g.id));
      await tick();
      await tick();
      try {
        return await rpc<T>(fn, args);
      } finally {
        seen.inFlight--;
      }
    };
    return seen;
  }

  it(`sends up to ${RPC_IN_FLIGHT} calls at once, each job in one call; results in the plan's order, each audited once`, async () => {
    const s = setup(2000, { rpc: true, rpcBatch: 100 });
    const sentIn = new Map<string, number>();
    let calls = 0;
    const seen = slowRpc(s, (ids) => {
      calls++;
      for (const j of ids) sentIn.set(j, (sentIn.get(j) ?? 0) + 1);
    });
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped).toBeUndefined();
    expect(seen.peak).toBe(RPC_IN_FLIGHT);
    expect(calls).toBe(21); // the probe, then 20 batches
    expect([...sentIn.values()].every((n) => n === 1)).toBe(true);
    expect(run.results.map((r) => r.jobId)).toEqual(s.plan.writes.map((w) => w.jobId));
    expect(run.results.every((r) => r.outcome === 'requeued')).toBe(true);
    expect(s.jobLines()).toHaveLength(2000);
    expect(new Set(s.jobLines().map((l) => l.job_id)).size).toBe(2000);
    expect(announcedFirst(s.lines())).toBe(true);
    for (const k of [1, 1000, 2000]) expect(s.history(k)).toBe(1);
    expect(s.applier.describePath()).toContain(`100 jobs per call, ${RPC_IN_FLIGHT} calls in flight`);
  });

  it('never more calls in flight than --concurrency', async () => {
    const s = setup(600, { rpc: true, rpcBatch: 100, concurrency: 2 });
    const seen = slowRpc(s);
    await s.applier.apply(s.plan.writes);
    expect(seen.peak).toBe(2);
  });

  it('a call the pool turns away halves the calls in flight; every job still written once', async () => {
    const s = setup(2000, { rpc: true, rpcBatch: 100 });
    let turnedAway = false;
    s.db.failWrite = (jobId) => {
      if (jobId !== id(301) || turnedAway) return undefined;
      turnedAway = true;
      return { failure: POOL_EXHAUSTED };
    };
    const seen = slowRpc(s);
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped).toBeUndefined();
    expect(run.results.filter((r) => r.outcome === 'requeued')).toHaveLength(2000);
    for (const k of [1, 301, 350, 2000]) expect(s.history(k)).toBe(1);
    // Calls started after the refusal had at most half as many beside them.
    expect(Math.max(...seen.peaks.slice(-8))).toBeLessThanOrEqual(RPC_IN_FLIGHT / 2);
    expect(s.applier.saturation()).toMatch(/^the database pool was saturated: batches halved/);
  });

  it('a refused call stops new calls; the calls in flight end and are reported; its batch is not written', async () => {
    const s = setup(2000, { rpc: true, rpcBatch: 100 });
    s.db.failWrite = (jobId) => (jobId === id(201) ? { failure: FORBIDDEN } : undefined);
    slowRpc(s);
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped).toMatchObject({ kind: 'write-failed', message: FORBIDDEN.message });
    expect(run.results).toHaveLength(2000);
    expect(new Set(run.results.map((r) => r.jobId)).size).toBe(2000);
    for (let k = 201; k <= 300; k++) expect(s.history(k)).toBe(0);
    // The batches sent beside it were written and reported as such; none after them was sent.
    const requeued = run.results.filter((r) => r.outcome === 'requeued').map((r) => r.jobId);
    expect(requeued).toContain(id(1));
    expect(requeued).toContain(id(101));
    expect(requeued.length).toBeLessThanOrEqual(200 + (RPC_IN_FLIGHT - 1) * 100);
    for (const r of requeued) expect(s.history(Number(r.slice(-12)))).toBe(1);
    expect(pendingIntents(s.lines())).toEqual([]);
    expect(run.results.map((r) => r.jobId)).toEqual(s.plan.writes.map((w) => w.jobId));
  });
});
