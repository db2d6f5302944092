/**
 * The integration tests that need no sandbox switch run against any Supabase named by `HD_TEST_SUPABASE_URL` (a
 * `supabase start` stack, a throwaway cloud project): README, "Against a real Supabase". Without it they run
 * against a sandbox as always. A test that needs the sandbox's switches (faults, latency, its Spark, its worker,
 * its second instance) calls {@link needsSandbox}: skipped in that mode only, with the reason in the summary.
 *
 * On someone else's Supabase the tests touch only the rows they made: every planted row carries the run's own
 * `account_id`, and the clean-up deletes exactly those rows (never a truncate). The migrations of
 * sandbox/migrations are applied first (each is idempotent: `if not exists`, `create or replace`).
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { TestContext } from 'vitest';
import { holdUntilFileEnd, tempDir } from './run.ts';
import { ROOT, type Sandbox, startSandbox } from './sandbox.ts';

/** The variables of the mode: all four, or none. */
export const EXTERNAL_ENV = [
  'HD_TEST_SUPABASE_URL',
  'HD_TEST_SUPABASE_SERVICE_ROLE_KEY',
  'HD_TEST_SUPABASE_ANON_KEY',
  'HD_TEST_SUPABASE_DB_URL',
] as const;

export interface ExternalSupabase {
  url: string;
  serviceRoleKey: string;
  anonKey: string;
  /** The project's Postgres connection string (its owner): migrations, planting and removing rows. */
  dbUrl: string;
}

/** The Supabase the environment names, or undefined (the normal run). A partial set is an error, not a skip. */
export function externalSupabase(env: NodeJS.ProcessEnv = process.env): ExternalSupabase | undefined {
  if (!env.HD_TEST_SUPABASE_URL) return undefined;
  const missing = EXTERNAL_ENV.filter((n) => !env[n]);
  if (missing.length) {
    throw new Error(
      `HD_TEST_SUPABASE_URL is set but ${missing.join(', ')} is not: set all four (README, "Against a real Supabase")`,
    );
  }
  return {
    url: env.HD_TEST_SUPABASE_URL.replace(/\/+$/, ''),
    serviceRoleKey: env.HD_TEST_SUPABASE_SERVICE_ROLE_KEY!,
    anonKey: env.HD_TEST_SUPABASE_ANON_KEY!,
    dbUrl: env.HD_TEST_SUPABASE_DB_URL!,
  };
}

/** The connection string of a sandbox's cloud database as its owner (what SUPABASE_DB_URL is to a project). */
export function sandboxDbUrl(sb: Sandbox, password?: string): string {
  const pw = password ?? readFileSync(path.join(sb.dir, 'pg', 'admin-password'), 'utf8').trim();
  return `postgres://postgres:${encodeURIComponent(pw)}@127.0.0.1:${sb.info.postgres.port}/cloud`;
}

/** The skip note every sandbox-only test carries in HD_TEST_SUPABASE_URL mode (the summary lists it). */
export function sandboxOnlyNote(reason: string): string {
  return `needs the sandbox: ${reason} (HD_TEST_SUPABASE_URL mode)`;
}

/** Skips the test in HD_TEST_SUPABASE_URL mode, saying which sandbox switch it needs; a no-op otherwise. */
export function needsSandbox(ctx: TestContext, reason: string): void {
  ctx.skip(externalSupabase() !== undefined, sandboxOnlyNote(reason));
}

/** The Supabase a file's tests run against: a sandbox of their own, or the one HD_TEST_SUPABASE_URL names. */
export interface SupabaseUnderTest {
  external: boolean;
  url: string;
  /** The project ref, when the URL or the key carries one. */
  ref: string | undefined;
  serviceRoleKey: string;
  anonKey: string;
  /** The account_id of every row this file plants; the clean-up deletes exactly these. */
  accountId: string;
  /** A laptop config for the runbooks: SUPABASE_URL and the service key (and the sandbox's Spark, in a sandbox). */
  envFile: string;
  /** SQL as the database's owner. */
  sql<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** The sandbox, when the tests run against one (undefined in HD_TEST_SUPABASE_URL mode). */
  sandbox: Sandbox | undefined;
}

/** Removes this file's rows (the assets go with their jobs), whichever Supabase it ran against. */
const CLEAN_UP = 'delete from public.hd_ingestion_jobs where account_id = $1';

/**
 * A Supabase for this file's tests, given back when the file ends (its rows deleted; a sandbox stopped). Against
 * an external one: the migrations applied, PostgREST told to reload its schema, and ready when it serves the table
 * and the requeue function.
 */
