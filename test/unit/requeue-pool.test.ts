/**
 * Writes the gateway or a saturated pool answered: a write turned away with 504 PGRST003 halves the writes in
 * flight (never below 1) and the run goes on, each such job read back before it is written again or reported; a
 * gateway error page leaves the write's outcome unknown until read back; a paused project refuses it.
 */
import { describe, expect, it } from 'vitest';
import { createApplier, eachBounded } from '../../lib/actions/requeue/apply.ts';
import { type AuditJobLine, parseAuditText } from '../../lib/actions/requeue/audit.ts';
import { lowerLimit, writeLimit } from '../../lib/actions/requeue/outcome.ts';
import type { Clock } from '../../lib/core/ports.ts';
import { classifyDbError } from '../../lib/io/db-failure.ts';
import { createOutput } from '../../lib/io/output.ts';
import { createMemoryJobsDb, GATEWAY_522, POOL_EXHAUSTED } from '../helpers/memory-db.ts';
import { AUDIT, memFiles, NOW, plannedRequeue } from '../helpers/requeue-plan.ts';

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
function setup(n: number, concurrency: number, rpc = false) {
  const db = createMemoryJobsDb({ rpcInstalled: rpc });
  const jobs = Array.from({ length: n }, (_, i) =>
    db.insert({
      id: id(i + 1),
      status: 'failed',
      attempts: 1,
      error: 'ValueError: Circular reference detected',
      debug: { note: 'keep me' },
      created_at: `2026-03-10T10:00:${String(i % 60).padStart(2, '0')}.000001+00:00`,
      started_at: '2026-03-10T10:30:00.123456+00:00',
      finished_at: '2026-03-10T10:31:00.654321+00:00',
    }),
  );
  const files = memFiles();
  const out = createOutput({ write: () => {}, color: false, spinner: false, verbose: false });
  const { plan, audit } = plannedRequeue(jobs, files, out.redact);
  const sleeps: number[] = [];
  const clock: Clock = { now: () => NOW, sleep: async (ms) => void sleeps.push(ms) };
  const applier = createApplier({ db, clock, out, audit }, plan, { concurrency, rpc: rpc ? 'only' : 'off' });
  const jobLines = () => parseAuditText(files.data.get(AUDIT)).filter((l): l is AuditJobLine => l.outcome !== 'intent');
  const history = (n: number) =>
    ((db.get(id(n))!.debug as { requeue_history?: unknown[] }).requeue_history ?? []).length;
  return { db, plan, applier, jobLines, history, sleeps };
}

describe('the write limit', () => {
  it('halves once per generation: writes already in flight at the old limit do not halve it again', () => {
    const limit = writeLimit(24);
    lowerLimit(limit, 24);
    lowerLimit(limit, 24);
    lowerLimit(limit, 24);
    expect(limit.current).toBe(12);
    lowerLimit(limit, 12);
    expect(limit.current).toBe(6);
    for (const at of [6, 3, 1, 1]) lowerLimit(limit, at);
    expect(limit.current).toBe(1);
    expect(limit.refusals).toBe(8);
  });

  it('eachBounded lets the workers above a lowered limit finish their item and stop', async () => {
    let limit = 8;
    let inFlight = 0;
    const peaks: number[] = [];
    await eachBounded(
      Array.from({ length: 60 }, (_, i) => i),
      () => limit,
      async (i) => {
        inFlight++;
        peaks[i] = inFlight;
        if (i === 10) limit = 2;
        await new Promise((r) => setTimeout(r, 1));
        inFlight--;
      },
      () => false,
    );
    // Items taken once the lowered limit reached every worker: never more than 2 in flight.
    expect(Math.max(...peaks.slice(30))).toBeLessThanOrEqual(2);
    expect(Math.max(...peaks.slice(0, 10))).toBe(8);
  });
});

