// The seed's plan and its data (sandbox/seed.ts), without a database: the rows per status, their time windows, and
// error texts that are genuine (the fixtures' own) and known to the failure catalog.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILTIN_ERROR_PATTERNS, matchPattern } from '../../lib/findings/error-patterns.ts';
import { chunkStatement, SEED_ERRORS, SEED_JOB_TYPES, seedPlan } from '../../sandbox/seed.ts';
import { ROOT } from '../helpers/sandbox.ts';

const NOW = new Date('2026-12-02T12:00:00Z');
const now = NOW.getTime() / 1000;
const HOUR = 3600;

describe('seedPlan', () => {
  it("has the issue's scale by default: 1% failed, 0.1% queued, 3 running, the rest done", () => {
    const plan = seedPlan({ jobs: 10_000_000, now: NOW });
    expect(Object.fromEntries(plan.map((g) => [g.status, g.count]))).toEqual({
      done: 9_889_997,
      failed: 100_000,
      queued: 10_000,
      running: 3,
    });
  });

  it('spreads done over 90 days, failures over the last day, the queued over the last two hours', () => {
    const plan = Object.fromEntries(seedPlan({ jobs: 5_000, now: NOW }).map((g) => [g.status, g]));
    expect(plan.done.from).toBe(now - 90 * 24 * HOUR);
    // A finished job's created_at plus its wait and run (at most 150 s) stays in the past; a running one's start too.
    for (const g of [plan.done, plan.failed]) expect(g.to + 150).toBeLessThanOrEqual(now);
    for (const g of [plan.queued, plan.running]) expect(g.to + 30).toBeLessThanOrEqual(now);
    expect(plan.failed.from).toBeGreaterThanOrEqual(now - 24 * HOUR);
    expect(plan.queued.from).toBe(now - 2 * HOUR);
    expect(plan.running.from).toBeGreaterThanOrEqual(now - 5 * 60);
  });

  it.each([
    [{ jobs: 1_000, failedPercent: 100 }, { failed: 1_000 }],
    [
      { jobs: 1_000, failedPercent: 10, queuedPercent: 5 },
      { done: 847, failed: 100, queued: 50, running: 3 },
    ],
    [
      { jobs: 2, failedPercent: 50, queuedPercent: 50 },
      { failed: 1, queued: 1 },
    ],
    [{ jobs: 10, failedPercent: 0, queuedPercent: 0, running: 0 }, { done: 10 }],
  ])('%j gives %j, adding up to the jobs asked for', (o, counts) => {
    const plan = seedPlan({ ...o, now: NOW });
    expect(Object.fromEntries(plan.map((g) => [g.status, g.count]))).toEqual(counts);
    expect(plan.reduce((n, g) => n + g.count, 0)).toBe(o.jobs);
  });
});

describe('chunkStatement', () => {
  it.each(['done', 'failed', 'queued', 'running'] as const)('binds every value it names (%s)', (status) => {
    const g = seedPlan({ jobs: 100_000, now: NOW }).find((x) => x.status === status)!;
    const s = chunkStatement(g, 1, g.count);
    const named = new Set([...s.text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
    expect([...named].sort((a, b) => a - b)).toEqual(s.values.map((_, k) => k + 1));
    expect(s.text).toContain(`generate_series(1, ${g.count})`);
  });
});

describe('the seeded failures', () => {
  const cases = (
    JSON.parse(readFileSync(path.join(ROOT, 'test/fixtures/tracebacks/index.json'), 'utf8')) as {
      cases: Record<string, { type: string; message: string }>;
    }
  ).cases;

  it('and job types add up to 100%', () => {
    expect(SEED_ERRORS.reduce((n, e) => n + e.percent, 0)).toBe(100);
    expect(SEED_JOB_TYPES.reduce((n, t) => n + t.percent, 0)).toBe(100);
  });

  it.each(SEED_ERRORS.map((e) => [e.fixture, e]))(
    '%s is the traceback\'s last line, "Type: message", as the worker stores it',
    (fixture, e) => {
      const c = cases[fixture];
      expect(c, `test/fixtures/tracebacks/index.json has no case ${fixture}`).toBeDefined();
      expect(e.error).toBe(`${c.type}: ${c.message}`);
    },
  );

  it.each([
    ['json-circular', 'circular-metadata'],
    ['json-decode-jsonl-line', 'input-unreadable'],
    ['requests-read-timeout', 'worker-network-error'],
    ['disk-full-oserror', 'disk-full'],
    ['httpx-connect-error', 'worker-network-error'],
    ['module-not-found', 'worker-import-error'],
  ])('%s is named by the catalog as %s for its job type', (fixture, id) => {
    const e = SEED_ERRORS.find((x) => x.fixture === fixture)!;
    expect(matchPattern(BUILTIN_ERROR_PATTERNS, { job_type: e.jobType, error: e.error, debug: {} }, [])?.id).toBe(id);
  });
});
