/**
 * diagnose-env's optional catalog check (SUPABASE_DB_URL): what the migrations expect, the catalog port with a fake
 * `pg`, the step with a fake port, and the rules' findings. The real catalog of the sandbox's PostgreSQL is read in
 * test/integration/catalog.test.ts.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { catalogEvidence, catalogStepWith } from '../../lib/evidence/catalog-step.ts';
import { CATALOG_RULES } from '../../lib/findings/rules/catalog.ts';
import { runEntries } from '../../lib/findings/table.ts';
import { startRun } from '../../lib/flows/run.ts';
import {
  type CatalogDb,
  type CatalogFacts,
  catalogFacts,
  classifyCatalogError,
  createCatalogDb,
  type PgModule,
  tlsFor,
} from '../../lib/io/catalog-db.ts';
import type { JobsDb } from '../../lib/io/jobs-db.ts';
import { columnsOfDefinition, expectedSchema, findMigrationsDir, readMigrations } from '../../lib/io/migrations.ts';
import { makeRedactor } from '../../lib/io/redact.ts';
import { fakePorts, signedJwt } from '../helpers/fake-ports.ts';
import { ROOT } from '../helpers/sandbox.ts';

const DB_URL = 'postgresql://postgres:s3cret-Pa55word@db.abcdefghijklmnopqrst.supabase.co:5432/postgres';

// As pg_indexes.indexdef prints them (pg_get_indexdef): read from the sandbox's PostgreSQL 18 for 001's indexes.
const STATUS_CREATED = {
  name: 'hd_ingestion_jobs_status_created_at',
  definition:
    'CREATE INDEX hd_ingestion_jobs_status_created_at ON public.hd_ingestion_jobs USING btree (status, created_at)',
};
const CREATED_DESC = {
  name: 'hd_ingestion_jobs_created_at',
  definition: 'CREATE INDEX hd_ingestion_jobs_created_at ON public.hd_ingestion_jobs USING btree (created_at DESC)',
};
const PKEY = {
  name: 'hd_ingestion_jobs_pkey',
  definition: 'CREATE UNIQUE INDEX hd_ingestion_jobs_pkey ON public.hd_ingestion_jobs USING btree (id)',
};

const MIGRATIONS = [
  {
    name: '001_schema.sql',
    text: 'create index if not exists hd_ingestion_jobs_status_created_at on public.hd_ingestion_jobs (status, created_at);',
  },
  {
    name: '004_reads.sql',
    text: [
      '-- the index hd_old_mentioned on hd_ingestion_jobs (x) is only named in a comment',
      'create index concurrently if not exists "hd_ingestion_jobs_status_finished_at"',
      '  on public.hd_ingestion_jobs using btree (status, finished_at DESC) where finished_at is not null;',
      'create index hd_gone on hd_ingestion_jobs (attempts);',
      'drop index if exists public.hd_gone;',
      'create or replace function public.hd_requeue_jobs(p_jobs jsonb) returns void language sql as $$ select 1 $$;',
    ].join('\n'),
  },
];

function facts(over: Partial<CatalogFacts> = {}): CatalogFacts {
  return {
    serverVersion: '17.4',
    table: true,
    indexes: [PKEY, STATUS_CREATED, CREATED_DESC],
    roleTimeouts: { anon: '3s', authenticated: '8s', authenticator: '8s' },
    functions: [{ name: 'hd_requeue_jobs', args: 'p_jobs jsonb', serviceRoleExecutes: true }],
    ...over,
  };
}

describe('what the migrations expect', () => {
  it('reads the indexes and functions, in file order, ignoring comments and dropped ones', () => {
    expect(expectedSchema(MIGRATIONS)).toEqual({
      indexes: [
        { name: 'hd_ingestion_jobs_status_created_at', columns: 'status, created_at', file: '001_schema.sql' },
        { name: 'hd_ingestion_jobs_status_finished_at', columns: 'status, finished_at desc', file: '004_reads.sql' },
      ],
      functions: [{ name: 'hd_requeue_jobs', files: ['004_reads.sql'] }],
    });
  });

  it('reads the shipped migrations: 001’s indexes, and hd_requeue_jobs from 002 then 003', () => {
    const expected = expectedSchema(readMigrations());
    expect(expected.indexes).toEqual(
      expect.arrayContaining([
        {
          name: 'hd_ingestion_jobs_status_created_at',
          columns: 'status, created_at',
          file: '001_hd_ingestion_jobs.sql',
        },
        { name: 'hd_ingestion_jobs_created_at', columns: 'created_at desc', file: '001_hd_ingestion_jobs.sql' },
      ]),
    );
    expect(expected.functions).toEqual([
      { name: 'hd_requeue_jobs', files: ['002_requeue_rpc.sql', '003_requeue_again.sql'] },
    ]);
  });

  it('finds the migrations from lib/io/ and from a bundle under node_modules/.cache; none elsewhere', () => {
    const dir = path.join(ROOT, 'sandbox', 'migrations');
    expect(findMigrationsDir()).toBe(dir);
    expect(findMigrationsDir(path.join(ROOT, 'node_modules', '.cache', 'hd-runbooks-tests', 'hd-test-run-x'))).toBe(
      dir,
    );
    expect(findMigrationsDir('/')).toBeUndefined();
  });

  it("compares a catalog definition's columns with a migration's", () => {
    expect(columnsOfDefinition(STATUS_CREATED.definition)).toBe('status, created_at');
    expect(columnsOfDefinition(CREATED_DESC.definition)).toBe('created_at desc');
  });
});

describe('the catalog port', () => {
  it('takes the database setting of a role over its role-wide one', () => {
    const f = catalogFacts({
      server_version: '17.4',
      has_table: true,
      indexes: [],
      role_settings: [
        { role: 'service_role', database: true, settings: ['statement_timeout=20s'] },
        { role: 'service_role', database: false, settings: ['search_path=public', 'statement_timeout=8s'] },
        { role: 'anon', database: false, settings: ['statement_timeout=3s'] },
        { role: 'authenticated', database: false, settings: null },
      ],
      functions: [],
    });
    expect(f.roleTimeouts).toEqual({ service_role: '20s', anon: '3s' });
  });

  it('loads pg only on a read, runs one query, and always ends the connection', async () => {
    const calls: string[] = [];
    let loaded = 0;
    const fakePg = (fail?: Error & { code?: string }): PgModule => ({
      Client: class {
        constructor(config: { connectionString: string; application_name: string }) {
          calls.push(`new ${config.application_name}`);
        }
        async connect() {
          calls.push('connect');
          if (fail) throw fail;
        }
        async query(_text: string, params: unknown[]) {
          calls.push(`query ${JSON.stringify(params)}`);
          return { rows: [{ server_version: '17.4', has_table: true, indexes: [], role_settings: [], functions: [] }] };
        }
        async end() {
          calls.push('end');
        }
        on() {
          return this;
        }
      },
    });
    const db = createCatalogDb({
      url: DB_URL,
      timeoutMs: 5_000,
      now: () => 0,
      loadPg: async () => {
        loaded++;
        return fakePg();
      },
    });
    expect(loaded).toBe(0);
    const r = await db.read(['hd_requeue_jobs']);
    expect(r).toMatchObject({ ok: true, value: { serverVersion: '17.4', table: true } });
    expect(calls).toEqual([
      'new hd-worker-runbooks diagnose-env',
      'connect',
      'query [["anon","authenticated","service_role","authenticator"],["hd_requeue_jobs"]]',
      'end',
    ]);

    calls.length = 0;
    const refused = Object.assign(new Error('password authentication failed for user "postgres"'), { code: '28P01' });
    const bad = await createCatalogDb({
      url: DB_URL,
      timeoutMs: 5_000,
      now: () => 0,
      loadPg: async () => fakePg(refused),
    }).read([]);
    expect(bad).toEqual({
      ok: false,
      failure: {
        message:
          'the database refused the login to db.abcdefghijklmnopqrst.supabase.co:5432 as postgres: password authentication failed for user "postgres"',
        fix: expect.stringContaining('the password'),
      },
    });
    expect(calls).toEqual(['new hd-worker-runbooks diagnose-env', 'connect', 'end']);
  });

  it("uses TLS like psql's default with Supabase's hosts; a sslmode in the string decides otherwise", () => {
    expect(tlsFor(DB_URL)).toEqual({ rejectUnauthorized: false });
    expect(
      tlsFor('postgresql://postgres.abcdefghijklmnopqrst:x@aws-0-eu-central-1.pooler.supabase.com:5432/postgres'),
    ).toEqual({
      rejectUnauthorized: false,
    });
    expect(tlsFor(`${DB_URL}?sslmode=verify-full&sslrootcert=/etc/supabase-ca.crt`)).toBeUndefined();
    expect(tlsFor('postgresql://postgres:postgres@127.0.0.1:54322/postgres')).toBeUndefined();
  });

  it('names each failure with its fix, never the password', () => {
    const cases: Array<[Error & { code?: string }, RegExp]> = [
      [
        Object.assign(new Error("Cannot find package 'pg' imported from /x"), { code: 'ERR_MODULE_NOT_FOUND' }),
        /pg package is not installed/,
      ],
      [
        Object.assign(new Error('getaddrinfo ENOTFOUND db.abcdefghijklmnopqrst.supabase.co'), { code: 'ENOTFOUND' }),
        /^cannot reach db\./,
      ],
      [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), /^cannot reach/],
      [new Error('self-signed certificate in certificate chain'), /^TLS to .* failed/],
      [Object.assign(new Error('database "postgress" does not exist'), { code: '3D000' }), /^no such database/],
      [new Error('Connection terminated due to connection timeout'), /^cannot reach/],
    ];
    for (const [e, message] of cases) {
      const f = classifyCatalogError(e, DB_URL);
      expect(f.message).toMatch(message);
      expect(f.fix.length).toBeGreaterThan(10);
      expect(`${f.message} ${f.fix}`).not.toContain('s3cret-Pa55word');
    }
  });
});

/** A diagnose-env run state from fake ports: the config holds SUPABASE_DB_URL when `dbUrl` is given. */
async function runState(dbUrl: string | undefined, catalog?: CatalogDb) {
  const key = await signedJwt({ role: 'service_role', ref: 'abcdefghijklmnopqrst' });
  const opened: string[] = [];
  const fake = fakePorts({
    env: {
      SUPABASE_URL: 'https://abcdefghijklmnopqrst.supabase.co',
      SUPABASE_SERVICE_ROLE_KEY: key,
      SUPABASE_DB_URL: dbUrl,
    },
    openDb: () => ({}) as JobsDb,
    ...(catalog
      ? {
          openCatalog: (url: string) => {
            opened.push(url);
            return catalog;
          },
        }
      : {}),
  });
  return {
    state: {
      ...startRun(fake.ports, {}, () => ({ queuedMinutes: 15, runningMinutes: 60, maxAttempts: 3, perJobType: {} })),
    },
    opened,
    fake,
  };
}

