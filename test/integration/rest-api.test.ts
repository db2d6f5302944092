/**
 * The sandbox REST API over a real PostgreSQL, driven by supabase-js itself (and raw fetch where the
 * headers are the point). With HD_TEST_SUPABASE_URL the same tests hold the real PostgREST behind that Supabase
 * to the same answers (test/helpers/external.ts); those about the sandbox itself (its stats, faults, second
 * instance, its own cluster) are skipped there, saying so. Every row a test plants carries this file's account_id
 * and every read is scoped to it: on a real project the tests see and remove only their own rows.
 */
import { rmSync } from 'node:fs';
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it, type TestContext } from 'vitest';
import ws from 'ws';
import { type SandboxPostgres, startPostgres } from '../../sandbox/postgres.ts';
import { makeProjectKeys, type ProjectKeys } from '../../sandbox/rest/auth.ts';
import { type RestApi, startRestApi } from '../../sandbox/rest/server.ts';
import { type SandboxControls, SandboxStats } from '../../sandbox/stats.ts';
import { externalSupabase, needsSandbox, supabaseUnderTest } from '../helpers/external.ts';
import { tempDir } from '../helpers/run.ts';

const jwtSecret = 'rest-api-test-secret-with-at-least-32-chars';
const ref = 'testprojectref000000';

let dir: string;
let postgres: SandboxPostgres;
let admin: pg.Client;
let keys: ProjectKeys;
let api: RestApi;
let localApi: RestApi;
/** The API under test: the sandbox's, or the Supabase HD_TEST_SUPABASE_URL names. */
let target: { url: string; serviceRoleKey: string; anonKey: string };
/** SQL as the database's owner, on the database behind `target`. */
let sql: <T = Record<string, unknown>>(text: string, params?: unknown[]) => Promise<T[]>;
let account: string;
const stats = new SandboxStats();
const controls: SandboxControls = { latencyMs: 0 };

function client(url: string, key: string): SupabaseClient {
  return createClient(url, key, {
    auth: { persistSession: false, autoRefreshToken: false },
    // Node 20 has no global WebSocket; supabase-js wants a transport even when realtime is unused.
    realtime: { transport: ws as unknown as never },
  });
}

let service: SupabaseClient;
let anon: SupabaseClient;

/** The test functions, named so they cannot meet a project's own; dropped after the file on a real project. */
const FUNCTIONS = `
    create or replace function public.hd_test_count_jobs(p_status text, p_account uuid) returns integer language sql stable
      as $$ select count(*)::int from public.hd_ingestion_jobs where status = p_status and account_id = p_account $$;
    create or replace function public.hd_test_jobs_of_type(p_type text, p_account uuid, p_limit integer default 10)
      returns setof public.hd_ingestion_jobs language sql stable
      as $$ select * from public.hd_ingestion_jobs where job_type = p_type and account_id = p_account order by created_at limit p_limit $$;
    create or replace function public.hd_test_touch() returns void language sql as $$ select 1 $$;
    -- Supabase's default privileges grant anon and authenticated EXECUTE directly, not only through PUBLIC.
    revoke all on function public.hd_test_count_jobs(text, uuid) from public, anon, authenticated;
    grant execute on function public.hd_test_count_jobs(text, uuid) to service_role;
  `;
const DROP_FUNCTIONS = `
    drop function if exists public.hd_test_count_jobs(text, uuid);
    drop function if exists public.hd_test_jobs_of_type(text, uuid, integer);
    drop function if exists public.hd_test_touch();
    drop function if exists public.hd_test_late(integer);
  `;

