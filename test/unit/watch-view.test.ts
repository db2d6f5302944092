/**
 * The watch view's aggregation, pure: rows (through the memory db's watchReads, the same filters, orders and limits
 * as the server's) → counts, per-type counts, rates, percentiles, ETA, stalled; and its lines and JSON document.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_RULES } from '../../lib/core/stuck-rules.ts';
import { summaryLine, viewLines, watchDocument } from '../../lib/flows/watch/render.ts';
import { ageText, buildView, eta, percentile, type WatchView, workerView } from '../../lib/flows/watch/view.ts';
import type { Job } from '../../lib/io/jobs-db.ts';
import { createMemoryJobsDb, type MemoryJobsDb } from '../helpers/memory-db.ts';

const NOW = new Date('2026-03-10T12:00:00Z');
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString();
const RUNNING_WORKER = workerView(
  {
    status: 'ok',
    dir: { path: '/srv/hd-worker', exists: true },
    processes: [{ pid: 4242, elapsedSeconds: 3700, startedAt: new Date(ago(3700)), args: 'node worker.mjs' }],
    logWrittenAt: new Date(ago(3)),
  },
  NOW,
);

let n = 0;
function job(db: MemoryJobsDb, over: Partial<Job>): Job {
  n++;
  return db.insert({ id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, attempts: 0, ...over });
}

async function view(db: MemoryJobsDb, limit = 100, rules = DEFAULT_RULES): Promise<WatchView> {
  const r = await db.watchReads({ since: new Date(NOW.getTime() - 5 * 60_000), limit });
  if (!r.ok) throw new Error(r.failure.message);
  return buildView(r.value, RUNNING_WORKER, rules, NOW);
}

/** A queue mid-drain: 6 queued (two types), 1 pending, 2 running, 10 done in the window and 2 before, 3 failed. */
function drainingQueue(): MemoryJobsDb {
  const db = createMemoryJobsDb();
  for (let i = 0; i < 4; i++) job(db, { status: 'queued', job_type: 'import_assets_jsonl', created_at: ago(600 - i) });
  for (let i = 0; i < 2; i++) job(db, { status: 'queued', job_type: 'thumbnail', created_at: ago(100 - i) });
  job(db, { status: 'pending', job_type: 'thumbnail', created_at: ago(50) });
  job(db, { status: 'running', job_type: 'import_assets_jsonl', created_at: ago(200), started_at: ago(20) });
  job(db, { status: 'running', job_type: 'thumbnail', created_at: ago(9000), started_at: ago(8000) });
  // Done in the window: time in queue 10, 20, …, 100 s, each started within the window.
  for (let i = 1; i <= 10; i++) {
    job(db, { status: 'done', created_at: ago(200 + i * 10), started_at: ago(200), finished_at: ago(100) });
  }
  for (let i = 0; i < 2; i++)
    job(db, { status: 'done', created_at: ago(4000), started_at: ago(3900), finished_at: ago(3800) });
  job(db, {
    status: 'failed',
    job_type: 'thumbnail',
    created_at: ago(400),
    started_at: ago(250),
    finished_at: ago(60),
  });
  job(db, { status: 'failed', created_at: ago(5000), started_at: ago(4990), finished_at: ago(4980) });
  job(db, { status: 'failed', created_at: ago(5001), started_at: ago(4991), finished_at: ago(4981) });
  return db;
}

describe('percentile (nearest rank)', () => {
  it.each([
    [[], 50, null],
    [[7], 50, 7],
    [[7], 95, 7],
    [[1, 2, 3, 4], 50, 2],
    [[1, 2, 3, 4], 95, 4],
    [Array.from({ length: 100 }, (_, i) => i + 1), 50, 50],
    [Array.from({ length: 100 }, (_, i) => i + 1), 95, 95],
    [Array.from({ length: 20 }, (_, i) => i + 1), 95, 19],
  ])('%j p%i = %j', (values, p, expected) => {
    expect(percentile(values, p)).toBe(expected);
  });
});

describe('eta', () => {
  it('is empty with nothing queued, not draining when nothing finishes, backlog over done per minute otherwise', () => {
    expect(eta(0, 0)).toEqual({ state: 'empty', minutes: 0 });
    expect(eta(40, 0)).toEqual({ state: 'not-draining', minutes: null });
    expect(eta(40, 8)).toEqual({ state: 'draining', minutes: 5 });
  });
});

