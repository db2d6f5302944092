/**
 * The sandbox plays Supabase with its limits on by default (`npm run sandbox -- up`), each with a switch: max rows,
 * role statement timeouts, the pool and its acquisition timeout, the PostgREST version's error shapes, the gateway's
 * URL and body limits, and the faults that push a request over them. Real sandboxes, started through the CLI.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, sandboxCli, TSX } from '../../sandbox/client.ts';
import { tempDir } from '../helpers/run.ts';
import { cleanEnv, type Sandbox, startSandbox } from '../helpers/sandbox.ts';

const run = promisify(execFile);

/** A request to the sandbox's cloud API with the service key (or `key`) in both headers, as supabase-js sends it. */
function rest(
  sb: Sandbox,
  pathAndQuery: string,
  init: RequestInit & { key?: string; bearer?: string } = {},
): Promise<Response> {
  const key = init.key ?? sb.info.cloud.serviceRoleKey;
  const headers = new Headers(init.headers);
  headers.set('apikey', key);
  headers.set('Authorization', `Bearer ${init.bearer ?? key}`);
  if (init.body !== undefined) headers.set('Content-Type', 'application/json');
  return fetch(`${sb.info.cloud.url}/rest/v1${pathAndQuery}`, { ...init, headers });
}

async function seedJobs(sb: Sandbox, n: number): Promise<void> {
  await sb.sql('delete from public.hd_ingestion_jobs');
  await sb.sql(
    `insert into public.hd_ingestion_jobs (job_type, status, created_at)
     select 'ingest', 'done', now() - make_interval(secs => g) from generate_series(1, $1::int) g`,
    [n],
  );
}

const SLEEP_RPC = `create or replace function public.limits_test_sleep(seconds double precision) returns integer
  language sql volatile as $$ select 1 from pg_sleep(seconds) $$;
grant execute on function public.limits_test_sleep(double precision) to anon, authenticated, service_role`;