/** Until the API serves `fn` (PostgREST reloads its schema cache after DDL, on its own time). */
async function untilServed(fn: string): Promise<void> {
  await sql("notify pgrst, 'reload schema'");
  for (let i = 0; ; i++) {
    const res = await raw(`/rest/v1/rpc/${fn}`, {
      method: 'POST',
      body: '{}',
      headers: { 'Content-Type': 'application/json' },
    });
    if (res.status !== 404) return;
    if (i >= 120) throw new Error(`the API does not serve ${fn} after a schema reload`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  if (externalSupabase()) {
    const t = await supabaseUnderTest();
    target = t;
    sql = t.sql;
    account = t.accountId;
  } else {
    await startOwnApi();
    account = '6f1c7a52-2d0e-4b8e-9a57-3c1f0e2b9d41';
  }
  await sql(FUNCTIONS);
  await untilServed('hd_test_touch');
  service = client(target.url, target.serviceRoleKey);
  anon = client(target.url, target.anonKey);
});

/** The sandbox's cluster with two projects and an API on each, in this process (its stats and faults at hand). */
async function startOwnApi(): Promise<void> {
  dir = tempDir('rest-api-test-');
  postgres = await startPostgres({ dir });
  const cloudConn = await postgres.createProjectDatabase('cloud');
  const localConn = await postgres.createProjectDatabase('local');
  keys = await makeProjectKeys({ jwtSecret, ref });
  // This file's API runs in-process: it takes HD_SANDBOX_POSTGREST as a sandbox's supervisor does.
  const version = process.env.HD_SANDBOX_POSTGREST;
  const limits = version === '12' || version === '14' ? { postgrest: Number(version) as 12 | 14 } : {};
  api = await startRestApi({
    name: 'cloud',
    connectionString: cloudConn,
    jwtSecret,
    ref,
    keys,
    port: 0,
    stats,
    controls,
    limits,
  });
  localApi = await startRestApi({
    name: 'local',
    connectionString: localConn,
    jwtSecret,
    ref,
    keys,
    port: 0,
    stats,
    controls,
    limits,
  });
  admin = new pg.Client({ connectionString: postgres.adminConnectionString('cloud') });
  await admin.connect();
  target = { url: api.url, serviceRoleKey: keys.serviceRoleKey, anonKey: keys.anonKey };
  sql = async (text, params) => (await admin.query(text, params)).rows;
}

afterAll(async () => {
  if (externalSupabase()) await sql(DROP_FUNCTIONS);
  await api?.close();
  await localApi?.close();
  await admin?.end();
  await postgres?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  controls.latencyMs = 0;
  controls.httpFault = undefined;
  await sql('delete from public.hd_ingestion_jobs where account_id = $1', [account]);
});

/** Skips a test about the sandbox itself in HD_TEST_SUPABASE_URL mode. */
const sandboxOnly = (ctx: TestContext, reason: string) => needsSandbox(ctx, reason);

/** Plants jobs of this file's account, oldest first; returns their ids. */
async function seed(rows: { job_type: string; status?: string; attempts?: number }[]): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, r] of rows.entries()) {
    const out = await sql<{ id: string }>(
      `insert into public.hd_ingestion_jobs (account_id, job_type, status, attempts, created_at)
       values ($5, $1, $2, $3, now() - make_interval(secs => $4)) returning id`,
      [r.job_type, r.status ?? 'queued', r.attempts ?? 0, 100 - i, account],
    );
    ids.push(out[0].id);
  }
  return ids;
}

/** This file's jobs, as a supabase-js query on `c`. */
const jobs = (c: SupabaseClient) => ({
  select: <Q extends string = '*'>(columns?: Q, options?: { count?: 'exact'; head?: boolean }) =>
    c.from('hd_ingestion_jobs').select(columns, options).eq('account_id', account),
});

function raw(path: string, init: RequestInit & { key?: string | null } = {}): Promise<Response> {
  const key = init.key === undefined ? target.serviceRoleKey : init.key;
  const headers = new Headers(init.headers);
  if (key !== null) {
    headers.set('apikey', key);
    if (!headers.has('Authorization')) headers.set('Authorization', `Bearer ${key}`);
  }
  return fetch(`${target.url}${path}`, { ...init, headers });
}

/** A raw path on this file's jobs: `/rest/v1/hd_ingestion_jobs?account_id=eq.…` plus `query`. */
const own = (query = '') => `/rest/v1/hd_ingestion_jobs?account_id=eq.${account}${query ? `&${query}` : ''}`;