describe('buildView over the memory db', () => {
  it('counts by status and by job_type, the rates over the window, time in queue and the ETA', async () => {
    const v = await view(drainingQueue());
    expect(v.counts).toEqual({ queued: 6, pending: 1, running: 2, done: 12, failed: 3 });
    expect(v.backlog).toBe(7);
    expect(v.byJobType.queued).toEqual({
      counts: { import_assets_jsonl: 4, thumbnail: 3 },
      sampled: 7,
      total: 7,
      complete: true,
    });
    expect(v.byJobType.running.counts).toEqual({ import_assets_jsonl: 1, thumbnail: 1 });
    expect(v.byJobType.failed.counts).toEqual({ import_assets_jsonl: 2, thumbnail: 1 });
    expect(v.window).toMatchObject({ done: 10, failed: 1 });
    expect(v.windowMinutes).toBe(5);
    expect(v.perMinute).toEqual({ done: 2, failed: 0.2 });
    // Started in the window: the 10 done (10…100 s), the failed one (150 s), the running one started 20 s ago (180 s).
    expect(v.timeInQueue).toEqual({ p50Seconds: 60, p95Seconds: 180, samples: 12 });
    expect(v.oldestQueued).toMatchObject({ jobType: 'import_assets_jsonl', ageSeconds: 600, overRule: false });
    expect(v.overRule).toEqual({ queued: 0, running: 1 });
    expect(v.eta).toEqual({ state: 'draining', minutes: 3.5 });
    expect(v.stalled).toBe(false);
  });

  it('says when per-type counts come from the bounded list only', async () => {
    const v = await view(drainingQueue(), 3);
    expect(v.counts.queued + v.counts.pending).toBe(7);
    expect(v.byJobType.queued).toEqual({ counts: { import_assets_jsonl: 3 }, sampled: 3, total: 7, complete: false });
    expect(viewLines(v).join('\n')).toContain('queued: import_assets_jsonl 3 (among the 3 oldest of 7)');
  });

  it('is stalled when a queued job is over the rule and nothing was done in the window', async () => {
    const db = createMemoryJobsDb();
    job(db, { status: 'queued', created_at: ago(20 * 60) });
    job(db, { status: 'done', created_at: ago(4000), started_at: ago(3990), finished_at: ago(3980) });
    const v = await view(db);
    expect(v).toMatchObject({ stalled: true, eta: { state: 'not-draining', minutes: null } });
    expect(v.oldestQueued?.overRule).toBe(true);
    expect(viewLines(v).join('\n')).toMatch(/ETA: not draining \(1 queued\/pending, nothing done in the last 5 min\)/);
    expect(viewLines(v)).toContain('STALLED: queued jobs over the rule and nothing done in the window');
    // A per-type rule that allows longer: not over it, not stalled.
    const lenient = { ...DEFAULT_RULES, perJobType: { import_assets_jsonl: { queuedMinutes: 30 } } };
    expect((await view(db, 100, lenient)).stalled).toBe(false);
    // One job done in the window: the queue moves, not stalled.
    job(db, { status: 'done', created_at: ago(100), started_at: ago(90), finished_at: ago(80) });
    expect((await view(db)).stalled).toBe(false);
  });

  it('an empty queue: nothing queued, no time in queue', async () => {
    const v = await view(createMemoryJobsDb());
    expect(v).toMatchObject({ backlog: 0, oldestQueued: null, eta: { state: 'empty' }, stalled: false });
    expect(v.timeInQueue).toEqual({ p50Seconds: null, p95Seconds: null, samples: 0 });
    const lines = viewLines(v);
    expect(lines).toContain('by job_type: nothing queued, running or failed');
    expect(lines).toContain('time in queue: no job started in the last 5 min');
    expect(lines).toContain('ETA: nothing queued');
  });
});

