import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TransportError } from '../../lib/io/http.ts';
import { classifyDbError, createJobsDb, type DbFailureKind, escapeLike, type Job } from '../../lib/io/jobs-db.ts';
import { opaqueKey } from '../helpers/fake-ports.ts';

const URL_ = 'https://abcdefghijklmnopqrst.supabase.co';
const HOST = 'abcdefghijklmnopqrst.supabase.co';
/** What supabase-js makes of a fetch that threw: `${name}: ${message}`, with status 0. */
const transport = (kind: TransportError['kind'], message: string) => {
  const e = new TransportError(kind, message);
  return `${e.name}: ${e.message}`;
};

describe('classifyDbError', () => {
  const cases: [
    name: string,
    status: number,
    error: Parameters<typeof classifyDbError>[1],
    kind: DbFailureKind,
    message: RegExp,
    fix: RegExp,
  ][] = [
    [
      '401 invalid key',
      401,
      { message: 'Invalid API key', hint: 'Double check your Supabase `anon` or `service_role` API key.' },
      'unauthorized',
      /^the key was rejected \(401: Invalid API key — Double check/,
      /SUPABASE_SERVICE_ROLE_KEY .*Project Settings → API/,
    ],
    [
      '401 with a code',
      401,
      { message: 'JWT expired', code: 'PGRST301' },
      'unauthorized',
      /^the key was rejected \(401 PGRST301: JWT expired\)$/,
      /key/,
    ],
    [
      '403',
      403,
      { message: 'permission denied for table hd_ingestion_jobs', code: '42501' },
      'forbidden',
      /^permission denied \(403: permission denied for table/,
      /service-role or secret key/,
    ],
    [
      '404 with PGRST205',
      404,
      { message: "Could not find the table 'public.hd_ingestion_jobs'", code: 'PGRST205' },
      'missing-table',
      /^table hd_ingestion_jobs not found \(404 PGRST205\)$/,
      /001_hd_ingestion_jobs\.sql/,
    ],
    [
      '404 without a body',
      404,
      { message: '' },
      'missing-table',
      /^table hd_ingestion_jobs not found \(404\)$/,
      /SUPABASE_URL/,
    ],
    [
      'PGRST205 on another status',
      400,
      { message: 'x', code: 'PGRST205' },
      'missing-table',
      /\(400 PGRST205\)/,
      /SUPABASE_URL/,
    ],
    [
      '42P01 (undefined table)',
      400,
      { message: 'relation does not exist', code: '42P01' },
      'missing-table',
      /\(400 42P01\)/,
      /migrations/,
    ],
    [
      '500',
      500,
      { message: 'internal error' },
      'server',
      /^the API failed \(500: internal error\)$/,
      /retry in a minute/,
    ],
    ['503 without a message', 503, {}, 'server', /^the API failed \(503\)$/, /status page/],
    [
      '400 bad filter',
      400,
      { message: 'failed to parse filter', code: 'PGRST100' },
      'bad-request',
      /^the API refused the request \(400 PGRST100: failed to parse filter\)$/,
      /bug in the runbook/,
    ],
    [
      'status 0 timeout',
      0,
      { message: transport('timeout', `no answer from ${HOST} within 10000 ms`) },
      'timeout',
      new RegExp(`^no answer from ${HOST} within 10000 ms$`),
      /raise --timeout/,
    ],
    [
      'status 0 refused',
      0,
      { message: transport('refused', `connection to ${HOST} refused`) },
      'unreachable',
      /^connection to .* refused$/,
      new RegExp(`check SUPABASE_URL \\(${HOST}\\)`),
    ],
    [
      'status 0 dns',
      0,
      { message: transport('dns', `cannot resolve ${HOST}`) },
      'unreachable',
      /^cannot resolve /,
      /typo .*DNS/,
    ],
    [
      'status 0 reset',
      0,
      { message: transport('reset', `connection to ${HOST} was reset`) },
      'unreachable',
      /was reset$/,
      /API is up/,
    ],
    [
      'status 0 without a TransportError',
      0,
      { message: 'TypeError: fetch failed' },
      'unreachable',
      /^TypeError: fetch failed$/,
      /^check SUPABASE_URL$/,
    ],
    ['status 0 with nothing', 0, {}, 'unreachable', /^no answer$/, /SUPABASE_URL/],
    [
      '200 with a body that is not JSON',
      200,
      { message: '<!doctype html><html>…' },
      'malformed',
      /^the API answered 200 with a body that is not JSON \(an HTML page\)$/,
      /not a proxy or dashboard page/,
    ],
    ['206 with a body that is not JSON', 206, { message: 'garbage' }, 'malformed', /answered 206/, /API URL/],
  ];
  it.each(cases)('classifies %s', (_name, status, error, kind, message, fix) => {
    const f = classifyDbError(status, error, URL_);
    expect(f.kind).toBe(kind);
    expect(f.status).toBe(status);
    expect(f.message).toMatch(message);
    expect(f.fix).toMatch(fix);
    expect(f.message).not.toContain('\n');
  });

  it('never repeats a non-JSON body (it could be a whole HTML page) in the message', () => {
    expect(classifyDbError(200, { message: '<html>secret dashboard</html>' }, URL_).message).not.toContain('html');
  });

  it('cuts a long error text', () => {
    expect(classifyDbError(500, { message: 'x'.repeat(5_000) }, URL_).message.length).toBeLessThan(400);
  });

  it('still names something when the URL does not parse', () => {
    expect(classifyDbError(0, { message: transport('refused', 'connection refused') }, 'not a url').fix).toContain(
      'not a url',
    );
  });
});

describe('escapeLike', () => {
  it.each([
    ['100%', '100\\%'],
    ['a_b', 'a\\_b'],
    ['c:\\x', 'c:\\\\x'],
    ['*', '\\*'],
    ['plain', 'plain'],
  ])('escapes %s as %s', (input, expected) => {
    expect(escapeLike(input)).toBe(expected);
  });
});

const JOB: Job = {
  id: '3fa85f64-5717-4562-b3fc-2c963f66afa6',
  account_id: null,
  job_type: 'import_assets_jsonl',
  status: 'queued',
  attempts: 0,
  error: null,
  debug: null,
  created_at: '2026-01-15T11:00:00Z',
  started_at: null,
  finished_at: null,
};

type Answer = { status: number; body?: string; headers?: Record<string, string> } | Error;

/** createJobsDb over a fake fetch: the real supabase-js request and response handling, no network. */
function db(answers: Answer[]) {
  const requests: { method: string; url: string; headers: Headers }[] = [];
  const sleeps: number[] = [];
  const key = opaqueKey('secret');
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    requests.push({ method: init?.method ?? 'GET', url: String(input), headers: new Headers(init?.headers) });
    const a = answers[Math.min(requests.length - 1, answers.length - 1)];
    if (a instanceof Error) throw a;
    return new Response(a.body ?? '', {
      status: a.status,
      headers: { 'content-type': 'application/json', ...a.headers },
    });
  }) as typeof globalThis.fetch;
  let t = 0;
  const jobsDb = createJobsDb({
    url: URL_,
    key,
    timeoutMs: 5_000,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    now: () => (t += 5),
    fetch,
  });
  return { jobsDb, requests, sleeps, key };
}