describe('reads through supabase-js', () => {
  it('selects with filters, order and limit', async () => {
    await seed([
      { job_type: 'ingest', status: 'queued' },
      { job_type: 'ingest', status: 'done' },
      { job_type: 'thumbs', status: 'queued' },
      { job_type: 'ingest', status: 'queued', attempts: 2 },
    ]);
    const { data, error, status } = await jobs(service)
      .select('job_type, status, attempts')
      .in('status', ['queued', 'pending'])
      .order('created_at', { ascending: false })
      .limit(2);
    expect(error).toBeNull();
    expect(status).toBe(200);
    expect(data).toEqual([
      { job_type: 'ingest', status: 'queued', attempts: 2 },
      { job_type: 'thumbs', status: 'queued', attempts: 0 },
    ]);

    const or = await jobs(service)
      .select('job_type')
      .or('status.eq.done,and(job_type.eq.thumbs,attempts.lt.1)')
      .order('job_type');
    expect(or.data).toEqual([{ job_type: 'ingest' }, { job_type: 'thumbs' }]);
  });

  it('returns PostgreSQL JSON: timestamps as ISO strings, jsonb as objects', async () => {
    await sql(`insert into public.hd_ingestion_jobs (account_id, job_type, debug) values ($1, 'x', '{"a":[1,2]}')`, [
      account,
    ]);
    const { data } = await jobs(service).select('created_at, debug, attempts, error').single();
    expect(data).toMatchObject({ debug: { a: [1, 2] }, attempts: 0, error: null });
    expect(data?.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$/);
  });

  it('counts with head: true', async () => {
    await seed([{ job_type: 'a' }, { job_type: 'b' }, { job_type: 'c', status: 'done' }]);
    const { data, count, error, status } = await jobs(service)
      .select('*', { count: 'exact', head: true })
      .eq('status', 'queued');
    expect(error).toBeNull();
    expect(status).toBe(200);
    expect(data).toBeNull();
    expect(count).toBe(2);
  });

  it('single() gives the object, or 406 PGRST116 when there is not exactly one row', async () => {
    const [id] = await seed([{ job_type: 'one' }]);
    const one = await jobs(service).select('id, job_type').eq('id', id).single();
    expect(one.data).toEqual({ id, job_type: 'one' });
    const none = await jobs(service).select('id').eq('job_type', 'zero').single();
    expect(none.status).toBe(406);
    expect(none.error).toMatchObject({ code: 'PGRST116', details: 'The result contains 0 rows' });
  });
});