describe('the worker line', () => {
  const dir = { path: '/srv/hd-worker', exists: true };
  const proc = (pid: number, ppid = 1) => ({ pid, ppid, elapsedSeconds: 60, startedAt: new Date(ago(60)), args: 'x' });

  it('names the pid, its start and the log', () => {
    expect(RUNNING_WORKER).toMatchObject({ state: 'running', pid: 4242, upSince: ago(3700) });
    expect(RUNNING_WORKER.line).toBe('pid 4242, up 1 h 2 min (since 2026-03-10T10:58:20Z); log written 3 s ago');
  });

  it.each([
    [
      { status: 'ok', dir, processes: [], logWrittenAt: null },
      'down',
      'no worker process in /srv/hd-worker; no logs/worker.log',
    ],
    [
      { status: 'ok', dir: { ...dir, exists: false }, processes: [], logWrittenAt: null },
      'down',
      '/srv/hd-worker does not exist on Spark',
    ],
    [
      { status: 'ok', dir, processes: [proc(1), proc(2)], logWrittenAt: null },
      'ambiguous',
      '2 programs in /srv/hd-worker (pids 1, 2); no logs/worker.log',
    ],
    [{ status: 'unknown', reason: 'the connection to Spark was lost' }, 'unknown', 'the connection to Spark was lost'],
    [{ status: 'not-configured', reason: 'Spark is not configured' }, 'not-configured', 'Spark is not configured'],
  ] as const)('%j → %s', (reading, state, line) => {
    expect(workerView(reading as Parameters<typeof workerView>[0], NOW)).toMatchObject({ state, line });
  });
});

describe('what a watch says', () => {
  it('ages at a glance', () => {
    expect([ageText(0), ageText(59.4), ageText(90), ageText(3600 * 3 + 300), ageText(86_400 * 3)]).toEqual([
      '0 s',
      '59 s',
      '2 min',
      '3 h 5 min',
      '3 d 0 h',
    ]);
  });

  it('ends with the backlog from the first to the last refresh and what finished meanwhile', async () => {
    const db = drainingQueue();
    const first = await view(db);
    for (const j of db.jobs.values()) if (j.status === 'queued' || j.status === 'pending') j.status = 'done';
    const last = await view(db);
    const line = summaryLine({ seconds: 125, refreshes: 26, first, last });
    expect(line).toBe('watched 2 min (26 refreshes): backlog 7 → 0, drained; 7 done, 0 failed meanwhile');
    expect(summaryLine({ seconds: 10, refreshes: 3, first: last, last })).toContain('backlog 0 → 0, empty');
    expect(summaryLine({ seconds: 10, refreshes: 3, first, last: first })).toContain('backlog 7 → 7, steady');
  });

  it('shows a count that is the planner\'s estimate as "about N", and never a done delta made of two estimates', async () => {
    const db = drainingQueue();
    const exact = await view(db);
    const big = { ...exact, counts: { ...exact.counts, done: 9_912_345 }, estimated: ['done' as const] };
    expect(viewLines(big)[0]).toMatch(/ · done about 9,900,000$/);
    const later = { ...big, counts: { ...big.counts, done: 9_912_345 } };
    expect(summaryLine({ seconds: 60, refreshes: 12, first: big, last: later })).toMatch(
      /; an uncounted number of done, 0 failed meanwhile$/,
    );
    expect(watchDocument(big, { target: {}, exitCode: 0 }).estimatedCounts).toEqual(['done']);
  });

  it('the JSON document holds the view and, for a watch that ran, its summary', async () => {
    const v = await view(drainingQueue());
    const doc = watchDocument(v, { target: { supabase: 'https://x.supabase.co' }, exitCode: 0 });
    expect(doc).toMatchObject({
      runbook: 'watch',
      version: 1,
      exitCode: 0,
      stalled: false,
      counts: v.counts,
      backlog: 7,
      window: { minutes: 5, done: 10, failed: 1 },
      perMinute: { done: 2, failed: 0.2 },
      timeInQueue: { p50Seconds: 60, p95Seconds: 180, samples: 12 },
      eta: { state: 'draining', minutes: 3.5 },
      worker: { state: 'running', pid: 4242 },
    });
    expect(doc).not.toHaveProperty('summary');
    const ran = watchDocument(v, {
      target: {},
      exitCode: 0,
      summary: { seconds: 61, refreshes: 13, first: v, last: v },
    });
    expect(ran.summary).toMatchObject({ seconds: 61, refreshes: 13, backlog: { first: 7, last: 7 } });
  });
});