const step = catalogStepWith(() => MIGRATIONS);

describe('the catalog step and its findings', () => {
  it('without SUPABASE_DB_URL says nothing and opens nothing', async () => {
    const { state } = await runState(undefined);
    expect(await step.run(state)).toEqual([]);
    expect(state.evidence.catalog).toBeUndefined();
    expect(runEntries(CATALOG_RULES, state.evidence, [])).toEqual([]);
  });

  it('names the missing index of a migration, with the timeout it runs into and the file that adds it', async () => {
    const { state, opened } = await runState(DB_URL, { read: async () => ({ ok: true, value: facts(), ms: 42 }) });
    const [line] = [await step.run(state)].flat();
    expect(opened).toEqual([DB_URL]);
    expect(line).toMatchObject({
      status: 'warning',
      summary:
        'PostgreSQL 17.4; 1 of 2 indexes of the migrations on hd_ingestion_jobs; hd_requeue_jobs installed (42 ms)',
      details: [
        'missing index hd_ingestion_jobs_status_finished_at (status, finished_at desc) of 004_reads.sql',
        'statement_timeout: service_role unset, authenticator 8s, authenticated 8s, anon 3s',
      ],
    });
    const findings = runEntries(CATALOG_RULES, state.evidence, []);
    expect(findings.map((f) => f.id)).toEqual(['index-missing']);
    expect(findings[0]).toMatchObject({
      severity: 'warning',
      title: 'hd_ingestion_jobs lacks 1 index of the migrations',
      evidence: [
        'no index hd_ingestion_jobs_status_finished_at on (status, finished_at desc), created by 004_reads.sql',
        'present: hd_ingestion_jobs_pkey, hd_ingestion_jobs_status_created_at, hd_ingestion_jobs_created_at',
      ],
      fix: 'apply 004_reads.sql: psql "$SUPABASE_DB_URL" -f sandbox/migrations/004_reads.sql (or the SQL editor, or supabase db push)',
    });
    expect(findings[0].cause).toContain('past 8s (statement_timeout of authenticator, which service_role inherits)');
  });

  it('counts an index of the same columns under another name as present', () => {
    const own = {
      name: 'my_finished_idx',
      definition: 'CREATE INDEX my_finished_idx ON public.hd_ingestion_jobs USING btree (status, finished_at DESC)',
    };
    const ev = catalogEvidence(expectedSchema(MIGRATIONS), facts({ indexes: [STATUS_CREATED, own] }), 1);
    expect(ev.missingIndexes).toEqual([]);
  });

  it('says when hd_requeue_jobs is missing or service_role may not run it (info: requeue still works)', () => {
    const expected = expectedSchema(MIGRATIONS);
    const judge = (f: CatalogFacts) => {
      const ev = {
        now: new Date(),
        rules: { queuedMinutes: 15, runningMinutes: 60, maxAttempts: 3, perJobType: {} },
        laptop: { source: 't', urlVar: 'SUPABASE_URL', issues: [] },
        catalog: catalogEvidence(expected, f, 1),
      };
      return runEntries(CATALOG_RULES, ev, []);
    };
    const all = [STATUS_CREATED, { name: 'hd_ingestion_jobs_status_finished_at', definition: 'x' }];
    const missing = judge(facts({ indexes: all, functions: [] }));
    expect(missing).toEqual([
      expect.objectContaining({
        id: 'requeue-function-missing',
        severity: 'info',
        title: 'hd_requeue_jobs is not installed: a bulk requeue writes one job per request',
        fix: 'apply 004_reads.sql: psql "$SUPABASE_DB_URL" -f sandbox/migrations/004_reads.sql',
      }),
    ]);
    const denied = judge(
      facts({
        indexes: all,
        functions: [{ name: 'hd_requeue_jobs', args: 'p_jobs jsonb', serviceRoleExecutes: false }],
      }),
    );
    expect(denied[0]?.evidence).toEqual(['public.hd_requeue_jobs(p_jobs jsonb) exists; service_role lacks EXECUTE']);
    expect(judge(facts({ indexes: all }))).toEqual([]);
  });

  it('without the migrations beside the runbooks: the timeouts, and a warning that there is nothing to compare', async () => {
    const { state } = await runState(DB_URL, { read: async () => ({ ok: true, value: facts(), ms: 1 }) });
    const [line] = [await catalogStepWith(() => []).run(state)].flat();
    expect(line).toMatchObject({
      status: 'warning',
      summary: 'PostgreSQL 17.4; statement_timeout: service_role unset, authenticator 8s, authenticated 8s, anon 3s',
      fix: expect.stringContaining('sandbox/migrations/*.sql is not beside the runbooks'),
    });
    expect(runEntries(CATALOG_RULES, state.evidence, [])).toEqual([]);
  });

  it('a catalog that cannot be read is a warning with the fix, and the password is registered as a secret', async () => {
    const failure = classifyCatalogError(
      Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:5432'), { code: 'ECONNREFUSED' }),
      DB_URL,
    );
    const { state } = await runState(DB_URL, { read: async () => ({ ok: false, failure }) });
    const [line] = [await step.run(state)].flat();
    expect(line).toMatchObject({ status: 'failed', summary: failure.message });
    const [finding] = runEntries(CATALOG_RULES, state.evidence, []);
    expect(finding).toMatchObject({ id: 'catalog-unreadable', severity: 'warning', evidence: [failure.message] });
    // Registered with the output's redactor: the string whole, and the password alone, in any form.
    const redact = makeRedactor(state.config.secrets);
    expect(redact(`at ${DB_URL} with s3cret-Pa55word (${encodeURIComponent('s3cret-Pa55word')})`)).toBe(
      'at [redacted] with [redacted] ([redacted])',
    );
  });
});