describe('writes through supabase-js', () => {
  it('inserts one object and an array', async () => {
    const one = await service
      .from('hd_ingestion_jobs')
      .insert({ account_id: account, job_type: 'ingest', payload: { file: 'a.mov' } })
      .select()
      .single();
    expect(one.error).toBeNull();
    expect(one.status).toBe(201);
    expect(one.data).toMatchObject({ job_type: 'ingest', status: 'queued', attempts: 0, payload: { file: 'a.mov' } });
    expect(one.data?.id).toMatch(/^[0-9a-f-]{36}$/);

    const many = await service
      .from('hd_ingestion_jobs')
      .insert([
        { account_id: account, job_type: 'a' },
        { account_id: account, job_type: 'b', status: 'pending' },
      ])
      .select('job_type, status');
    // supabase-js sends columns=; the first row lacks status, so PostgREST sends NULL and NOT NULL refuses it.
    expect(many.status).toBe(400);
    expect(many.error).toMatchObject({ code: '23502' });

    const same = await service
      .from('hd_ingestion_jobs')
      .insert(
        [
          { account_id: account, job_type: 'a' },
          { account_id: account, job_type: 'b', status: 'pending' },
        ],
        { defaultToNull: false },
      )
      .select('job_type, status');
    expect(same.error).toBeNull();
    expect(same.data).toEqual([
      { job_type: 'a', status: 'queued' },
      { job_type: 'b', status: 'pending' },
    ]);

    const minimal = await service.from('hd_ingestion_jobs').insert({ account_id: account, job_type: 'quiet' });
    expect(minimal).toMatchObject({ error: null, data: null, status: 201 });
  });

  it('a conditional update returns the changed row, and nothing once its guard fails', async () => {
    const [id] = await seed([{ job_type: 'ingest' }]);
    const startedAt = new Date().toISOString();
    const claim = () =>
      service
        .from('hd_ingestion_jobs')
        .update({ status: 'running', started_at: startedAt, attempts: 1 })
        .eq('id', id)
        .eq('status', 'queued')
        .select();
    const first = await claim();
    expect(first.error).toBeNull();
    expect(first.status).toBe(200);
    expect(first.data).toHaveLength(1);
    expect(first.data?.[0]).toMatchObject({ id, status: 'running', attempts: 1 });
    expect(new Date(first.data?.[0].started_at).toISOString()).toBe(startedAt);

    const second = await claim();
    expect(second.error).toBeNull();
    expect(second.data).toEqual([]);
  });

  it('an update without select() answers 204; a check violation 400 23514', async () => {
    const [id] = await seed([{ job_type: 'x' }]);
    const quiet = await service.from('hd_ingestion_jobs').update({ status: 'done' }).eq('id', id);
    expect(quiet).toMatchObject({ error: null, status: 204 });
    const bad = await service.from('hd_ingestion_jobs').update({ status: 'exploded' }).eq('id', id);
    expect(bad.status).toBe(400);
    expect(bad.error).toMatchObject({ code: '23514' });
  });

  it('an unknown column in an update body is PGRST204', async () => {
    const bad = await service
      .from('hd_ingestion_jobs')
      .update({ colour: 'red' })
      .eq('id', '00000000-0000-0000-0000-000000000000');
    expect(bad.status).toBe(400);
    expect(bad.error).toMatchObject({
      code: 'PGRST204',
      message: "Could not find the 'colour' column of 'hd_ingestion_jobs' in the schema cache",
    });
  });

  it('a duplicate key is 409 23505; upsert merges on the primary key', async () => {
    const [id] = await seed([{ job_type: 'dup' }]);
    const dup = await service.from('hd_ingestion_jobs').insert({ id, account_id: account, job_type: 'dup' });
    expect(dup.status).toBe(409);
    expect(dup.error).toMatchObject({ code: '23505' });
    const up = await service
      .from('hd_ingestion_jobs')
      .upsert({ id, account_id: account, job_type: 'dup', status: 'done' })
      .select('id, status');
    expect(up.error).toBeNull();
    expect(up.data).toEqual([{ id, status: 'done' }]);
  });

  it('deletes with a filter', async () => {
    await seed([{ job_type: 'a', status: 'done' }, { job_type: 'b' }]);
    const del = await service
      .from('hd_ingestion_jobs')
      .delete()
      .eq('account_id', account)
      .eq('status', 'done')
      .select('job_type');
    expect(del.data).toEqual([{ job_type: 'a' }]);
    expect((await jobs(service).select('job_type')).data).toEqual([{ job_type: 'b' }]);
  });

  it('refuses a delete without a filter', async (ctx) => {
    sandboxOnly(ctx, 'a delete without a filter empties the whole table where nothing refuses it');
    const all = await service.from('hd_ingestion_jobs').delete();
    expect(all.status).toBe(400);
    expect(all.error).toMatchObject({ code: '21000', message: 'DELETE requires a WHERE clause' });
  });
});