describe('a write turned away by a saturated pool (504 PGRST003)', () => {
  it('halves the writes in flight, reads the job back, writes it again, and the run goes on', async () => {
    const s = setup(12, 8);
    let turnedAway = 0;
    s.db.failWrite = () => (turnedAway++ < 2 ? { failure: POOL_EXHAUSTED } : undefined);
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped).toBeUndefined();
    expect(run.results.map((r) => r.outcome)).toEqual(Array(12).fill('requeued'));
    for (let n = 1; n <= 12; n++) expect(s.history(n)).toBe(1);
    expect(s.jobLines().map((l) => l.outcome)).toEqual(Array(12).fill('requeued'));
    expect(s.applier.saturation()).toMatch(
      /^the database pool was saturated: concurrency lowered to [1-4] \(2 writes turned away with 504 PGRST003, each read back before it was retried\)$/,
    );
    expect(s.applier.describePath()).toContain('the database pool was saturated: concurrency lowered to');
    expect(s.sleeps.length).toBe(2);
  });

  it('reads the refused job back before sending it again', async () => {
    const s = setup(3, 4);
    const order: string[] = [];
    let turnedAway = false;
    s.db.failWrite = (jobId) => {
      order.push(`write ${jobId}`);
      if (jobId === id(2) && !turnedAway) {
        turnedAway = true;
        return { failure: POOL_EXHAUSTED };
      }
      return undefined;
    };
    const read = s.db.findJobs.bind(s.db);
    s.db.findJobs = async (f) => {
      order.push(`read ${f.ids?.join(',')}`);
      return read(f);
    };
    await s.applier.apply(s.plan.writes);
    const refused = order.indexOf(`write ${id(2)}`);
    expect(order.slice(refused + 1)).toContain(`read ${id(2)}`);
    expect(order.indexOf(`read ${id(2)}`, refused)).toBeLessThan(order.lastIndexOf(`write ${id(2)}`));
  });

  it('reports a job the worker claimed meanwhile as skipped, never writes it again', async () => {
    const s = setup(2, 2);
    s.db.failWrite = (jobId) => {
      if (jobId !== id(1)) return undefined;
      const row = s.db.jobs.get(id(1))!;
      s.db.jobs.set(id(1), { ...row, status: 'running', attempts: 2, started_at: '2026-03-10T11:59:00.000001+00:00' });
      return { failure: POOL_EXHAUSTED };
    };
    const run = await s.applier.apply(s.plan.writes);
    const r1 = run.results.find((r) => r.jobId === id(1))!;
    expect(r1.outcome).toBe('skipped');
    expect(r1.detail).toMatch(/status failed → running/);
    expect(s.db.get(id(1))!.status).toBe('running');
    expect(run.results.find((r) => r.jobId === id(2))!.outcome).toBe('requeued');
  });

  it('stops, reporting the job not written, when the pool stays saturated', async () => {
    const s = setup(3, 2);
    s.db.failWrite = () => ({ failure: POOL_EXHAUSTED });
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped?.kind).toBe('write-failed');
    expect(run.stopped?.message).toMatch(/^the database pool stayed saturated at 1 write in flight \(504 PGRST003\)$/);
    expect(run.results.filter((r) => r.outcome === 'requeued')).toEqual([]);
    for (let n = 1; n <= 3; n++) expect(s.db.get(id(n))!.status).toBe('failed');
    // Every job announced gets its line: failed (turned away, read back unchanged) or not attempted.
    expect(new Set(s.jobLines().map((l) => l.job_id))).toEqual(new Set([id(1), id(2), id(3)]));
    expect(s.sleeps).toEqual(expect.arrayContaining([250, 500, 1000]));
  });
});

