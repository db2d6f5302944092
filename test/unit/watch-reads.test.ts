/**
 * The db port's watch reads on the wire (the real supabase-js over a fake fetch): seven requests, counts as HEAD
 * requests, narrow `limit`ed lists ordered by indexed columns, never a whole table; and the assembly of the answers.
 */
import { describe, expect, it } from 'vitest';
import { createJobsDb } from '../../lib/io/jobs-db.ts';
import { assembleWatchReads } from '../../lib/io/watch-reads.ts';
import { opaqueKey } from '../helpers/fake-ports.ts';

const SINCE = new Date('2026-03-10T11:55:00Z');

function fakeDb(answer: (url: URL, method: string) => { status: number; body?: string; range?: string }) {
  const requests: Array<{ method: string; url: URL; prefer: string | null }> = [];
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const method = init?.method ?? 'GET';
    requests.push({ method, url, prefer: new Headers(init?.headers).get('prefer') });
    const a = answer(url, method);
    return new Response(method === 'HEAD' ? null : (a.body ?? '[]'), {
      status: a.status,
      headers: { 'content-type': 'application/json', ...(a.range ? { 'content-range': a.range } : {}) },
    });
  }) as typeof globalThis.fetch;
  const db = createJobsDb({
    url: 'https://abcdefghijklmnopqrst.supabase.co',
    key: opaqueKey('secret'),
    timeoutMs: 5_000,
    readRetries: 0,
    sleep: async () => {},
    now: () => 0,
    fetch,
  });
  return { db, requests };
}

/** The count each request answers, by what it asks. */
function counts(url: URL): string {
  const q = url.searchParams;
  const status = q.get('status');
  // As PostgREST answers: a list's range is the rows it sends (all of them, below its limit).
  if (q.get('finished_at')) return status === 'eq.failed' ? '*/1' : '0-8/9';
  return (
    {
      'in.(queued,pending)': '0-39/40',
      'eq.pending': '*/3',
      'eq.running': '0-1/2',
      'eq.failed': '0-4/5',
      'eq.done': '*/1000',
    }[status ?? ''] ?? '*/0'
  );
}

/** A body of as many rows as the range says were sent. */
function rowsOf(range: string, row: object): string {
  const m = /^(\d+)-(\d+)\//.exec(range);
  return JSON.stringify(m ? Array.from({ length: Number(m[2]) - Number(m[1]) + 1 }, () => row) : []);
}

describe('watchReads on the wire', () => {
  it('is seven requests at once: four narrow limited lists and three HEAD counts', async () => {
    const row = { job_type: 't', status: 'queued', created_at: '2026-03-10T11:00:00Z', started_at: null };
    const { db, requests } = fakeDb((url) => ({ status: 200, range: counts(url), body: rowsOf(counts(url), row) }));
    const r = await db.watchReads({ since: SINCE, limit: 100 });
    expect(r.ok).toBe(true);
    expect(requests).toHaveLength(7);
    for (const req of requests) {
      const select = req.url.searchParams.get('select') ?? '';
      expect(select.split(',')).not.toContain('debug');
      expect(select.split(',')).not.toContain('error');
      expect(select.split(',')).not.toContain('payload');
      if (req.method !== 'GET') expect(req.method).toBe('HEAD');
    }
    const heads = requests.filter((q) => q.method === 'HEAD');
    // Counts over the whole table are estimated (exact up to max-rows, the planner's above); the window's are exact.
    expect(heads.map((q) => q.prefer)).toEqual(['count=estimated', 'count=estimated', 'count=exact']);
    const lists = requests.filter((q) => q.method === 'GET').map((q) => q.prefer);
    expect(lists).toEqual(['count=estimated', 'count=estimated', 'count=estimated', 'count=exact']);
    // The backlog list sends at most `limit` rows, the other three half of it.
    const limits = requests.filter((q) => q.method === 'GET').map((q) => q.url.searchParams.get('limit'));
    expect(limits).toEqual(['100', '50', '50', '50']);
    const orders = requests.filter((q) => q.method === 'GET').map((q) => q.url.searchParams.get('order'));
    expect(orders).toEqual([
      'created_at.asc',
      'started_at.asc.nullsfirst',
      'created_at.desc',
      'finished_at.desc.nullslast',
    ]);
    expect(requests.filter((q) => q.url.searchParams.get('finished_at') === `gte.${SINCE.toISOString()}`)).toHaveLength(
      2,
    );
    if (!r.ok) return;
    expect(r.value.counts).toEqual({ queued: 37, pending: 3, running: 2, failed: 5, done: 1000 });
    expect(r.value.estimated).toEqual({ queued: false, pending: false, running: false, failed: false, done: false });
    expect(r.value.window).toMatchObject({ since: SINCE.toISOString(), done: 8, failed: 1 });
  });

  it('marks the counts above max-rows as estimates: Supabase default 1,000, or the cap a cut list shows', async () => {
    const row = { job_type: 't', status: 'queued', created_at: '2026-03-10T11:00:00Z', started_at: null };
    // A count of 9.9M done rows is the planner's (PostgREST: count=estimated above db-max-rows).
    const big = fakeDb((url) => {
      const range = url.searchParams.get('status') === 'eq.done' ? '*/9900000' : counts(url);
      return { status: 200, range, body: rowsOf(range, row) };
    });
    const r = await big.db.watchReads({ since: SINCE, limit: 100 });
    expect(r.ok && r.value.estimated).toEqual({
      queued: false,
      pending: false,
      running: false,
      failed: false,
      done: true,
    });
    // A project whose max-rows is 20: the backlog list of 100 comes back with 20 rows of 400, so 400 is an estimate.
    const capped = fakeDb((url) => {
      const backlog = url.searchParams.get('status') === 'in.(queued,pending)' && !url.searchParams.get('finished_at');
      return {
        status: 200,
        range: backlog ? '0-19/400' : counts(url),
        body: rowsOf(backlog ? '0-19/400' : counts(url), row),
      };
    });
    const c = await capped.db.watchReads({ since: SINCE, limit: 100 });
    expect(c.ok && c.value.estimated).toMatchObject({ queued: true, running: false, done: true });
  });

  it('a failed request fails the refresh, as a value', async () => {
    const { db } = fakeDb((url, method) =>
      method === 'HEAD' && url.searchParams.get('status') === 'eq.done'
        ? { status: 503, body: '{"message":"unavailable"}' }
        : { status: 200, range: counts(url) },
    );
    const r = await db.watchReads({ since: SINCE, limit: 100 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.failure.kind).toBe('server');
  });
});

describe('assembleWatchReads', () => {
  it('never lets two counts read a moment apart go below zero', () => {
    const none = { count: 0, rows: [] };
    const r = assembleWatchReads(SINCE, [{ count: 2, rows: [] }, 3, none, none, 0, { count: 1, rows: [] }, 2]);
    expect(r.counts).toMatchObject({ queued: 0, pending: 3 });
    expect(r.window).toMatchObject({ done: 0, failed: 2 });
  });
});