describe('roles and keys', () => {
  it('the anon key sees no jobs; the service key sees them all', async () => {
    await seed([{ job_type: 'a' }, { job_type: 'b' }]);
    const asAnon = await jobs(anon).select('*', { count: 'exact' });
    expect(asAnon.error).toBeNull();
    expect(asAnon.data).toEqual([]);
    expect(asAnon.count).toBe(0);
    const asService = await jobs(service).select('id');
    expect(asService.data).toHaveLength(2);
  });

  it('anon may insert a queued job but not read it back, nor update', async () => {
    const blind = await anon.from('hd_ingestion_jobs').insert({ account_id: account, job_type: 'from-app' });
    expect(blind).toMatchObject({ error: null, status: 201 });
    const readBack = await anon
      .from('hd_ingestion_jobs')
      .insert({ account_id: account, job_type: 'from-app' })
      .select();
    expect(readBack.status).toBe(401);
    expect(readBack.error).toMatchObject({ code: '42501' });
    const update = await anon
      .from('hd_ingestion_jobs')
      .update({ status: 'done' })
      .eq('account_id', account)
      .eq('job_type', 'from-app');
    expect(update.status).toBe(401);
    expect(update.error).toMatchObject({ code: '42501', message: 'permission denied for table hd_ingestion_jobs' });
  });

  it('an sb_secret_ key works like the service role; sb_publishable_ like anon', async (ctx) => {
    sandboxOnly(ctx, 'its sb_secret_ and sb_publishable_ keys; HD_TEST_SUPABASE_* names the JWT keys only');
    await seed([{ job_type: 'a' }]);
    const secret = await jobs(client(api.url, keys.secretKey)).select('job_type');
    expect(secret.data).toEqual([{ job_type: 'a' }]);
    const publishable = await jobs(client(api.url, keys.publishableKey)).select('job_type');
    expect(publishable.data).toEqual([]);
    // The reference worker sends an sb_ key in apikey only.
    const res = await fetch(`${api.url}${own('select=job_type')}`, {
      headers: { apikey: keys.secretKey },
    });
    expect(await res.json()).toEqual([{ job_type: 'a' }]);
  });

  it('missing apikey: 401 with the gateway body', async () => {
    const res = await raw('/rest/v1/hd_ingestion_jobs', { key: null });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({
      message: 'No API key found in request',
      hint: 'No `apikey` request header or url param was found.',
    });
    const viaUrl = await raw(own(`apikey=${target.serviceRoleKey}`), { key: null });
    expect(viaUrl.status).toBe(200);
  });

  it('a key of another project: 401 Invalid API key; a forged JWT: 401 PGRST301', async () => {
    const other = await makeProjectKeys({ jwtSecret: 'some-other-projects-secret-32-chars-long', ref: 'otherref' });
    const res = await jobs(client(target.url, other.serviceRoleKey)).select();
    expect(res.status).toBe(401);
    expect(res.error).toMatchObject({ message: 'Invalid API key' });
    const forged = await raw(own(), {
      key: target.anonKey,
      headers: { Authorization: `Bearer ${other.serviceRoleKey}` },
    });
    expect(forged.status).toBe(401);
    if (process.env.HD_SANDBOX_POSTGREST === '12') {
      // PostgREST 12 shows jose's error (AuthSpec.hs at v12.2.12), and sends no Proxy-Status.
      expect(await forged.json()).toMatchObject({ code: 'PGRST301', message: 'JWSError JWSInvalidSignature' });
      expect(forged.headers.get('proxy-status')).toBeNull();
      return;
    }
    // PostgREST 13, the sandbox's default, and 14 (test/io/test_io.py `test_jwt_errors` at v13.0.8).
    expect(await forged.json()).toEqual({
      code: 'PGRST301',
      message: 'No suitable key or wrong key type',
      details: 'None of the keys was able to decode the JWT',
      hint: null,
    });
    expect(forged.headers.get('proxy-status')).toBe('PostgREST; error=PGRST301');
  });
});

describe('errors like PostgREST', () => {
  it('a bad filter: 400 PGRST100 with message and details', async () => {
    const { error, status } = await service.from('hd_ingestion_jobs').select().filter('status', 'equals', 'x');
    expect(status).toBe(400);
    expect(error).toMatchObject({
      code: 'PGRST100',
      message: '"failed to parse filter (equals.x)" (line 1, column 8)',
      details: 'unknown single value operator equals',
      hint: null,
    });
  });

  it('an unknown column: 400 42703; an unknown table: 404 PGRST205', async () => {
    const col = await service.from('hd_ingestion_jobs').select('id').eq('statuz', 'x');
    expect(col.status).toBe(400);
    expect(col.error).toMatchObject({ code: '42703', message: 'column hd_ingestion_jobs.statuz does not exist' });
    const table = await service.from('hd_jobs').select();
    expect(table.status).toBe(404);
    // PostgREST 12 passes PostgreSQL's own error through; 13 and later answer from the schema cache
    // (HD_SANDBOX_POSTGREST runs the suite as another version; a real Supabase may run any of them).
    const v12 = { code: '42P01', message: 'relation "public.hd_jobs" does not exist' };
    const v13 = { code: 'PGRST205', message: "Could not find the table 'public.hd_jobs' in the schema cache" };
    const version = process.env.HD_SANDBOX_POSTGREST;
    if (externalSupabase()) expect([v12.code, v13.code]).toContain(table.error?.code);
    else expect(table.error).toMatchObject(version === '12' ? v12 : v13);
  });

  it('a bad uuid is PostgreSQL 22P02, 400', async () => {
    const { error, status } = await service.from('hd_ingestion_jobs').select().eq('id', 'not-a-uuid');
    expect(status).toBe(400);
    expect(error).toMatchObject({ code: '22P02' });
  });
});

