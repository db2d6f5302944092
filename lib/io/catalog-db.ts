/**
 * The project's Postgres catalog, read over SUPABASE_DB_URL (optional): the indexes of hd_ingestion_jobs, the
 * statement timeouts set on the API's roles, the functions the runbooks use. One connection, one query, read only.
 * The `pg` package is loaded only when a read is asked for: a run without SUPABASE_DB_URL never loads it.
 */
import { clip } from '../core/text.ts';

/** The roles whose statement_timeout decides how long an API read may run (Supabase: "Timeouts", role level). */
export const API_ROLES = ['anon', 'authenticated', 'service_role', 'authenticator'] as const;

/** What the catalog holds, as read. */
export interface CatalogFacts {
  serverVersion: string;
  /** Whether public.hd_ingestion_jobs exists. */
  table: boolean;
  /** The table's indexes: their names and `CREATE INDEX …` definitions (pg_indexes). */
  indexes: Array<{ name: string; definition: string }>;
  /** statement_timeout set on each role (pg_db_role_setting: this database's setting over the role-wide one). */
  roleTimeouts: Record<string, string | undefined>;
  /** The functions asked for that exist in public, and whether service_role may execute them. */
  functions: Array<{ name: string; args: string; serviceRoleExecutes: boolean | null }>;
}

export interface CatalogFailure {
  /** One line: what failed (the password is never in it: pg's messages name the user and host only). */
  message: string;
  /** One line: what to do. */
  fix: string;
}

export type CatalogRead = { ok: true; value: CatalogFacts; ms: number } | { ok: false; failure: CatalogFailure };

/** The port: one read of the catalog. */
export interface CatalogDb {
  read(functions: readonly string[]): Promise<CatalogRead>;
}

/** The part of the `pg` module used here (so a test can pass a fake, and the real one loads lazily). */
export interface PgModule {
  Client: new (config: {
    connectionString: string;
    connectionTimeoutMillis: number;
    query_timeout: number;
    application_name: string;
    ssl?: { rejectUnauthorized: boolean };
  }) => {
    connect(): Promise<unknown>;
    query(text: string, params: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }>;
    end(): Promise<void>;
    on(event: 'error', listener: (e: Error) => void): unknown;
  };
}

const CATALOG_SQL = `
select
  current_setting('server_version') as server_version,
  to_regclass('public.hd_ingestion_jobs') is not null as has_table,
  coalesce((select json_agg(json_build_object('name', indexname, 'definition', indexdef) order by indexname)
            from pg_indexes where schemaname = 'public' and tablename = 'hd_ingestion_jobs'), '[]') as indexes,
  coalesce((select json_agg(json_build_object('role', r.rolname, 'database', s.setdatabase <> 0, 'settings', s.setconfig))
            from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
            where r.rolname = any($1::text[])
              and s.setdatabase in (0, (select oid from pg_database where datname = current_database()))), '[]') as role_settings,
  coalesce((select json_agg(json_build_object(
              'name', p.proname,
              'args', pg_get_function_identity_arguments(p.oid),
              'serviceRoleExecutes', case when exists (select 1 from pg_roles where rolname = 'service_role')
                                          then has_function_privilege('service_role', p.oid, 'execute') end))
            from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where n.nspname = 'public' and p.proname = any($2::text[])), '[]') as functions`;

interface RoleSetting {
  role: string;
  database: boolean;
  settings: string[] | null;
}

/** The rows of the catalog query, as facts. Pure. */
export function catalogFacts(row: Record<string, unknown>): CatalogFacts {
  const roleTimeouts: Record<string, string | undefined> = {};
  const settings = (row.role_settings as RoleSetting[]) ?? [];
  // The role-wide setting first, so this database's own setting (what a session here gets) overrides it.
  for (const s of [...settings].sort((a, b) => Number(a.database) - Number(b.database))) {
    const timeout = (s.settings ?? []).find((c) => c.startsWith('statement_timeout='));
    if (timeout) roleTimeouts[s.role] = timeout.slice('statement_timeout='.length);
  }
  return {
    serverVersion: String(row.server_version ?? ''),
    table: row.has_table === true,
    indexes: (row.indexes as CatalogFacts['indexes']) ?? [],
    roleTimeouts,
    functions: (row.functions as CatalogFacts['functions']) ?? [],
  };
}

