import { describe, expect, it } from 'vitest';
import {
  type CallPlan,
  contentRange,
  type MutatePlan,
  negotiateMedia,
  type Plan,
  parseFilterValue,
  parseLogicTree,
  parsePrefer,
  planRequest,
  type ReadPlan,
  type RestRequest,
  respond,
  type SchemaCache,
} from '../../sandbox/rest/query.ts';

const JOB_COLUMNS = [
  ['id', 'uuid'],
  ['account_id', 'uuid'],
  ['job_type', 'text'],
  ['status', 'text'],
  ['attempts', 'integer'],
  ['error', 'text'],
  ['debug', 'jsonb'],
  ['payload', 'jsonb'],
  ['created_at', 'timestamp with time zone'],
  ['started_at', 'timestamp with time zone'],
  ['finished_at', 'timestamp with time zone'],
] as const;

const schema: SchemaCache = {
  schema: 'public',
  tables: new Map([
    [
      'hd_ingestion_jobs',
      {
        schema: 'public',
        name: 'hd_ingestion_jobs',
        columns: JOB_COLUMNS.map(([name, type]) => ({ name, type })),
        primaryKey: ['id'],
      },
    ],
  ]),
  functions: new Map([
    [
      'claim_job',
      [
        {
          schema: 'public',
          name: 'claim_job',
          args: [
            { name: 'worker', type: 'text', hasDefault: false },
            { name: 'max_attempts', type: 'integer', hasDefault: true },
          ],
          returnsSet: true,
          returnsVoid: false,
          volatility: 'v' as const,
        },
      ],
    ],
    [
      'ping',
      [{ schema: 'public', name: 'ping', args: [], returnsSet: false, returnsVoid: true, volatility: 'v' as const }],
    ],
  ]),
};

const T = '"hd_ingestion_jobs"';