describe('rpc', () => {
  it('calls a scalar function with named arguments (POST and GET)', async () => {
    await seed([{ job_type: 'a' }, { job_type: 'b' }, { job_type: 'c', status: 'done' }]);
    const post = await service.rpc('hd_test_count_jobs', { p_status: 'queued', p_account: account });
    expect(post).toMatchObject({ error: null, data: 2, status: 200 });
    const get = await service.rpc('hd_test_count_jobs', { p_status: 'done', p_account: account }, { get: true });
    expect(get.data).toBe(1);
  });

  it('calls a set-returning function, with a default argument', async () => {
    await seed([{ job_type: 'x' }, { job_type: 'x' }, { job_type: 'y' }]);
    const { data, error } = await service.rpc('hd_test_jobs_of_type', { p_type: 'x', p_account: account });
    expect(error).toBeNull();
    expect(data).toHaveLength(2);
    expect(data[0]).toMatchObject({ job_type: 'x', status: 'queued' });
    const limited = await service.rpc('hd_test_jobs_of_type', { p_type: 'x', p_account: account, p_limit: 1 });
    expect(limited.data).toHaveLength(1);
  });

  it('a void function answers 204; a missing one 404 PGRST202; no EXECUTE 401 for anon', async () => {
    expect((await service.rpc('hd_test_touch')).status).toBe(204);
    const missing = await service.rpc('nope', { a: 1 });
    expect(missing.status).toBe(404);
    expect(missing.error).toMatchObject({
      code: 'PGRST202',
      message: 'Could not find the function public.nope(a) in the schema cache',
    });
    const denied = await anon.rpc('hd_test_count_jobs', { p_status: 'queued', p_account: account });
    expect(denied.status).toBe(401);
    expect(denied.error).toMatchObject({ code: '42501' });
  });

  it('a function created after start is callable at once', async (ctx) => {
    sandboxOnly(
      ctx,
      'its API reads the catalog on each call; PostgREST serves a schema cache reloaded on its own time',
    );
    await sql(
      'create or replace function public.hd_test_late(n integer) returns integer language sql immutable as $$ select n * 2 $$',
    );
    expect((await service.rpc('hd_test_late', { n: 21 })).data).toBe(42);
  });
});