describe('gateway answers to a write', () => {
  it('a 522 page on a PATCH that did commit: read back, requeued, never written twice', async () => {
    const s = setup(2, 2);
    s.db.failWrite = (jobId) => (jobId === id(1) ? { failure: GATEWAY_522, applied: true } : undefined);
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped).toBeUndefined();
    expect(run.results.map((r) => r.outcome)).toEqual(['requeued', 'requeued']);
    expect(s.history(1)).toBe(1);
  });

  it('a 522 page on a PATCH that did not commit: outcome unknown, the run stops for a rerun to settle', async () => {
    const s = setup(2, 1);
    s.db.failWrite = (jobId) => (jobId === id(1) ? { failure: GATEWAY_522 } : undefined);
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped).toMatchObject({ kind: 'outcome-unknown', message: GATEWAY_522.message });
    expect(run.results.find((r) => r.jobId === id(1))?.outcome).toBe('unknown');
    expect(s.db.get(id(1))!.status).toBe('failed');
  });

  it('a paused project (540) refuses the write: not written, the run stops', async () => {
    const s = setup(2, 1);
    const paused = classifyDbError(540, { message: '' }, 'http://memory.local');
    s.db.failWrite = () => ({ failure: paused });
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped).toMatchObject({ kind: 'write-failed', message: paused.message, fix: paused.fix });
    expect(run.results.find((r) => r.jobId === id(1))?.outcome).toBe('failed');
    expect(s.db.get(id(1))!.status).toBe('failed');
  });
});

describe('a call of the SQL function turned away by a saturated pool (504 PGRST003)', () => {
  it('reads the batch back, sends it again in halves after a pause, and the run goes on', async () => {
    const s = setup(6, 4, true);
    let turnedAway = false;
    s.db.failWrite = (jobId) => {
      if (jobId !== id(1) || turnedAway) return undefined;
      turnedAway = true;
      return { failure: POOL_EXHAUSTED };
    };
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped).toBeUndefined();
    expect(run.results.map((r) => r.outcome).sort()).toEqual(Array(6).fill('requeued'));
    for (let n = 1; n <= 6; n++) expect(s.history(n)).toBe(1);
    expect(s.jobLines().map((l) => l.outcome)).toEqual(Array(6).fill('requeued'));
    // The probe, the call turned away, then two halves of three.
    const calls = s.db.calls.filter((c) => c.method === 'rpc').map((c) => c.ids?.length);
    expect(calls).toEqual([0, 6, 3, 3]);
    expect(s.sleeps).toEqual([250]);
    expect(s.applier.saturation()).toBe(
      'the database pool was saturated: batches halved (1 call of the SQL function turned away with 504 PGRST003, each read back before it was retried)',
    );
  });

  it('reports a job changed meanwhile as skipped and sends only the others again', async () => {
    const s = setup(4, 4, true);
    let turnedAway = false;
    s.db.failWrite = (jobId) => {
      if (jobId !== id(1) || turnedAway) return undefined;
      turnedAway = true;
      const row = s.db.jobs.get(id(2))!;
      s.db.jobs.set(id(2), { ...row, status: 'running', attempts: 2 });
      return { failure: POOL_EXHAUSTED };
    };
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped).toBeUndefined();
    expect(run.results.find((r) => r.jobId === id(2))).toMatchObject({ outcome: 'skipped' });
    expect(run.results.filter((r) => r.outcome === 'requeued')).toHaveLength(3);
    expect(s.db.get(id(2))!.status).toBe('running');
  });

  it('stops, every job reported not written, when the pool stays saturated', async () => {
    const s = setup(4, 4, true);
    s.db.failWrite = () => ({ failure: POOL_EXHAUSTED });
    const run = await s.applier.apply(s.plan.writes);
    expect(run.stopped?.kind).toBe('write-failed');
    const outcomes = run.results.map((r) => r.outcome);
    expect(outcomes).toContain('failed');
    expect(outcomes.filter((o) => o !== 'failed' && o !== 'not-attempted')).toEqual([]);
    expect(run.results).toHaveLength(4);
    for (let n = 1; n <= 4; n++) expect(s.db.get(id(n))!.status).toBe('failed');
    expect(new Set(s.jobLines().map((l) => l.job_id)).size).toBe(4);
  });
});