describe('with the defaults: Supabase as a hosted project runs it', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    // The version explicitly, so that a run with HD_SANDBOX_POSTGREST set still checks 13's shapes here.
    sb = await startSandbox({ scenario: 'healthy', postgrest: 13 });
    await sb.worker('stop');
  });

  it('sandbox.json names the limits in force', () => {
    expect(sb.info.limits).toEqual({
      maxRows: 1000,
      pool: 10,
      poolTimeoutMs: 10_000,
      postgrest: 13,
      maxUrlBytes: 16_384,
      maxBodyBytes: 104_857_600,
      statementTimeoutMs: null,
    });
  });

  it('sets the statement timeouts on the roles as Supabase does (docs "Timeouts")', async () => {
    const rows = await sb.sql<{ rolname: string; rolconfig: string[] | null }>(
      `select rolname, rolconfig from pg_roles where rolname in ('authenticator', 'anon', 'authenticated', 'service_role')
       order by rolname`,
    );
    expect(Object.fromEntries(rows.map((r) => [r.rolname, r.rolconfig]))).toEqual({
      anon: ['statement_timeout=3s'],
      authenticated: ['statement_timeout=8s'],
      authenticator: ['statement_timeout=8s'],
      service_role: null,
    });
  });

  it('each request runs with its role timeout: service_role 8 s (the authenticator login), anon 3 s', async () => {
    await sb.sql(`create or replace function public.limits_test_timeout() returns text language sql stable
      as $$ select current_setting('statement_timeout') $$;
      grant execute on function public.limits_test_timeout() to anon, service_role`);
    const service = await rest(sb, '/rpc/limits_test_timeout', { method: 'POST', body: '{}' });
    expect(await service.json()).toBe('8s');
    const anon = await rest(sb, '/rpc/limits_test_timeout', {
      method: 'POST',
      body: '{}',
      key: sb.info.cloud.anonKey,
    });
    expect(await anon.json()).toBe('3s');
  });

  it("a statement is timed with its role's timeout, set in the same query string just before it: anon's 3 s, not the login's 8 s", async () => {
    await sb.sql(SLEEP_RPC);
    const res = await rest(sb, '/rpc/limits_test_sleep', {
      method: 'POST',
      body: '{"seconds": 3.5}',
      key: sb.info.cloud.anonKey,
    });
    expect(res.status).toBe(500);
    expect(((await res.json()) as { code: string }).code).toBe('57014');
  });

  it('a read returns at most 1,000 rows; Content-Range says 0-999/* or, with a count, the real total', async () => {
    await seedJobs(sb, 1001);
    const page = await rest(sb, '/hd_ingestion_jobs?select=id&limit=5000');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-range')).toBe('0-999/*');
    expect(((await page.json()) as unknown[]).length).toBe(1000);
    const counted = await rest(sb, '/hd_ingestion_jobs?select=id', { headers: { Prefer: 'count=exact' } });
    expect(counted.status).toBe(206);
    expect(counted.headers.get('content-range')).toBe('0-999/1001');
  });

  it('count=estimated and planned: exact up to max-rows, the planner past it (Query.hs resultSetWTotal)', async () => {
    await seedJobs(sb, 1001);
    await sb.sql('analyze public.hd_ingestion_jobs');
    for (const count of ['estimated', 'planned']) {
      const res = await rest(sb, '/hd_ingestion_jobs?select=id', {
        method: 'HEAD',
        headers: { Prefer: `count=${count}` },
      });
      expect(res.status).toBe(206);
      expect(res.headers.get('content-range')).toBe('0-999/1001');
    }
    const few = await rest(sb, '/hd_ingestion_jobs?select=id&job_type=eq.none', {
      headers: { Prefer: 'count=estimated' },
    });
    expect(few.headers.get('content-range')).toBe('*/0');
  });

  it('an RPC result is capped the same way; a PATCH with return=representation is not', async () => {
    await seedJobs(sb, 1001);
    await sb.sql(`create or replace function public.limits_test_all() returns setof public.hd_ingestion_jobs
      language sql stable as $$ select * from public.hd_ingestion_jobs $$`);
    const rpc = await rest(sb, '/rpc/limits_test_all', { method: 'POST', body: '{}' });
    expect(((await rpc.json()) as unknown[]).length).toBe(1000);
    const patched = await rest(sb, '/hd_ingestion_jobs?status=eq.done&select=id', {
      method: 'PATCH',
      body: JSON.stringify({ error: 'x' }),
      headers: { Prefer: 'return=representation' },
    });
    expect(patched.status).toBe(200);
    expect(((await patched.json()) as unknown[]).length).toBe(1001);
  });

  it('PATCH {} with a filter answers 204 and changes nothing, as PostgREST does (UpdateSpec.hs)', async () => {
    await seedJobs(sb, 3);
    const res = await rest(sb, '/hd_ingestion_jobs?status=eq.done', { method: 'PATCH', body: '{}' });
    expect(res.status).toBe(204);
    expect(res.headers.get('content-range')).toBe('*/*');
    expect(await sb.sql('select 1 from public.hd_ingestion_jobs where status <> $1', ['done'])).toEqual([]);
  });

  it('an sb_publishable_ apikey with a different sb_secret_ Bearer is refused, not run as service_role', async () => {
    const res = await rest(sb, '/hd_ingestion_jobs?select=id&limit=1', {
      key: sb.info.cloud.publishableKey,
      bearer: sb.info.cloud.secretKey,
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({
      code: 'PGRST301',
      message: 'Expected 3 parts in JWT; got 1',
      details: null,
      hint: null,
    });
  });

  it('PostgREST 13 shapes: a missing table is 404 PGRST205 with the nearest name, and Proxy-Status', async () => {
    const res = await rest(sb, '/hd_ingestion_job');
    expect(res.status).toBe(404);
    expect(res.headers.get('proxy-status')).toBe('PostgREST; error=PGRST205');
    expect(await res.json()).toEqual({
      code: 'PGRST205',
      message: "Could not find the table 'public.hd_ingestion_job' in the schema cache",
      details: null,
      hint: "Perhaps you meant the table 'public.hd_ingestion_jobs'",
    });
  });

  it('a URL over 16 KB gets the gateway 520 HTML page, over 32 KB its 414; 16 KB passes', async () => {
    const ids = (n: number) => Array.from({ length: n }, () => '5f0c2a8e-1b7d-4c3e-9a6f-2d8b7e4c1a90').join(',');
    const within = `/hd_ingestion_jobs?select=id&id=in.(${ids(300)})`;
    expect((await rest(sb, within)).status).toBe(200);
    const over16 = await rest(sb, `/hd_ingestion_jobs?select=id&id=in.(${ids(600)})`);
    expect(over16.status).toBe(520);
    expect(over16.headers.get('content-type')).toContain('text/html');
    expect(await over16.text()).toContain('520: Web server is returning an unknown error');
    const over32 = await rest(sb, `/hd_ingestion_jobs?select=id&id=in.(${ids(1000)})`);
    expect(over32.status).toBe(414);
    expect(await over32.text()).toContain('<title>414 Request-URI Too Large</title>');
  });

  it('fault body-too-large: a body over its size gets the 413 page, a smaller one passes', async () => {
    await sb.controls({ httpFault: { kind: 'body-too-large', bytes: 200 } });
    try {
      const small = await rest(sb, '/hd_ingestion_jobs', { method: 'POST', body: JSON.stringify({ job_type: 's' }) });
      expect(small.status).toBe(201);
      const big = await rest(sb, '/hd_ingestion_jobs', {
        method: 'POST',
        body: JSON.stringify({ job_type: 'x'.repeat(300) }),
      });
      expect(big.status).toBe(413);
      expect(await big.text()).toContain('<center><h1>413 Request Entity Too Large</h1></center>');
      expect(await sb.sql('select 1 from public.hd_ingestion_jobs where length(job_type) = 300')).toEqual([]);
    } finally {
      await sb.controls({ httpFault: null });
    }
  });

  it('fault url-too-long (through the CLI, as an operator sets it): a URL over its size gets 414', async () => {
    expect(await sandboxCli(['fault', 'url-too-long', '--bytes', '100', '--dir', sb.dir], cleanEnv())).toBe(
      'fault url-too-long\n',
    );
    try {
      expect((await rest(sb, '/hd_ingestion_jobs?select=id&limit=1')).status).toBe(200);
      const long = await rest(sb, `/hd_ingestion_jobs?select=id&job_type=eq.${'x'.repeat(200)}`);
      expect(long.status).toBe(414);
    } finally {
      await sandboxCli(['fault', 'off', '--dir', sb.dir], cleanEnv());
    }
  });
});