describe('headers over raw HTTP', () => {
  it('Content-Range: page/total with count=exact (206 when partial), */* without', async () => {
    await seed([{ job_type: 'a' }, { job_type: 'b' }, { job_type: 'c' }]);
    const page = await raw(own('select=job_type&order=created_at&limit=2'), {
      headers: { Prefer: 'count=exact' },
    });
    expect(page.status).toBe(206);
    expect(page.headers.get('content-range')).toBe('0-1/3');
    expect(page.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await page.json()).toEqual([{ job_type: 'a' }, { job_type: 'b' }]);

    const all = await raw(own('select=job_type'), { headers: { Prefer: 'count=exact' } });
    expect(all.status).toBe(200);
    expect(all.headers.get('content-range')).toBe('0-2/3');

    const empty = await raw(own('job_type=eq.none'));
    expect(empty.headers.get('content-range')).toBe('*/*');
    expect(await empty.text()).toBe('[]');

    const emptyCounted = await raw(own('job_type=eq.none'), {
      headers: { Prefer: 'count=exact' },
    });
    expect(emptyCounted.headers.get('content-range')).toBe('*/0');
  });

  it('HEAD answers headers only', async () => {
    await seed([{ job_type: 'a' }, { job_type: 'b' }]);
    const res = await raw(own(), { method: 'HEAD', headers: { Prefer: 'count=exact' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-range')).toBe('0-1/2');
    expect(await res.text()).toBe('');
  });

  it('POST with return=representation is 201; PATCH with minimal 204', async () => {
    const created = await raw('/rest/v1/hd_ingestion_jobs?select=job_type', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Prefer: 'return=representation' },
      body: JSON.stringify({ account_id: account, job_type: 'raw' }),
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('content-range')).toBe('*/*');
    expect(await created.json()).toEqual([{ job_type: 'raw' }]);
    const patched = await raw(own('job_type=eq.raw'), {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/json', Prefer: 'return=minimal' },
      body: JSON.stringify({ status: 'done' }),
    });
    expect(patched.status).toBe(204);
    expect(patched.headers.get('content-range')).toBe('0-0/*');
  });

  it('answers GET /rest/v1/ and CORS preflight', async () => {
    const root = await raw('/rest/v1/');
    expect(root.status).toBe(200);
    expect(Object.keys(((await root.json()) as { paths: object }).paths)).toContain('/hd_ingestion_jobs');
    const preflight = await fetch(`${target.url}/rest/v1/hd_ingestion_jobs`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://example.test', 'Access-Control-Request-Method': 'PATCH' },
    });
    expect(preflight.status).toBe(200);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('two projects in one cluster', () => {
  it('keeps their data apart', async (ctx) => {
    sandboxOnly(ctx, 'its second (local) instance in the same cluster');
    await seed([{ job_type: 'cloud-only' }]);
    const local = client(localApi.url, keys.serviceRoleKey);
    expect((await jobs(local).select('job_type')).data).toEqual([]);
    await local.from('hd_ingestion_jobs').insert({ account_id: account, job_type: 'local-only' });
    expect((await jobs(service).select('job_type')).data).toEqual([{ job_type: 'cloud-only' }]);
  });
});

describe('stats and faults', () => {
  it('records every request with api, method, role, path and status', async (ctx) => {
    sandboxOnly(ctx, 'its request stats');
    stats.reset();
    await raw('/rest/v1/hd_ingestion_jobs?select=id');
    await raw('/rest/v1/hd_ingestion_jobs', { key: null });
    const snap = stats.snapshot();
    expect(snap.http.cloud.GET).toEqual({ service_role: 1, none: 1 });
    expect(snap.events.map((e) => [e.api, e.role, e.path, e.status])).toEqual([
      ['cloud', 'service_role', '/rest/v1/hd_ingestion_jobs', 200],
      ['cloud', 'none', '/rest/v1/hd_ingestion_jobs', 401],
    ]);
    expect(snap.events[0].bytesOut).toBe(2);
  });

  it('status fault: that status with a PostgREST-ish body, only for the targeted API', async (ctx) => {
    sandboxOnly(ctx, 'its fault switches');
    controls.httpFault = { api: 'cloud', kind: 'status', status: 503 };
    const res = await raw('/rest/v1/hd_ingestion_jobs');
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: 'PGRST002', details: null, hint: null });
    const local = await fetch(`${localApi.url}/rest/v1/hd_ingestion_jobs`, {
      headers: { apikey: keys.serviceRoleKey },
    });
    expect(local.status).toBe(200);
  });

  it('malformed-json fault: 200 with a body that does not parse', async (ctx) => {
    sandboxOnly(ctx, 'its fault switches');
    controls.httpFault = { kind: 'malformed-json' };
    const res = await raw('/rest/v1/hd_ingestion_jobs');
    expect(res.status).toBe(200);
    await expect(res.json()).rejects.toThrow();
  });

  it('reset fault: the connection is dropped', async (ctx) => {
    sandboxOnly(ctx, 'its fault switches');
    controls.httpFault = { kind: 'reset' };
    await expect(raw('/rest/v1/hd_ingestion_jobs')).rejects.toThrow();
  });

  it('slow fault and latency delay the answer', async (ctx) => {
    sandboxOnly(ctx, 'its fault and latency switches');
    controls.httpFault = { kind: 'slow', delayMs: 150 };
    controls.latencyMs = 100;
    const started = Date.now();
    const res = await raw('/rest/v1/hd_ingestion_jobs');
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(240);
  });
});

describe('the sandbox cluster', () => {
  it('is never another cluster that answers on its port: a taken port is detected and another one used', async (ctx) => {
    sandboxOnly(ctx, 'its own PostgreSQL cluster');
    // The port of the cluster above, given to a second one: what two sandboxes starting at once can run into.
    const second = await startPostgres({ dir: tempDir('rest-api-second-'), port: postgres.port });
    try {
      expect(second.port).not.toBe(postgres.port);
      await second.createProjectDatabase('only_in_second');
      const client = new pg.Client({ connectionString: postgres.adminConnectionString() });
      await client.connect();
      try {
        const { rowCount } = await client.query("select 1 from pg_database where datname = 'only_in_second'");
        expect(rowCount).toBe(0);
      } finally {
        await client.end();
      }
    } finally {
      await second.stop();
    }
  });
});
