import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RULES,
  describeRules,
  isAttemptsExhausted,
  isOverdueQueued,
  isStaleRunning,
  parseJobTypeRules,
  type StuckRules,
  thresholdsFor,
} from '../../lib/core/stuck-rules.ts';
import type { Job, JobStatus } from '../../lib/io/jobs-db.ts';

const NOW = new Date('2026-01-15T12:00:00Z');
const minutesAgo = (m: number) => new Date(NOW.getTime() - m * 60_000).toISOString();

function job(status: JobStatus, over: Partial<Job> = {}): Job {
  return {
    id: 'job-1',
    account_id: null,
    job_type: 'import_assets_jsonl',
    status,
    attempts: 0,
    error: null,
    debug: null,
    created_at: minutesAgo(0),
    started_at: null,
    finished_at: null,
    ...over,
  };
}

const RULES: StuckRules = {
  ...DEFAULT_RULES,
  perJobType: { thumbnail: { queuedMinutes: 5 }, import_assets_jsonl: { runningMinutes: 180, maxAttempts: 5 } },
};

describe('parseJobTypeRules', () => {
  const good: [text: string, expected: StuckRules['perJobType']][] = [
    ['import_assets_jsonl:running=180,queued=30', { import_assets_jsonl: { runningMinutes: 180, queuedMinutes: 30 } }],
    ['a:attempts=5;b.v2:queued=1', { a: { maxAttempts: 5 }, 'b.v2': { queuedMinutes: 1 } }],
    ['thumbnail: queued = 7 ;', { thumbnail: { queuedMinutes: 7 } }],
    ['', {}],
    ['a:queued=5;a:running=100', { a: { queuedMinutes: 5, runningMinutes: 100 } }],
  ];
  it.each(good)('parses "%s"', (text, expected) => {
    expect(parseJobTypeRules(text)).toEqual({ ok: true, value: expected });
  });

  const bad: [text: string, error: RegExp][] = [
    ['import_assets_jsonl', /"import_assets_jsonl" is not JOB_TYPE:key=value/],
    ['a:speed=3', /unknown rule "speed" in "a:speed=3"/],
    ['a:queued=0', /"queued=0" in "a:queued=0" needs a whole number of at least 1/],
    ['a:queued=-5', /needs a whole number/],
    ['a:queued=1.5', /needs a whole number/],
    ['a:queued=', /"queued=" .* needs a whole number/],
    ['a:queued', /"queued=" .* needs a whole number/],
    ['a:queued=1234567', /needs a whole number/],
    ['bad type!:queued=5', /is not JOB_TYPE/],
    // A space before the colon would make it part of the job_type name.
    [' a : queued = 7 ; ', /"a : queued = 7" is not JOB_TYPE/],
    ['a:queued=5;;b', /"b" is not JOB_TYPE/],
    // Names that exist on every object's prototype are not rules either.
    ['a:constructor=5', /unknown rule "constructor"/],
    ['a:toString=5', /unknown rule "toString"/],
  ];
  it.each(bad)('rejects "%s", naming the bad part', (text, error) => {
    const r = parseJobTypeRules(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(error);
  });
});

describe('thresholdsFor', () => {
  it('returns the base thresholds for a job_type without overrides', () => {
    expect(thresholdsFor(RULES, 'other')).toEqual({ queuedMinutes: 15, runningMinutes: 60, maxAttempts: 3 });
  });
  it('overrides only the fields a job_type sets', () => {
    expect(thresholdsFor(RULES, 'thumbnail')).toEqual({ queuedMinutes: 5, runningMinutes: 60, maxAttempts: 3 });
    expect(thresholdsFor(RULES, 'import_assets_jsonl')).toEqual({
      queuedMinutes: 15,
      runningMinutes: 180,
      maxAttempts: 5,
    });
  });
});

describe('isStaleRunning', () => {
  const cases: [name: string, j: Job, expected: boolean][] = [
    ['running past the rule', job('running', { job_type: 'x', started_at: minutesAgo(61) }), true],
    ['running exactly at the rule', job('running', { job_type: 'x', started_at: minutesAgo(60) }), false],
    ['running within the rule', job('running', { job_type: 'x', started_at: minutesAgo(10) }), false],
    ['running past the base rule but within its override', job('running', { started_at: minutesAgo(120) }), false],
    ['running past its override', job('running', { started_at: minutesAgo(181) }), true],
    [
      'running without started_at, created long ago',
      job('running', { job_type: 'x', created_at: minutesAgo(90) }),
      true,
    ],
    [
      'running but already finished',
      job('running', { job_type: 'x', started_at: minutesAgo(90), finished_at: minutesAgo(1) }),
      false,
    ],
    ['queued for long', job('queued', { job_type: 'x', created_at: minutesAgo(900) }), false],
  ];
  it.each(cases)('a job %s → %s', (_name, j, expected) => {
    expect(isStaleRunning(j, RULES, NOW)).toBe(expected);
  });
});

describe('isOverdueQueued', () => {
  const cases: [name: string, j: Job, expected: boolean][] = [
    ['queued past the rule', job('queued', { job_type: 'x', created_at: minutesAgo(16) }), true],
    ['pending past the rule', job('pending', { job_type: 'x', created_at: minutesAgo(16) }), true],
    ['queued within the rule', job('queued', { job_type: 'x', created_at: minutesAgo(14) }), false],
    ['queued past its stricter override', job('queued', { job_type: 'thumbnail', created_at: minutesAgo(6) }), true],
    ['running for long', job('running', { job_type: 'x', created_at: minutesAgo(900) }), false],
    ['failed long ago', job('failed', { job_type: 'x', created_at: minutesAgo(900) }), false],
  ];
  it.each(cases)('a job %s → %s', (_name, j, expected) => {
    expect(isOverdueQueued(j, RULES, NOW)).toBe(expected);
  });
});

describe('isAttemptsExhausted', () => {
  const cases: [name: string, j: Job, expected: boolean][] = [
    ['failed at the limit', job('failed', { job_type: 'x', attempts: 3 }), true],
    ['failed over the limit', job('failed', { job_type: 'x', attempts: 9 }), true],
    ['failed under the limit', job('failed', { job_type: 'x', attempts: 2 }), false],
    ['failed at the base limit but under its override', job('failed', { attempts: 3 }), false],
    ['failed at its override', job('failed', { attempts: 5 }), true],
    ['running with many attempts', job('running', { job_type: 'x', attempts: 9 }), false],
  ];
  it.each(cases)('a job %s → %s', (_name, j, expected) => {
    expect(isAttemptsExhausted(j, RULES)).toBe(expected);
  });
});

describe('describeRules', () => {
  it('prints the base rules and each override in one line', () => {
    const line = describeRules(RULES);
    expect(line).toContain('queued > 15 min');
    expect(line).toContain('running > 60 min');
    expect(line).toContain('attempts ≥ 3');
    expect(line).toContain('thumbnail: queued=5');
    expect(line).toContain('import_assets_jsonl: running=180,attempts=5');
    expect(line).not.toContain('\n');
  });
});