describe('short timeouts and a small pool, PostgREST 12', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startSandbox({ statementTimeoutMs: 300, pool: 2, poolTimeoutMs: 300, postgrest: 12 });
    await sb.worker('stop');
    await sb.sql(SLEEP_RPC);
  });

  it('a slow query is cancelled by PostgreSQL and answered 500 57014 in PostgREST shape', async () => {
    for (const key of [sb.info.cloud.serviceRoleKey, sb.info.cloud.anonKey]) {
      const res = await rest(sb, '/rpc/limits_test_sleep', { method: 'POST', body: '{"seconds": 30}', key });
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({
        code: '57014',
        message: 'canceling statement due to statement timeout',
        details: null,
        hint: null,
      });
    }
  });

  it('fault pool-exhausted: requests wait for a connection, then 504 PGRST003; off, they pass again', async () => {
    await sb.controls({ httpFault: { kind: 'pool-exhausted' } });
    try {
      const res = await rest(sb, '/hd_ingestion_jobs?select=id&limit=1');
      expect(res.status).toBe(504);
      expect(await res.json()).toEqual({
        code: 'PGRST003',
        message: 'Timed out acquiring connection from connection pool.',
        details: null,
        hint: null,
      });
    } finally {
      await sb.controls({ httpFault: null });
    }
    expect((await rest(sb, '/hd_ingestion_jobs?select=id&limit=1')).status).toBe(200);
  });

  it('PostgREST 12 shapes: a missing table is 42P01 from PostgreSQL; JWT errors are all PGRST301', async () => {
    const missing = await rest(sb, '/hd_ingestion_job');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('proxy-status')).toBeNull();
    expect(await missing.json()).toEqual({
      code: '42P01',
      message: 'relation "public.hd_ingestion_job" does not exist',
      details: null,
      hint: null,
    });
    const parts = await rest(sb, '/hd_ingestion_jobs', { bearer: 'abc.def' });
    expect(await parts.json()).toMatchObject({
      code: 'PGRST301',
      message: 'JWSError (CompactDecodeError Invalid number of parts: Expected 3 parts; got 2)',
    });
  });
});

describe('PostgREST 14, and every limit switched off', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startSandbox({ postgrest: 14, maxRows: 0, statementTimeoutMs: 0, maxUrlBytes: 0 });
    await sb.worker('stop');
  });

  it('no cap on rows, no role timeouts, no URL limit', async () => {
    await seedJobs(sb, 1001);
    const page = await rest(sb, '/hd_ingestion_jobs?select=id');
    expect(((await page.json()) as unknown[]).length).toBe(1001);
    const rows = await sb.sql<{ rolconfig: string[] | null }>(
      `select rolconfig from pg_roles where rolname in ('authenticator', 'anon', 'authenticated')`,
    );
    expect(rows.map((r) => r.rolconfig)).toEqual([null, null, null]);
    const long = await rest(sb, `/hd_ingestion_jobs?select=id&job_type=eq.${'x'.repeat(40_000)}`);
    expect(long.status).toBe(200);
  });

  it('PostgREST 14 shapes: a hint only at 75% similarity (CHANGELOG 14.6)', async () => {
    const near = await rest(sb, '/hd_ingestion_job');
    expect(((await near.json()) as { hint: string | null }).hint).toBe(
      "Perhaps you meant the table 'public.hd_ingestion_jobs'",
    );
    const far = await rest(sb, '/ingest_jobs');
    expect(((await far.json()) as { hint: string | null }).hint).toBeNull();
  });
});

describe('up refuses a bad limit before starting anything', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('hd-sandbox-limits-');
  });

  it.each([
    [['--postgrest', '15'], '--postgrest takes 12, 13 or 14'],
    [['--max-rows', 'lots'], '--max-rows takes a whole number'],
    [['--pool', '0'], '--pool takes 1 to 40 connections'],
  ])('up %j', async (flags, message) => {
    const err = await run(process.execPath, ['--import', TSX, 'sandbox/cli.mts', 'up', '--dir', dir, ...flags], {
      cwd: ROOT,
      env: cleanEnv(),
    }).catch((e: { code: number; stderr: string }) => e);
    expect(err).toMatchObject({ code: 2 });
    expect((err as { stderr: string }).stderr).toContain(message);
  });
});