describe('createJobsDb over a fake fetch', () => {
  it('reads the queued count from content-range and the oldest job from the body', async () => {
    const d = db([{ status: 200, body: JSON.stringify([JOB]), headers: { 'content-range': '0-0/7' } }]);
    const r = await d.jobsDb.queuedSummary();
    expect(r).toMatchObject({ ok: true, value: { count: 7, oldest: JOB } });
    expect(d.requests).toHaveLength(1);
    expect(d.requests[0].url).toContain('/rest/v1/hd_ingestion_jobs?');
    expect(d.requests[0].url).toContain('status=in.%28queued%2Cpending%29');
    expect(d.requests[0].headers.get('apikey')).toBe(d.key);
  });

  it('returns a 401 as an unauthorized failure, not an exception', async () => {
    const d = db([{ status: 401, body: JSON.stringify({ message: 'Invalid API key' }) }]);
    const r = await d.jobsDb.queuedSummary();
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.failure).toMatchObject({ kind: 'unauthorized', status: 401 });
  });

  it.each([
    ['an empty body', ''],
    ['a JSON object instead of an array', '{"id":1}'],
  ])('reports a 200 with %s as malformed instead of crashing', async (_what, body) => {
    const d = db([{ status: 200, body }]);
    const r = await d.jobsDb.queuedSummary();
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.failure.kind).toBe('malformed');
  });

  it('reports a 200 HTML page as malformed', async () => {
    const d = db([{ status: 200, body: '<!doctype html><title>Dashboard</title>' }]);
    const r = await d.jobsDb.queuedSummary();
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.failure.kind).toBe('malformed');
  });

  it('retries a refused read, then reports it as unreachable through the TransportError message', async () => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    const d = db([refused]);
    const r = await d.jobsDb.queuedSummary();
    expect(d.requests).toHaveLength(3);
    expect(d.sleeps).toEqual([250, 500]);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.failure.kind).toBe('unreachable');
      expect(r.failure.message).toBe(`connection to ${HOST} refused`);
    }
  });

  describe('gateway answers (the genuine pages of test/fixtures/gateway)', () => {
    const html = (status: number) =>
      readFileSync(new URL(`../fixtures/gateway/cloudflare-${status}.html`, import.meta.url), 'utf8');
    const cf = (status: number) => ({
      status,
      body: html(status),
      headers: { 'content-type': 'text/html; charset=UTF-8' },
    });

    it.each([520, 522, 524])(
      'retries a read answered %i with backoff, then names the page in one line',
      async (status) => {
        const d = db([cf(status)]);
        const r = await d.jobsDb.queuedSummary();
        expect(d.requests.map((q) => q.method)).toEqual(['GET', 'GET', 'GET']);
        expect(d.sleeps).toEqual([250, 500]);
        expect(r.ok).toBe(false);
        if (!r.ok) {
          expect(r.failure.kind).toBe('gateway');
          expect(r.failure.message).toMatch(
            new RegExp(`^the gateway in front of Supabase \\(Cloudflare\\) answered ${status}: \\S+ \\| ${status}: `),
          );
          expect(r.failure.message).not.toMatch(/[<>\n]/);
        }
      },
    );

    it('reads through a gateway blip: a 522 then the answer', async () => {
      const d = db([cf(522), { status: 200, body: JSON.stringify([JOB]), headers: { 'content-range': '0-0/1' } }]);
      const r = await d.jobsDb.queuedSummary();
      expect(d.requests).toHaveLength(2);
      expect(r).toMatchObject({ ok: true, value: { count: 1 } });
    });

    it('asks once when the project is paused (540): retrying does not restore it', async () => {
      const d = db([{ status: 540, body: '' }]);
      const r = await d.jobsDb.queuedSummary();
      expect(d.requests).toHaveLength(1);
      expect(d.sleeps).toEqual([]);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.failure.kind).toBe('paused');
    });

    it('retries a read answered 544, and names it', async () => {
      const d = db([{ status: 544, body: '' }]);
      const r = await d.jobsDb.queuedSummary();
      expect(d.requests).toHaveLength(3);
      if (!r.ok) expect(r.failure.message).toBe("Supabase's API gateway answered 544: project API gateway timeout");
    });

    it('never retries a write answered 522: one PATCH, a gateway failure (its outcome is for the caller to read back)', async () => {
      const d = db([cf(522), { status: 200, body: '[]' }]);
      const r = await d.jobsDb.compareAndSet(
        { id: JOB.id, status: 'failed', attempts: 1, started_at: null },
        { status: 'queued' },
      );
      expect(d.requests.map((q) => q.method)).toEqual(['PATCH']);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.failure.kind).toBe('gateway');
    });

    it('never retries a write answered 504 PGRST003: the pool was saturated', async () => {
      const body = JSON.stringify({
        code: 'PGRST003',
        details: null,
        hint: null,
        message: 'Timed out acquiring connection from connection pool.',
      });
      const d = db([{ status: 504, body }]);
      const r = await d.jobsDb.compareAndSet(
        { id: JOB.id, status: 'failed', attempts: 1, started_at: null },
        { status: 'queued' },
      );
      expect(d.requests).toHaveLength(1);
      if (!r.ok) expect(r.failure.kind).toBe('pool-exhausted');
    });
  });

  it('reports a timeout as timeout', async () => {
    const d = db([new DOMException('timed out', 'TimeoutError')]);
    const r = await d.jobsDb.queuedSummary();
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.failure.kind).toBe('timeout');
  });

  it('sends a compare-and-set as one PATCH conditioned on what the operator saw, never retried', async () => {
    const d = db([
      { status: 503, body: JSON.stringify({ message: 'unavailable' }) },
      { status: 200, body: '[]' },
    ]);
    const r = await d.jobsDb.compareAndSet(
      { id: JOB.id, status: 'running', attempts: 2, started_at: null },
      { status: 'queued' },
    );
    expect(d.requests).toHaveLength(1);
    expect(d.requests[0].method).toBe('PATCH');
    expect(d.requests[0].url).toContain(`id=eq.${JOB.id}`);
    expect(d.requests[0].url).toContain('status=eq.running');
    expect(d.requests[0].url).toContain('attempts=eq.2');
    expect(d.requests[0].url).toContain('started_at=is.null');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.failure.kind).toBe('server');
  });

  it('resolves a compare-and-set that matched nothing to null', async () => {
    const d = db([{ status: 200, body: '[]' }]);
    const r = await d.jobsDb.compareAndSet(
      { id: JOB.id, status: 'failed', attempts: 3, started_at: '2026-01-15T10:00:00Z' },
      { status: 'queued' },
    );
    expect(r).toMatchObject({ ok: true, value: null });
  });

  it('fails the whole snapshot when one of its four reads fails', async () => {
    const d = db([
      { status: 200, body: '[]', headers: { 'content-range': '*/0' } },
      { status: 403, body: JSON.stringify({ message: 'permission denied' }) },
    ]);
    const r = await d.jobsDb.queueSnapshot({ failedSince: new Date('2026-01-14T12:00:00Z'), listLimit: 50 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.failure.kind).toBe('forbidden');
  });
});