function request(
  method: string,
  pathAndQuery: string,
  init: { headers?: Record<string, string>; body?: unknown } = {},
): RestRequest {
  const [path, qs = ''] = pathAndQuery.split('?');
  const headers = Object.fromEntries(Object.entries(init.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    method,
    path,
    query: new URLSearchParams(qs),
    headers,
    body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
  };
}

function plan(method: string, pathAndQuery: string, init?: { headers?: Record<string, string>; body?: unknown }): Plan {
  const r = planRequest(request(method, pathAndQuery, init), schema);
  if (!r.ok) throw new Error(`expected a plan, got ${JSON.stringify(r.error)}`);
  return r.plan;
}

function fail(method: string, pathAndQuery: string, init?: { headers?: Record<string, string>; body?: unknown }) {
  const r = planRequest(request(method, pathAndQuery, init), schema);
  if (r.ok) throw new Error(`expected an error, got ${r.plan.kind}`);
  return r.error;
}

function sqlOf(p: Plan): { text: string; values: unknown[] } {
  if (p.kind === 'root') throw new Error('root plan has no SQL');
  return p.statement;
}

describe('filters become parameterised WHERE clauses', () => {
  const cases: [string, string, unknown[]][] = [
    ['status=eq.queued', `${T}."status" = $1`, ['queued']],
    ['status=neq.done', `${T}."status" <> $1`, ['done']],
    ['attempts=gt.1', `${T}."attempts" > $1`, ['1']],
    ['attempts=gte.1', `${T}."attempts" >= $1`, ['1']],
    ['attempts=lt.3', `${T}."attempts" < $1`, ['3']],
    ['attempts=lte.3', `${T}."attempts" <= $1`, ['3']],
    ['job_type=like.*ingest*', `${T}."job_type" LIKE $1`, ['%ingest%']],
    ['job_type=ilike.HD*', `${T}."job_type" ILIKE $1`, ['HD%']],
    ['status=in.(queued,running)', `${T}."status" IN ($1, $2)`, ['queued', 'running']],
    ['status=in.("a,b","c)d",e)', `${T}."status" IN ($1, $2, $3)`, ['a,b', 'c)d', 'e']],
    ['status=in.("say \\"hi\\"")', `${T}."status" IN ($1)`, ['say "hi"']],
    ['status=in.()', 'false', []],
    ['error=is.null', `${T}."error" IS NULL`, []],
    ['error=not.is.null', `NOT (${T}."error" IS NULL)`, []],
    ['status=not.eq.done', `NOT (${T}."status" = $1)`, ['done']],
    ['status=not.in.(done,failed)', `NOT (${T}."status" IN ($1, $2))`, ['done', 'failed']],
    ['debug->>source=eq.x', `${T}."debug"->>$1::text = $2`, ['source', 'x']],
    ['debug->steps->0=eq.1', `${T}."debug"->$1::text->$2::int = $3`, ['steps', 0, '1']],
    ['error=eq.a.b.c', `${T}."error" = $1`, ['a.b.c']],
    ['error=eq.', `${T}."error" = $1`, ['']],
  ];
  it.each(cases)('%s', (qs, where, values) => {
    const s = sqlOf(plan('GET', `/hd_ingestion_jobs?${qs}`));
    expect(s.text).toContain(` WHERE ${where}`);
    expect(s.values).toEqual(values);
  });

  it('ANDs several filters, including two on one column', () => {
    const s = sqlOf(plan('GET', '/hd_ingestion_jobs?attempts=gt.1&attempts=lt.5&status=eq.queued'));
    expect(s.text).toContain(`WHERE ${T}."attempts" > $1 AND ${T}."attempts" < $2 AND ${T}."status" = $3`);
    expect(s.values).toEqual(['1', '5', 'queued']);
  });

  it('accepts the trilean values of is, case-insensitively', () => {
    for (const v of ['null', 'NULL', 'true', 'false', 'unknown']) {
      expect(sqlOf(plan('GET', `/hd_ingestion_jobs?error=is.${v}`)).text).toContain(`IS ${v.toUpperCase()}`);
    }
  });
});

describe('or/and logic trees', () => {
  const cases: [string, string, unknown[]][] = [
    ['or=(status.eq.queued,error.is.null)', `(${T}."status" = $1 OR ${T}."error" IS NULL)`, ['queued']],
    [
      'or=(status.eq.done,and(status.eq.queued,attempts.lt.3))',
      `(${T}."status" = $1 OR (${T}."status" = $2 AND ${T}."attempts" < $3))`,
      ['done', 'queued', '3'],
    ],
    ['and=(attempts.gte.1,attempts.lte.2)', `(${T}."attempts" >= $1 AND ${T}."attempts" <= $2)`, ['1', '2']],
    ['not.or=(status.eq.a,status.eq.b)', `NOT (${T}."status" = $1 OR ${T}."status" = $2)`, ['a', 'b']],
    ['or=(error.eq."a,b)",status.in.(x,y))', `(${T}."error" = $1 OR ${T}."status" IN ($2, $3))`, ['a,b)', 'x', 'y']],
    ['or=(status.not.eq.done, error.is.null)', `(NOT (${T}."status" = $1) OR ${T}."error" IS NULL)`, ['done']],
  ];
  it.each(cases)('%s', (qs, where, values) => {
    const s = sqlOf(plan('GET', `/hd_ingestion_jobs?${qs}`));
    expect(s.text).toContain(` WHERE ${where}`);
    expect(s.values).toEqual(values);
  });
});

describe('select, order, limit and offset', () => {
  it('defaults to every column', () => {
    expect(sqlOf(plan('GET', '/hd_ingestion_jobs')).text).toContain(`SELECT ${T}.* FROM "public"."hd_ingestion_jobs"`);
  });

  it('takes a column list with whitespace, aliases, JSON paths and casts', () => {
    const s = sqlOf(plan('GET', '/hd_ingestion_jobs?select= id , state:status,debug->>source_line,attempts::text'));
    expect(s.text).toContain(
      `SELECT ${T}."id", ${T}."status" AS "state", ${T}."debug"->>$1::text AS "source_line", CAST(${T}."attempts" AS text) AS "attempts" FROM`,
    );
    expect(s.values).toEqual(['source_line']);
  });

  it('orders by several terms with directions and null placement', () => {
    const s = sqlOf(plan('GET', '/hd_ingestion_jobs?order=created_at.desc.nullslast,id,attempts.nullsfirst'));
    expect(s.text).toContain(`ORDER BY ${T}."created_at" DESC NULLS LAST, ${T}."id", ${T}."attempts" NULLS FIRST`);
  });

  it('passes limit and offset as parameters', () => {
    const p = plan('GET', '/hd_ingestion_jobs?limit=10&offset=20') as ReadPlan;
    expect(p.statement.text).toContain('LIMIT $1 OFFSET $2');
    expect(p.statement.values).toEqual([10, 20]);
    expect(p.offset).toBe(20);
  });

  it('counts over the filtered table when asked to', () => {
    const p = plan('GET', '/hd_ingestion_jobs?status=eq.queued&limit=1', {
      headers: { Prefer: 'count=exact' },
    }) as ReadPlan;
    expect(p.count).toBe(true);
    expect(p.statement.text).toContain(`(SELECT count(*) FROM "public"."hd_ingestion_jobs" WHERE ${T}."status" = $1)`);
    expect(p.preferenceApplied).toEqual(['count=exact']);
  });

  it('HEAD plans the same query without a body', () => {
    const p = plan('HEAD', '/hd_ingestion_jobs') as ReadPlan;
    expect(p.headOnly).toBe(true);
    expect(p.statement.text).toContain(`''::text AS body`);
  });
});

describe('malformed or unknown input is a 400, as PostgREST words it', () => {
  const cases: [string, number, string, string | RegExp][] = [
    ['status=foo.1', 400, 'PGRST100', '"failed to parse filter (foo.1)" (line 1, column 5)'],
    ['status=eq1', 400, 'PGRST100', /^"failed to parse filter \(eq1\)"/],
    ['error=is.nothing', 400, 'PGRST100', '"failed to parse filter (is.nothing)" (line 1, column 4)'],
    ['status=in.queued,done', 400, 'PGRST100', /failed to parse filter/],
    ['status=in.(a,b', 400, 'PGRST100', /failed to parse filter/],
    ['status=queued', 400, 'PGRST100', /failed to parse filter \(queued\)/],
    ['or=status.eq.a', 400, 'PGRST100', /failed to parse logic tree/],
    ['or=(status.eq.a', 400, 'PGRST100', /failed to parse logic tree/],
    ['or=(status.xx.a)', 400, 'PGRST100', /failed to parse logic tree/],
    ['order=id.ac', 400, 'PGRST100', '"failed to parse order (id.ac)" (line 1, column 4)'],
    ['select=id,,status', 400, 'PGRST100', /failed to parse select parameter/],
    ['statuz=eq.1', 400, '42703', 'column hd_ingestion_jobs.statuz does not exist'],
    ['select=id,nope', 400, '42703', 'column hd_ingestion_jobs.nope does not exist'],
    ['order=nope.desc', 400, '42703', 'column hd_ingestion_jobs.nope does not exist'],
    ['or=(nope.eq.1)', 400, '42703', 'column hd_ingestion_jobs.nope does not exist'],
    ['limit=abc', 400, 'PGRST100', /failed to parse limit parameter \(abc\)/],
    ['limit=1.5', 400, 'PGRST100', /failed to parse limit parameter/],
    ['offset=x', 400, 'PGRST100', /failed to parse offset parameter/],
    ['limit=-1', 416, 'PGRST103', 'Requested range not satisfiable'],
    ['offset=-1', 400, '2201X', 'OFFSET must not be negative'],
    ['status=cs.{a}', 400, 'PGRST127', 'Feature not implemented'],
    ['status=like(any).{a*,b*}', 400, 'PGRST127', 'Feature not implemented'],
    ['select=*,hd_assets(*)', 400, 'PGRST127', 'Feature not implemented'],
    ['hd_assets.name=eq.x', 400, 'PGRST108', "'hd_assets' is not an embedded resource in this request"],
    ['select=attempts::nosuchtype', 400, '42704', 'type "nosuchtype" does not exist'],
  ];
  it.each(cases)('%s → %i %s', (qs, status, code, message) => {
    const e = fail('GET', `/hd_ingestion_jobs?${qs}`);
    expect(e.status).toBe(status);
    expect(e.body).toMatchObject({ code });
    if (typeof message === 'string') expect(e.body.message).toBe(message);
    else expect(e.body.message).toMatch(message);
    expect(Object.keys(e.body).sort()).toEqual(['code', 'details', 'hint', 'message']);
  });

  it('explains an unknown operator in details', () => {
    expect(fail('GET', '/hd_ingestion_jobs?status=foo.1').body).toMatchObject({
      details: 'unknown single value operator foo',
    });
  });

  it('suggests the closest column for a typo', () => {
    expect(fail('GET', '/hd_ingestion_jobs?statuz=eq.1').body.hint).toBe(
      'Perhaps you meant to reference the column "hd_ingestion_jobs.status".',
    );
  });

  it('answers 404 PGRST205 for an unknown table', () => {
    const e = fail('GET', '/hd_jobs');
    expect(e.status).toBe(404);
    expect(e.body).toMatchObject({
      code: 'PGRST205',
      message: "Could not find the table 'public.hd_jobs' in the schema cache",
    });
  });

  it('answers 404 PGRST125 for a path deeper than one table', () => {
    expect(fail('GET', '/hd_ingestion_jobs/1').body).toMatchObject({ code: 'PGRST125' });
  });

  it('refuses another schema profile', () => {
    const e = fail('GET', '/hd_ingestion_jobs', { headers: { 'Accept-Profile': 'private' } });
    expect(e.status).toBe(406);
    expect(e.body).toMatchObject({ code: 'PGRST106', message: 'Invalid schema: private' });
  });

  it('refuses unknown Prefer tokens only with handling=strict', () => {
    expect(planRequest(request('GET', '/hd_ingestion_jobs', { headers: { Prefer: 'bogus=1' } }), schema).ok).toBe(true);
    expect(fail('GET', '/hd_ingestion_jobs', { headers: { Prefer: 'handling=strict, bogus=1' } }).body).toMatchObject({
      code: 'PGRST122',
    });
  });

  it('refuses an Accept it cannot produce', () => {
    expect(fail('GET', '/hd_ingestion_jobs', { headers: { Accept: 'text/csv' } })).toMatchObject({
      status: 406,
      body: { code: 'PGRST107' },
    });
  });
});

describe('injection attempts end up as parameters or a 400, never as SQL text', () => {
  const attempts = [
    "status=eq.done'; DROP TABLE hd_ingestion_jobs; --",
    `status=eq.${encodeURIComponent('x&status=eq.done')}`,
    'status=eq.a) OR (1=1',
    'status=in.(a);DELETE FROM hd_ingestion_jobs;--)',
    `or=(status.eq.${encodeURIComponent('"); DROP TABLE x; --')})`,
    'error=like.%25%27%3B--',
    'status=eq.$1',
    `debug->>${encodeURIComponent("a'; DROP TABLE x; --")}=eq.1`,
    'select=id,status;drop',
    `select=${encodeURIComponent('"id"" FROM pg_authid; --"')}`,
    `${encodeURIComponent('status" = \'x\' OR "1')}=eq.1`,
    'order=id;DROP TABLE x',
    'order=id.desc,(select 1)',
    'limit=1;DROP TABLE x',
    'offset=1 OR 1=1',
    'status=is.null;DROP',
    `select=${encodeURIComponent('attempts::text; DROP TABLE x')}`,
  ];
  const forbidden = ['DROP', 'DELETE FROM', 'pg_authid', "'x'", '1=1', ';', '--'];

  it.each(attempts)('%s', (qs) => {
    const r = planRequest(request('GET', `/hd_ingestion_jobs?${qs}`), schema);
    if (!r.ok) {
      expect(r.error.status).toBe(400);
      return;
    }
    const { text } = sqlOf(r.plan);
    for (const f of forbidden) expect(text).not.toContain(f);
  });

  it('keeps a value that looks like more query string as one parameter', () => {
    const s = sqlOf(plan('GET', `/hd_ingestion_jobs?status=eq.${encodeURIComponent('x&status=eq.done')}`));
    expect(s.values).toEqual(['x&status=eq.done']);
  });

  it('keeps quotes, semicolons and parens in values as data', () => {
    const value = `a'b"c;d)e(f,g`;
    const s = sqlOf(plan('GET', `/hd_ingestion_jobs?error=eq.${encodeURIComponent(value)}`));
    expect(s.values).toEqual([value]);
  });

  it('refuses an injected column in a request body', () => {
    const e = fail('PATCH', '/hd_ingestion_jobs?id=eq.1', { body: { "status\" = 'done' --": 'x' } });
    expect(e.body.code).toBe('PGRST204');
  });
});

describe('POST', () => {
  it('inserts one object and returns nothing by default', () => {
    const p = plan('POST', '/hd_ingestion_jobs', { body: { job_type: 'ingest', payload: { a: 1 } } }) as MutatePlan;
    expect(p.kind).toBe('create');
    expect(p.returnMode).toBe('minimal');
    expect(p.statement.text).toContain('INSERT INTO "public"."hd_ingestion_jobs" ("job_type", "payload") VALUES');
    expect(p.statement.text).toContain('RETURNING 1');
    expect(p.statement.values).toEqual([JSON.stringify({ job_type: 'ingest', payload: { a: 1 } })]);
  });

  it('inserts an array, one parameter per row', () => {
    const p = plan('POST', '/hd_ingestion_jobs?select=id,status', {
      body: [{ job_type: 'a' }, { job_type: 'b' }],
      headers: { Prefer: 'return=representation' },
    }) as MutatePlan;
    expect(p.statement.values).toHaveLength(2);
    expect(p.statement.text).toContain(`RETURNING ${T}."id", ${T}."status"`);
    expect(p.preferenceApplied).toEqual(['return=representation']);
  });

  it('requires the same keys in every object without columns=', () => {
    const e = fail('POST', '/hd_ingestion_jobs', { body: [{ job_type: 'a' }, { job_type: 'b', status: 'queued' }] });
    expect(e).toMatchObject({ status: 400, body: { code: 'PGRST102', message: 'All object keys must match' } });
  });

  it('with columns= fills missing keys with NULL, or DEFAULT under missing=default', () => {
    const body = [{ job_type: 'a' }, { job_type: 'b', status: 'queued' }];
    const nulls = sqlOf(plan('POST', '/hd_ingestion_jobs?columns="job_type","status"', { body }));
    expect(nulls.text).toMatch(/\."job_type", NULL\), \(/);
    const defaults = sqlOf(
      plan('POST', '/hd_ingestion_jobs?columns="job_type","status"', { body, headers: { Prefer: 'missing=default' } }),
    );
    expect(defaults.text).toMatch(/\."job_type", DEFAULT\), \(/);
  });

  it('refuses unknown keys with PGRST204', () => {
    const e = fail('POST', '/hd_ingestion_jobs', { body: { job_type: 'a', colour: 'red' } });
    expect(e).toMatchObject({
      status: 400,
      body: {
        code: 'PGRST204',
        message: "Could not find the 'colour' column of 'hd_ingestion_jobs' in the schema cache",
      },
    });
  });

  it('refuses a body that is not JSON', () => {
    expect(fail('POST', '/hd_ingestion_jobs', { body: '{"job_type":' }).body).toMatchObject({
      code: 'PGRST102',
      message: 'Empty or invalid json',
    });
    expect(fail('POST', '/hd_ingestion_jobs', { body: '' }).body.code).toBe('PGRST102');
    expect(fail('POST', '/hd_ingestion_jobs', { body: '5' }).body.code).toBe('PGRST102');
  });

  it('upserts on the primary key with resolution=merge-duplicates', () => {
    const s = sqlOf(
      plan('POST', '/hd_ingestion_jobs', {
        body: { id: 'x', status: 'queued' },
        headers: { Prefer: 'resolution=merge-duplicates' },
      }),
    );
    expect(s.text).toContain('ON CONFLICT ("id") DO UPDATE SET "status" = EXCLUDED."status"');
  });
});

describe('PATCH and DELETE', () => {
  it('updates the filtered rows from the body', () => {
    const p = plan('PATCH', '/hd_ingestion_jobs?id=eq.1&status=eq.queued&select=*', {
      body: { status: 'running' },
      headers: { Prefer: 'return=representation' },
    }) as MutatePlan;
    expect(p.kind).toBe('update');
    expect(p.statement.text).toContain('UPDATE "public"."hd_ingestion_jobs" SET "status" = pgrst_body."status"');
    expect(p.statement.text).toContain(
      `json_populate_record(NULL::"public"."hd_ingestion_jobs", $3::json)) pgrst_body`,
    );
    expect(p.statement.text).toContain(`WHERE ${T}."id" = $1 AND ${T}."status" = $2 RETURNING ${T}.*`);
    expect(p.statement.values).toEqual(['1', 'queued', JSON.stringify({ status: 'running' })]);
  });

  it('refuses an unknown column in the body with PGRST204', () => {
    expect(fail('PATCH', '/hd_ingestion_jobs?id=eq.1', { body: { x: 1 } }).body.message).toBe(
      "Could not find the 'x' column of 'hd_ingestion_jobs' in the schema cache",
    );
  });

  it('refuses unfiltered updates and deletes like hosted Supabase (pg-safeupdate)', () => {
    expect(fail('PATCH', '/hd_ingestion_jobs', { body: { status: 'done' } })).toMatchObject({
      status: 400,
      body: { code: '21000', message: 'UPDATE requires a WHERE clause' },
    });
    expect(fail('DELETE', '/hd_ingestion_jobs').body).toMatchObject({
      code: '21000',
      message: 'DELETE requires a WHERE clause',
    });
  });

  it('deletes the filtered rows', () => {
    const s = sqlOf(plan('DELETE', '/hd_ingestion_jobs?status=eq.done'));
    expect(s.text).toContain(`DELETE FROM "public"."hd_ingestion_jobs" WHERE ${T}."status" = $1 RETURNING 1`);
  });

  it('refuses PUT', () => {
    expect(fail('PUT', '/hd_ingestion_jobs?id=eq.1', { body: {} })).toMatchObject({
      status: 405,
      body: { code: 'PGRST117' },
    });
  });
});

describe('RPC', () => {
  it('calls a function with named arguments from the body', () => {
    const p = plan('POST', '/rpc/claim_job', { body: { worker: 'w1' } }) as CallPlan;
    expect(p.kind).toBe('call');
    expect(p.readOnly).toBe(false);
    expect(p.statement.text).toContain('"public"."claim_job"("worker" := pgrst_args."worker")');
    expect(p.statement.text).toContain('json_to_record($1::json) AS pgrst_args("worker" text)');
    expect(p.statement.values).toEqual([JSON.stringify({ worker: 'w1' })]);
  });

  it('takes GET arguments from the query string, read-only', () => {
    const p = plan('GET', '/rpc/claim_job?worker=w1&max_attempts=3') as CallPlan;
    expect(p.readOnly).toBe(true);
    expect(p.statement.values).toEqual([JSON.stringify({ worker: 'w1', max_attempts: '3' })]);
  });

  it('answers 404 PGRST202 for an unknown function or argument set', () => {
    expect(fail('POST', '/rpc/nope', { body: {} })).toMatchObject({
      status: 404,
      body: {
        code: 'PGRST202',
        message: 'Could not find the function public.nope without parameters in the schema cache',
      },
    });
    expect(fail('POST', '/rpc/claim_job', { body: { who: 'x' } }).body.message).toBe(
      'Could not find the function public.claim_job(who) in the schema cache',
    );
    expect(fail('POST', '/rpc/claim_job', { body: {} }).body.code).toBe('PGRST202');
  });

  it('refuses other methods with PGRST101', () => {
    expect(fail('PATCH', '/rpc/ping', { body: {} })).toMatchObject({ status: 405, body: { code: 'PGRST101' } });
  });

  it('calls a void function', () => {
    const p = plan('POST', '/rpc/ping', { body: {} }) as CallPlan;
    expect(p.returnsVoid).toBe(true);
    expect(p.statement.values).toEqual([]);
  });
});

describe('answers', () => {
  const read = (q: string, headers?: Record<string, string>) =>
    plan('GET', `/hd_ingestion_jobs${q}`, { headers }) as ReadPlan;

  it('writes Content-Range like PostgREST', () => {
    expect(contentRange(0, 9, 123)).toBe('0-9/123');
    expect(contentRange(0, -1, 123)).toBe('*/123');
    expect(contentRange(0, 9, null)).toBe('0-9/*');
    expect(contentRange(0, -1, null)).toBe('*/*');
    expect(contentRange(0, -1, 0)).toBe('*/0');
  });

  it('GET: 200 and 0-9/* without count; 206 with a count larger than the page', () => {
    const rows = `[${Array.from({ length: 10 }, (_, i) => `{"i":${i}}`).join(', ')}]`;
    expect(respond(read('?limit=10'), { total: null, n: '10', body: rows })).toMatchObject({
      status: 200,
      headers: { 'Content-Range': '0-9/*', 'Content-Type': 'application/json; charset=utf-8' },
      body: rows,
    });
    expect(respond(read('?limit=10', { Prefer: 'count=exact' }), { total: '123', n: '10', body: rows })).toMatchObject({
      status: 206,
      headers: { 'Content-Range': '0-9/123' },
    });
    expect(
      respond(read('?limit=10&offset=10', { Prefer: 'count=exact' }), { total: '12', n: '2', body: '[]' }).headers,
    ).toMatchObject({
      'Content-Range': '10-11/12',
    });
  });

  it('GET: */N when the page is empty, 416 past the end', () => {
    expect(respond(read('', { Prefer: 'count=exact' }), { total: '0', n: '0', body: '[]' })).toMatchObject({
      status: 200,
      headers: { 'Content-Range': '*/0' },
    });
    const past = respond(read('?offset=50', { Prefer: 'count=exact' }), { total: '3', n: '0', body: '[]' });
    expect(past.status).toBe(416);
    expect(JSON.parse(past.body)).toMatchObject({ code: 'PGRST103' });
  });

  it('singular responses need exactly one row (406 PGRST116 and rollback otherwise)', () => {
    const p = read('', { Accept: 'application/vnd.pgrst.object+json' });
    expect(respond(p, { total: null, n: '1', body: '[{"id":"x"}]' })).toMatchObject({
      status: 200,
      body: '{"id":"x"}',
      headers: { 'Content-Type': 'application/vnd.pgrst.object+json; charset=utf-8' },
    });
    const none = respond(p, { total: null, n: '0', body: '[]' });
    expect(none).toMatchObject({ status: 406, rollback: true });
    expect(JSON.parse(none.body)).toEqual({
      code: 'PGRST116',
      message: 'Cannot coerce the result to a single JSON object',
      details: 'The result contains 0 rows',
      hint: null,
    });
  });

  it('POST: 201 with */* and no body by default; the rows with return=representation', () => {
    const minimal = plan('POST', '/hd_ingestion_jobs', { body: { job_type: 'a' } }) as MutatePlan;
    expect(respond(minimal, { total: null, n: '1', body: '' })).toMatchObject({
      status: 201,
      body: '',
      headers: { 'Content-Range': '*/*' },
    });
    const rep = plan('POST', '/hd_ingestion_jobs', {
      body: { job_type: 'a' },
      headers: { Prefer: 'return=representation,count=exact' },
    }) as MutatePlan;
    expect(respond(rep, { total: null, n: '1', body: '[{"id":"x"}]' })).toMatchObject({
      status: 201,
      body: '[{"id":"x"}]',
      headers: { 'Content-Range': '*/1', 'Preference-Applied': 'return=representation, count=exact' },
    });
  });

  it('POST with return=headers-only gives a Location', () => {
    const p = plan('POST', '/hd_ingestion_jobs', {
      body: { job_type: 'a' },
      headers: { Prefer: 'return=headers-only' },
    });
    expect(respond(p as MutatePlan, { total: null, n: '1', body: '[{"id":"abc"}]' }, ['id']).headers.Location).toBe(
      '/hd_ingestion_jobs?id=eq.abc',
    );
  });

  it('PATCH/DELETE: 204 by default, 200 with representation', () => {
    const patch = plan('PATCH', '/hd_ingestion_jobs?id=eq.1', { body: { status: 'done' } }) as MutatePlan;
    expect(respond(patch, { total: null, n: '2', body: '' })).toMatchObject({
      status: 204,
      headers: { 'Content-Range': '0-1/*' },
    });
    const del = plan('DELETE', '/hd_ingestion_jobs?id=eq.1', {
      headers: { Prefer: 'return=representation' },
    }) as MutatePlan;
    expect(respond(del, { total: null, n: '1', body: '[{}]' })).toMatchObject({
      status: 200,
      headers: { 'Content-Range': '*/*' },
    });
  });

  it('void functions answer 204', () => {
    const p = plan('POST', '/rpc/ping', { body: {} }) as CallPlan;
    expect(respond(p, { total: null, n: '1', body: '' }).status).toBe(204);
  });
});

describe('small parsers', () => {
  it('parseFilterValue', () => {
    expect(parseFilterValue('not.in.(a,"b,c")')).toEqual({
      negate: true,
      operation: { op: 'in', values: ['a', 'b,c'] },
    });
    expect(parseFilterValue('is.TRUE')).toEqual({ negate: false, operation: { op: 'is', value: 'true' } });
  });

  it('parseLogicTree', () => {
    expect(parseLogicTree('or', '(a.eq.1,not.and(b.is.null,c.gt.2))')).toEqual({
      kind: 'expr',
      negate: false,
      op: 'or',
      children: [
        {
          kind: 'filter',
          filter: { field: { name: 'a', path: [] }, negate: false, operation: { op: 'eq', value: '1' } },
        },
        {
          kind: 'expr',
          negate: true,
          op: 'and',
          children: [
            {
              kind: 'filter',
              filter: { field: { name: 'b', path: [] }, negate: false, operation: { op: 'is', value: 'null' } },
            },
            {
              kind: 'filter',
              filter: { field: { name: 'c', path: [] }, negate: false, operation: { op: 'gt', value: '2' } },
            },
          ],
        },
      ],
    });
  });

  it('parsePrefer reads repeated, comma-joined preferences', () => {
    expect(parsePrefer('return=representation, count=exact, missing=default, tx=rollback')).toEqual({
      return: 'representation',
      count: 'exact',
      missingDefault: true,
      strict: false,
      invalid: [],
    });
  });

  it('negotiateMedia', () => {
    expect(negotiateMedia(undefined)).toEqual({ singular: false, stripNulls: false });
    expect(negotiateMedia('*/*')).toEqual({ singular: false, stripNulls: false });
    expect(negotiateMedia('application/vnd.pgrst.object+json;nulls=stripped')).toEqual({
      singular: true,
      stripNulls: true,
    });
    expect(() => negotiateMedia('text/csv')).toThrow();
  });
});

describe('db-max-rows (test/spec/Feature/Query/QueryLimitedSpec.hs)', () => {
  const capped = (method: string, pathAndQuery: string, init?: { body?: unknown }) => {
    const r = planRequest(request(method, pathAndQuery, init), schema, { maxRows: 2 });
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    return r.plan;
  };

  it('caps a read without a limit, and lowers a larger limit to it', () => {
    expect(sqlOf(capped('GET', '/hd_ingestion_jobs')).text).toContain('LIMIT $1');
    expect(sqlOf(capped('GET', '/hd_ingestion_jobs')).values).toEqual([2]);
    expect(sqlOf(capped('GET', '/hd_ingestion_jobs?limit=5')).values).toEqual([2]);
    expect(sqlOf(capped('GET', '/hd_ingestion_jobs?limit=1')).values).toEqual([1]);
  });

  it('a capped page without a count says so as PostgREST does: 0-1/*', () => {
    const p = capped('GET', '/hd_ingestion_jobs') as ReadPlan;
    expect(respond(p, { total: null, n: 2, body: '[{},{}]' }).headers['Content-Range']).toBe('0-1/*');
  });

  it('caps a set-returning RPC and counts its whole result', () => {
    const p = capped('POST', '/rpc/claim_job', { body: { worker: 'w' } }) as CallPlan;
    expect(p.statement.text).toContain('LIMIT 2');
    const counted = planRequest(
      request('POST', '/rpc/claim_job', { body: { worker: 'w' }, headers: { Prefer: 'count=exact' } }),
      schema,
      { maxRows: 2 },
    );
    if (!counted.ok) throw new Error('no plan');
    expect(sqlOf(counted.plan).text).toContain('(SELECT count(*) FROM pgrst_source)');
    const answer = respond(counted.plan as CallPlan, { total: 5, n: 2, body: '[{},{}]' });
    expect(answer.status).toBe(206);
    expect(answer.headers['Content-Range']).toBe('0-1/5');
  });

  it('does not cap writes with return=representation', () => {
    const p = capped('PATCH', '/hd_ingestion_jobs?status=eq.queued', { body: { status: 'done' } });
    expect(sqlOf(p).text).not.toContain('LIMIT');
  });
});

describe('an empty PATCH does nothing (test/spec/Feature/Query/UpdateSpec.hs "when patching with an empty body")', () => {
  it.each([{}, [], [{}]])('body %j: no UPDATE, no parameters, 204 */*', (body) => {
    for (const path of ['/hd_ingestion_jobs?id=eq.1', '/hd_ingestion_jobs']) {
      const p = plan('PATCH', path, { body }) as MutatePlan;
      expect(p.statement.text).not.toContain('UPDATE');
      expect(p.statement.values).toEqual([]);
      const answer = respond(p, { total: null, n: 0, body: '' });
      expect(answer.status).toBe(204);
      expect(answer.headers['Content-Range']).toBe('*/*');
    }
  });
});

describe('the shapes that differ between PostgREST versions', () => {
  const at = (version: 12 | 13 | 14, pathAndQuery: string, headers?: Record<string, string>) => {
    const r = planRequest(request('GET', pathAndQuery, { headers }), schema, { version });
    if (r.ok) throw new Error('expected an error');
    return r.error;
  };

  it('a missing table: 42P01 from PostgreSQL in 12, PGRST205 with a hint from 13', () => {
    expect(at(12, '/hd_ingestion_job')).toEqual({
      status: 404,
      body: { code: '42P01', message: 'relation "public.hd_ingestion_job" does not exist', details: null, hint: null },
    });
    expect(at(13, '/hd_ingestion_job').body).toEqual({
      code: 'PGRST205',
      message: "Could not find the table 'public.hd_ingestion_job' in the schema cache",
      details: null,
      hint: "Perhaps you meant the table 'public.hd_ingestion_jobs'",
    });
    expect(at(14, '/hd_ingestion_job').body.hint).toBe("Perhaps you meant the table 'public.hd_ingestion_jobs'");
  });

  it('14 hints only at 75% similarity (CHANGELOG 14.6), 13 from 33% (fuzzyset getOne)', () => {
    expect(at(13, '/ingest_jobs').body.hint).toBe("Perhaps you meant the table 'public.hd_ingestion_jobs'");
    expect(at(14, '/ingest_jobs').body.hint).toBeNull();
  });

  it('a schema that is not exposed: the 12 and 13 texts of PGRST106', () => {
    expect(at(12, '/hd_ingestion_jobs', { 'Accept-Profile': 'private' }).body).toMatchObject({
      code: 'PGRST106',
      message: 'The schema must be one of the following: public',
      hint: null,
    });
    expect(at(13, '/hd_ingestion_jobs', { 'Accept-Profile': 'private' }).body).toMatchObject({
      message: 'Invalid schema: private',
      hint: 'Only the following schemas are exposed: public',
    });
  });
});
