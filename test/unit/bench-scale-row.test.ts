// The production-scale row's judgement and its report (bench/scale-row.ts), on a made-up result: no sandbox.
import { describe, expect, it } from 'vitest';
import { readable, type ScaleRowResult, type ScaleStep, scaleRowGoals, scaleRowReport } from '../../bench/scale-row.ts';

const step = (over: Partial<ScaleStep>): ScaleStep => ({
  step: 'debug-stuck-jobs',
  args: [],
  exitCode: 1,
  wallMs: 2_000,
  reads: [{ method: 'GET', query: '?select=id&status=eq.running', status: 200, serverMs: 40 }],
  maxReadMs: 40,
  slowReads: [],
  rpc: { n: 0, maxMs: 0 },
  ...over,
});

const slow = {
  method: 'GET',
  query: '?select=id%2Cstatus&status=in.%28queued%2Cpending%29&order=created_at.asc&limit=50',
  status: 206,
  serverMs: 30_263,
};

const result = (jobs: number, steps: ScaleStep[]): ScaleRowResult => ({
  jobs,
  limits: 'none',
  seed: { seconds: 400, summary: 'seeded' },
  steps,
});

describe('scaleRowGoals', () => {
  it('judges at 10 million jobs: a step that ran with every read within 1 s meets both goals', () => {
    expect(scaleRowGoals(result(10_000_000, [step({})])).map((g) => g.met)).toEqual([true, true]);
  });

  it('misses when the applied requeue queued fewer jobs than it was asked for (a selection cut short)', () => {
    const r = { ...result(10_000_000, [step({})]), queued: { before: 10_000, after: 60_000, asked: 100_000 } };
    const goal = scaleRowGoals(r).at(-1)!;
    expect([goal.measured, goal.met]).toEqual(['50,000 more queued', false]);
    const full = { ...r, queued: { before: 10_000, after: 110_000, asked: 100_000 } };
    expect(scaleRowGoals(full).at(-1)!.met).toBe(true);
  });

  it('misses on exit 2, on a read over 1 s, and on a step that made no read at all', () => {
    const goals = scaleRowGoals(
      result(10_000_000, [
        step({ exitCode: 2, reads: [slow], maxReadMs: slow.serverMs, slowReads: [slow] }),
        step({ step: 'requeue preview', exitCode: 2, reads: [], maxReadMs: 0 }),
      ]),
    );
    expect(goals.map((g) => [g.measured, g.met])).toEqual([
      ['exit 2', false],
      ['max 30263 ms, 1 of 1 over', false],
      ['exit 2', false],
      ['max 0 ms, 0 of 0 over', false],
    ]);
  });

  it('shows a scaled-down row without judging it', () => {
    expect(scaleRowGoals(result(100_000, [step({ exitCode: 2 })])).map((g) => g.met)).toEqual([null, null]);
  });
});

describe('scaleRowReport', () => {
  it('lists the reads over 1 s with their query strings as a person reads them, and why a step stopped', () => {
    const text = scaleRowReport(
      result(10_000_000, [
        step({
          exitCode: 2,
          reads: [slow],
          maxReadMs: slow.serverMs,
          slowReads: [slow],
          tail: 'Supabase does not answer',
        }),
      ]),
    ).join('\n');
    expect(text).toContain('debug-stuck-jobs (exit 2): Supabase does not answer');
    expect(text).toContain(
      '  30263 ms  GET ?select=id,status&status=in.(queued,pending)&order=created_at.asc&limit=50',
    );
  });

  it('decodes what it can and leaves a malformed escape as it came', () => {
    expect(readable('?a=%28b%29')).toBe('a=(b)');
    expect(readable('?a=%E0%A4%A')).toBe('a=%E0%A4%A');
  });
});
