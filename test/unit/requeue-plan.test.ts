import { describe, expect, it } from 'vitest';
import { judgeCanary, pickCanaries } from '../../lib/actions/requeue/canary.ts';
import { appendHistory, entryOfOp, historyEntry, jobState, requeueHistory } from '../../lib/actions/requeue/history.ts';
import { buildPlan, groupWrites, opIdFor, type PlanInput, withoutRunning } from '../../lib/actions/requeue/plan.ts';
import { parseSelection, type Selection } from '../../lib/actions/requeue/select.ts';
import type { WatchReceipt } from '../../lib/actions/requeue/verify.ts';
import { DEFAULT_RULES } from '../../lib/core/stuck-rules.ts';
import type { Job } from '../../lib/io/jobs-db.ts';

const NOW = new Date('2026-03-10T12:00:00Z');
const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

function job(n: number, over: Partial<Job> = {}): Job {
  return {
    id: id(n),
    account_id: null,
    job_type: 'import_assets_jsonl',
    status: 'failed',
    attempts: 1,
    error: 'ValueError: Circular reference detected',
    debug: { keep: true },
    created_at: '2026-03-10T10:00:00.000000+00:00',
    started_at: '2026-03-10T10:01:00.123456+00:00',
    finished_at: '2026-03-10T10:02:00.000000+00:00',
    ...over,
  };
}

const PROJECT = {
  origin: 'https://abc.supabase.co',
  host: 'abc.supabase.co',
  ref: 'abc',
  credentials: 'test',
  key: 'k',
  privileged: true,
};

function input(jobs: Job[], selection: Selection, over: Partial<PlanInput> = {}): PlanInput {
  return {
    selection,
    read: { jobs, missingIds: [], scanCut: false, requests: 1 },
    rules: DEFAULT_RULES,
    now: NOW,
    includeDone: false,
    resetAttempts: false,
    by: 'me',
    reason: 'fixed',
    runId: 'run-1',
    opId: 'op-1',
    project: PROJECT,
    selectionText: 'test',
    limit: 500,
    ...over,
  };
}

describe('buildPlan', () => {
  const ids: Selection = { kind: 'ids', ids: [] };
  const cases: [name: string, j: Job, expected: string, problem?: boolean][] = [
    ['a failed job is requeued', job(1), 'write'],
    ['a queued job: already queued, nothing to do', job(2, { status: 'queued' }), 'already-queued', false],
    ['a pending job: already queued', job(3, { status: 'pending' }), 'already-queued', false],
    ['a done job asked by id without --include-done', job(4, { status: 'done' }), 'done-needs-include-done', true],
    [
      'a running job started 10 min ago is not stale',
      job(5, { status: 'running', started_at: '2026-03-10T11:50:00Z' }),
      'running-not-stale',
      true,
    ],
    [
      'a running job started 2 h ago is stale',
      job(6, { status: 'running', started_at: '2026-03-10T10:00:00Z', finished_at: null }),
      'write',
    ],
    [
      // It is failed again, after a requeue: a new state, eligible again (see requeuedBefore).
      'a job requeued before that failed again since',
      job(7, { debug: { requeue_history: [{ op_id: 'op-1', run_id: 'run-0', at: '2026-03-10T11:00:00Z' }] } }),
      'write',
    ],
  ];
  it.each(cases)('%s', (_name, j, expected, problem) => {
    const plan = buildPlan(input([j], ids));
    if (expected === 'write') {
      expect(plan.writes.map((w) => w.jobId)).toEqual([j.id]);
      expect(plan.excluded).toEqual([]);
    } else {
      expect(plan.writes).toEqual([]);
      expect(plan.excluded).toMatchObject([{ jobId: j.id, reason: expected, problem }]);
    }
  });

  it('names a job requeued before (by any command or hand-over) as such', () => {
    const j = job(7, { debug: { requeue_history: [{ op_id: 'op-1', run_id: 'run-0', at: '2026-03-10T11:00:00Z' }] } });
    expect(buildPlan(input([j], ids)).writes[0].requeuedBefore).toBe('2026-03-10T11:00:00Z');
  });

  it('reports missing ids as problems', () => {
    const plan = buildPlan({ ...input([], ids), read: { jobs: [], missingIds: [id(9)], scanCut: false, requests: 1 } });
    expect(plan.excluded).toMatchObject([{ jobId: id(9), reason: 'not-found', problem: true }]);
  });

  it('does not count ineligible jobs found by a filter as problems', () => {
    const plan = buildPlan(
      input(
        [job(5, { status: 'running', started_at: '2026-03-10T11:50:00Z' })],
        parseSelection({ status: ['running'] }, NOW),
      ),
    );
    expect(plan.excluded[0]).toMatchObject({ reason: 'running-not-stale', problem: false });
  });

  it('plans the exact change: guard on what was seen, error and times cleared, attempts kept or reset', () => {
    const j = job(1, { attempts: 3 });
    const [w] = buildPlan(input([j], ids)).writes;
    expect(w.guard).toEqual({ id: j.id, status: 'failed', attempts: 3, started_at: j.started_at });
    expect(w.before).toEqual(jobState(j));
    expect(w.after).toEqual({ status: 'queued', attempts: 3, error: null, started_at: null, finished_at: null });
    expect(w.signature).toBe('ValueError: Circular reference detected');
    expect(buildPlan(input([j], ids, { resetAttempts: true })).writes[0].after.attempts).toBe(0);
  });

  it('drops unconfirmed running writes into the exclusions', () => {
    const plan = buildPlan(
      input([job(1), job(6, { status: 'running', started_at: '2026-03-10T09:00:00Z', finished_at: null })], ids),
    );
    const without = withoutRunning(plan, 'not confirmed', false);
    expect(without.writes.map((w) => w.jobId)).toEqual([id(1)]);
    expect(without.excluded).toMatchObject([{ jobId: id(6), reason: 'running-not-confirmed' }]);
  });
});