/** What a failed connection or query means to an operator. Pure. */
export function classifyCatalogError(e: Error & { code?: string }, url: string): CatalogFailure {
  let where = 'the database';
  try {
    const u = new URL(url);
    where = `${u.hostname}:${u.port || 5432} as ${decodeURIComponent(u.username) || 'the default user'}`;
  } catch {
    // the env schema refuses such a URL before a run gets here
  }
  const text = clip(String(e.message ?? e).split('\n')[0]!, 200);
  const fixUrl = 'check SUPABASE_DB_URL (Dashboard > Connect > Connection string)';
  if (e.code === 'ERR_MODULE_NOT_FOUND' || /Cannot find (module|package) 'pg'/.test(text)) {
    return {
      message: 'SUPABASE_DB_URL is set but the pg package is not installed',
      fix: 'run npm install in the runbooks folder (pg is one of their dependencies), or unset SUPABASE_DB_URL',
    };
  }
  if (e.code === '28P01' || e.code === '28000') {
    return {
      message: `the database refused the login to ${where}: ${text}`,
      fix: `${fixUrl}: the password (Database > Settings > Reset password) and the user (postgres, or postgres.<ref> on the pooler)`,
    };
  }
  if (e.code === '3D000')
    return { message: `no such database at ${where}: ${text}`, fix: `${fixUrl}: the database is postgres` };
  if (/certificate|self[- ]signed|SSL|TLS/i.test(text)) {
    return {
      message: `TLS to ${where} failed: ${text}`,
      fix: "add ?sslmode=no-verify to SUPABASE_DB_URL, or sslrootcert= Supabase's CA (Database > Settings > SSL)",
    };
  }
  if (
    ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH'].includes(e.code ?? '') ||
    /timeout|timed out/i.test(text)
  ) {
    return {
      message: `cannot reach ${where}: ${text}`,
      fix: `${fixUrl}; db.<ref>.supabase.co is IPv6 only: on an IPv4 network use the session pooler's string`,
    };
  }
  if (e.code === '42501')
    return { message: `${where} may not read the catalog: ${text}`, fix: "use the postgres user's connection string" };
  return { message: `reading the catalog at ${where} failed: ${text}`, fix: fixUrl };
}

/**
 * TLS as psql's default (`sslmode=prefer`) gives it to Supabase's hosts, which always offer it: encrypted, the
 * certificate not checked (Supabase's CA is not in Node's store). A `sslmode` in the string decides instead.
 */
export function tlsFor(url: string): { rejectUnauthorized: boolean } | undefined {
  try {
    const u = new URL(url);
    if (u.searchParams.has('sslmode')) return undefined;
    return /\.supabase\.(co|com)$/.test(u.hostname) ? { rejectUnauthorized: false } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The real port. `loadPg` is how `pg` arrives: imported on the first read (never at startup), or a fake in tests.
 * A read never throws: a failure is a value.
 */
export function createCatalogDb(opts: {
  url: string;
  timeoutMs: number;
  now: () => number;
  loadPg?: () => Promise<PgModule>;
}): CatalogDb {
  const loadPg = opts.loadPg ?? (async () => ((await import('pg')) as unknown as { default: PgModule }).default);
  return {
    async read(functions) {
      const started = opts.now();
      let client: InstanceType<PgModule['Client']> | undefined;
      try {
        const pg = await loadPg();
        client = new pg.Client({
          connectionString: opts.url,
          connectionTimeoutMillis: opts.timeoutMs,
          query_timeout: opts.timeoutMs,
          application_name: 'hd-worker-runbooks diagnose-env',
          ...(tlsFor(opts.url) ? { ssl: tlsFor(opts.url) } : {}),
        });
        // A connection that drops after the query must not end the run with an unhandled 'error'.
        client.on('error', () => {});
        await client.connect();
        const { rows } = await client.query(CATALOG_SQL, [[...API_ROLES], [...functions]]);
        return { ok: true, value: catalogFacts(rows[0] ?? {}), ms: opts.now() - started };
      } catch (e) {
        return { ok: false, failure: classifyCatalogError(e as Error, opts.url) };
      } finally {
        await client?.end().catch(() => {});
      }
    },
  };
}