export async function supabaseUnderTest(opts: { scenario?: string } = {}): Promise<SupabaseUnderTest> {
  const accountId = randomUUID();
  const ext = externalSupabase();
  if (!ext) {
    // Its rows go with it when the file ends.
    const sb = await startSandbox(opts);
    return {
      external: false,
      url: sb.info.cloud.url,
      ref: sb.info.cloud.ref,
      serviceRoleKey: sb.info.cloud.serviceRoleKey,
      anonKey: sb.info.cloud.anonKey,
      accountId,
      envFile: sb.envFile,
      sql: (text, params) => sb.sql(text, params),
      sandbox: sb,
    };
  }
  const client = new pg.Client({ connectionString: ext.dbUrl });
  await client.connect().catch((e: Error) => {
    throw new Error(`HD_TEST_SUPABASE_DB_URL: cannot connect: ${e.message}`);
  });
  holdUntilFileEnd(async () => {
    try {
      await client.query(CLEAN_UP, [accountId]);
    } finally {
      await client.end();
    }
  });
  await applyMigrations(client);
  await untilServed(ext);
  const ref = refOf(ext);
  const dir = tempDir('hd-external-');
  const envFile = path.join(dir, '.env');
  writeFileSync(
    envFile,
    [
      `SUPABASE_URL=${ext.url}`,
      `SUPABASE_SERVICE_ROLE_KEY=${ext.serviceRoleKey}`,
      ...(ref && !/\.supabase\.co$/.test(new URL(ext.url).hostname) ? [`SUPABASE_PROJECT_REF=${ref}`] : []),
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return {
    external: true,
    url: ext.url,
    ref,
    serviceRoleKey: ext.serviceRoleKey,
    anonKey: ext.anonKey,
    accountId,
    envFile,
    sql: async (text, params) => (await client.query(text, params)).rows,
    sandbox: undefined,
  };
}

/** The ref of a hosted URL, else the `ref` claim of the service key (a JWT); `supabase start`'s keys carry none. */
function refOf(ext: ExternalSupabase): string | undefined {
  const hosted = /^([a-z0-9]{20})\.supabase\.co$/.exec(new URL(ext.url).hostname);
  if (hosted) return hosted[1];
  const payload = ext.serviceRoleKey.split('.')[1];
  if (!payload) return undefined;
  try {
    const ref = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { ref?: unknown }).ref;
    return typeof ref === 'string' ? ref : undefined;
  } catch {
    return undefined;
  }
}

const MIGRATIONS = path.join(ROOT, 'sandbox', 'migrations');

/**
 * Applies every migration in name order, one statement at a time (a `create index concurrently` cannot run in a
 * transaction), under an advisory lock: the files of one run open their targets at once, and two `create or
 * replace function` of the same function at the same moment fail.
 */
async function applyMigrations(client: pg.Client): Promise<void> {
  await client.query("select pg_advisory_lock(hashtext('hd-worker-runbooks tests: migrations'))");
  try {
    for (const file of readdirSync(MIGRATIONS)
      .filter((f) => f.endsWith('.sql'))
      .sort()) {
      for (const statement of sqlStatements(readFileSync(path.join(MIGRATIONS, file), 'utf8'))) {
        await client.query(statement).catch((e: Error) => {
          throw new Error(`migration ${file} failed on HD_TEST_SUPABASE_DB_URL: ${e.message}`);
        });
      }
    }
    // PostgREST serves what its schema cache holds; Supabase reloads it on DDL, and this asks for it anyway.
    await client.query("notify pgrst, 'reload schema'");
  } finally {
    await client.query("select pg_advisory_unlock(hashtext('hd-worker-runbooks tests: migrations'))");
  }
}

/**
 * A file's statements, split at the semicolons outside comments, quoted strings and dollar-quoted bodies (the
 * migrations' functions and DO blocks).
 */
export function sqlStatements(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  let i = 0;
  while (i < text.length) {
    const rest = text.slice(i);
    const dollar = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(rest);
    if (rest.startsWith('--')) i = end(text, '\n', i);
    else if (rest.startsWith('/*')) i = end(text, '*/', i + 2);
    else if (text[i] === "'" || text[i] === '"') i = end(text, text[i]!, i + 1);
    else if (dollar) i = end(text, dollar[0], i + dollar[0].length);
    else if (text[i] === ';') {
      out.push(text.slice(start, i));
      start = ++i;
    } else i++;
  }
  out.push(text.slice(start));
  // A piece with nothing but comments and blanks is no statement.
  return out.map((s) => s.trim()).filter((s) => s.replace(/--[^\n]*/g, '').trim() !== '');
}

/** The index just past the next `close` at or after `from` (the end of the text when there is none). */
function end(text: string, close: string, from: number): number {
  const at = text.indexOf(close, from);
  return at === -1 ? text.length : at + close.length;
}

const READY_LIMIT_MS = 30_000;

/** Waits until the API serves the jobs table and the requeue function to the service key (a reload is not instant). */
async function untilServed(ext: ExternalSupabase): Promise<void> {
  const headers = { apikey: ext.serviceRoleKey, Authorization: `Bearer ${ext.serviceRoleKey}` };
  const deadline = Date.now() + READY_LIMIT_MS;
  let last = '';
  for (;;) {
    try {
      const table = await fetch(`${ext.url}/rest/v1/hd_ingestion_jobs?select=id&limit=0`, { headers });
      // An empty batch: the function answers with no rows and writes nothing.
      const fn = await fetch(`${ext.url}/rest/v1/rpc/hd_requeue_jobs`, {
        method: 'POST',
        headers: { ...headers, 'Content-Type': 'application/json' },
        body: JSON.stringify({ p_jobs: [], p_entry: {} }),
      });
      if (table.ok && fn.ok) return;
      last = `table ${table.status}, hd_requeue_jobs ${fn.status}: ${(await fn.text()).slice(0, 200)}`;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(`HD_TEST_SUPABASE_URL does not serve the migrated schema (${last}); check the URL and keys`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