describe('the queue reads on the wire: estimated counts, index-friendly orders, keyset pages', () => {
  const failed = { ...JOB, status: 'failed' as const, created_at: '2026-01-15T11:00:00.123456+00:00' };

  it('findJobs asks count=estimated, one status as eq, and pages after (created_at, id) with an index range', async () => {
    const d = db([{ status: 206, body: JSON.stringify([failed]), headers: { 'content-range': '0-0/250' } }]);
    const r = await d.jobsDb.findJobs({
      statuses: ['failed'],
      after: { created_at: failed.created_at, id: failed.id },
      limit: 1,
    });
    expect(r).toMatchObject({ ok: true, value: { jobs: [failed], total: 250, estimated: false } });
    const url = new URL(d.requests[0].url);
    expect(d.requests[0].headers.get('prefer')).toBe('count=estimated');
    expect(url.searchParams.get('status')).toBe('eq.failed');
    expect(url.searchParams.get('created_at')).toBe(`gte.${failed.created_at}`);
    expect(url.searchParams.get('or')).toBe(`(created_at.gt."${failed.created_at}",id.gt."${failed.id}")`);
    expect(url.searchParams.get('order')).toBe('created_at.asc,id.asc');
    expect(url.searchParams.get('limit')).toBe('1');
  });

  it('learns a lowered max-rows from a page cut short of its limit and its count: counts above it are estimates', async () => {
    const page = Array.from({ length: 20 }, (_, i) => ({ ...failed, id: `${failed.id.slice(0, -2)}${10 + i}` }));
    const d = db([{ status: 206, body: JSON.stringify(page), headers: { 'content-range': '0-19/400' } }]);
    const r = await d.jobsDb.findJobs({ statuses: ['failed'], limit: 100 });
    expect(r).toMatchObject({ ok: true, value: { total: 400, estimated: true } });
  });

  it.each([
    // PostgREST's Content-Range (docs, "Limits and Pagination"): `0-14/*` when no count is asked or given.
    ['0-0/*', null, false],
    ['0-0/1', 1, false],
    ['0-0/1000', 1000, false],
    // Above db-max-rows, count=estimated is the planner's (docs, "Estimated Count": `0-24/3573458`).
    ['0-0/3573458', 3573458, true],
  ])('findJobs reads Content-Range %s as total %s (estimated: %s)', async (range, total, estimated) => {
    const d = db([{ status: 200, body: JSON.stringify([failed]), headers: { 'content-range': range } }]);
    const r = await d.jobsDb.findJobs({ statuses: ['failed', 'running'], limit: 1 });
    expect(r).toMatchObject({ ok: true, value: { total, estimated } });
    expect(new URL(d.requests[0].url).searchParams.get('status')).toBe('in.(failed,running)');
  });

  it('queueSnapshot: four estimated counts, newest finished first with nulls last, each read timed', async () => {
    const d = db([{ status: 200, body: JSON.stringify([JOB]), headers: { 'content-range': '0-0/1' } }]);
    const r = await d.jobsDb.queueSnapshot({ failedSince: new Date('2026-01-14T12:00:00Z'), listLimit: 50 });
    expect(r.ok).toBe(true);
    expect(d.requests.map((q) => q.headers.get('prefer'))).toEqual(Array(4).fill('count=estimated'));
    const orders = d.requests.map((q) => new URL(q.url).searchParams.get('order'));
    expect(orders).toEqual([
      'created_at.asc',
      'started_at.asc.nullsfirst',
      'finished_at.desc.nullslast',
      'finished_at.desc.nullslast',
    ]);
    if (!r.ok) return;
    expect(r.value.reads?.map((x) => x.read)).toEqual([
      'queued/pending, oldest first',
      'running',
      'failed since',
      'latest done',
    ]);
    expect(r.value.reads?.every((x) => x.ms > 0)).toBe(true);
  });

  it('queuedSummary marks a count above max-rows as an estimate', async () => {
    const d = db([{ status: 206, body: JSON.stringify([JOB]), headers: { 'content-range': '0-0/52341' } }]);
    const r = await d.jobsDb.queuedSummary();
    expect(r).toMatchObject({ ok: true, value: { count: 52341, estimated: true, oldest: JOB } });
  });
});