describe('opIdFor', () => {
  const sel = (ids: string[]): Selection => ({ kind: 'ids', ids });
  const base = { reason: 'r', includeDone: false, resetAttempts: false };
  it('is the same for the same command, whatever the id order', () => {
    expect(opIdFor({ ...base, selection: sel([id(1), id(2)]) })).toBe(
      opIdFor({ ...base, selection: sel([id(2), id(1)]) }),
    );
  });
  it('differs with the reason or the options', () => {
    const a = opIdFor({ ...base, selection: sel([id(1)]) });
    expect(opIdFor({ ...base, reason: 'other', selection: sel([id(1)]) })).not.toBe(a);
    expect(opIdFor({ ...base, resetAttempts: true, selection: sel([id(1)]) })).not.toBe(a);
  });
  it('keeps a duration as typed, so a rerun later is the same command', () => {
    const later = new Date(NOW.getTime() + 3_600_000);
    expect(opIdFor({ ...base, selection: parseSelection({ 'older-than': '2h' }, NOW) })).toBe(
      opIdFor({ ...base, selection: parseSelection({ 'older-than': '2h' }, later) }),
    );
  });
});

describe('history', () => {
  const entry = historyEntry(jobState(job(1)), { at: 'T', by: 'me', reason: 'r', run_id: 'run', op_id: 'op' });

  it('keeps the old error, attempts and times in the entry', () => {
    expect(entry).toEqual({
      at: 'T',
      by: 'me',
      reason: 'r',
      from_status: 'failed',
      from_error: 'ValueError: Circular reference detected',
      from_attempts: 1,
      started_at: '2026-03-10T10:01:00.123456+00:00',
      finished_at: '2026-03-10T10:02:00.000000+00:00',
      run_id: 'run',
      op_id: 'op',
    });
  });
  it('appends and keeps every other debug key', () => {
    const debug = appendHistory({ note: 'x', last_run: { a: 1 }, requeue_history: [{ old: 1 }] }, entry);
    expect(debug).toEqual({ note: 'x', last_run: { a: 1 }, requeue_history: [{ old: 1 }, entry] });
  });
  it('never drops a hand-edited history or a debug that is not an object', () => {
    expect(appendHistory({ requeue_history: 'odd' }, entry).requeue_history).toEqual(['odd', entry]);
    expect(appendHistory([1, 2], entry)).toEqual({ previous_debug: [1, 2], requeue_history: [entry] });
    expect(appendHistory(null, entry)).toEqual({ requeue_history: [entry] });
  });
  it('finds an entry of the same command', () => {
    expect(entryOfOp(appendHistory({}, entry), 'op')).toEqual(entry);
    expect(entryOfOp({ requeue_history: [null, 'x'] }, 'op')).toBeUndefined();
    expect(requeueHistory(undefined)).toEqual([]);
  });
});

describe('canary', () => {
  const writes = buildPlan(
    input(
      [
        job(1),
        job(2),
        job(3),
        job(4, { job_type: 'thumbnail', error: 'OSError: disk full' }),
        job(5, { job_type: 'thumbnail', error: 'OSError: disk full' }),
      ],
      { kind: 'ids', ids: [] },
    ),
  ).writes;

  it('takes canaries across the job_type × error groups, in plan order', () => {
    expect(groupWrites(writes).map((g) => g.count)).toEqual([3, 2]);
    expect(pickCanaries(writes, 2).map((w) => w.jobId)).toEqual([id(1), id(4)]);
    expect(pickCanaries(writes, 3).map((w) => w.jobId)).toEqual([id(1), id(2), id(4)]);
    expect(pickCanaries(writes, 99)).toHaveLength(5);
  });

  const receipt = (over: Partial<WatchReceipt>, states: WatchReceipt['jobs']): WatchReceipt => ({
    seconds: 30,
    watchedSeconds: 3,
    ended: 'settled',
    total: states.length,
    counts: {
      pickedUp: 0,
      stillQueued: states.filter((s) => s.state === 'still-queued').length,
      running: 0,
      done: states.filter((s) => s.state === 'done').length,
      failedAgain: states.filter((s) => s.state === 'failed-again').length,
      gone: 0,
    },
    jobs: states,
    ...over,
  });
  it('fails when any canary failed again', () => {
    const v = judgeCanary(
      receipt({}, [
        { id: id(1), status: 'done', state: 'done' },
        { id: id(2), status: 'failed', state: 'failed-again', signature: 'ValueError: x' },
      ]),
    );
    expect(v.verdict).toBe('fail');
    expect(v.line).toContain('1 of 2 canary jobs failed again (ValueError: x)');
  });
  it('passes when all finished', () =>
    expect(judgeCanary(receipt({}, [{ id: id(1), status: 'done', state: 'done' }])).verdict).toBe('pass'));
  it('is inconclusive when time ran out', () => {
    const v = judgeCanary(receipt({ ended: 'timeout' }, [{ id: id(1), status: 'queued', state: 'still-queued' }]));
    expect(v).toMatchObject({ verdict: 'inconclusive' });
    expect(v.line).toContain('1 still queued');
  });
});
