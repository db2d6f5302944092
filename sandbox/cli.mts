/**
 * npm run sandbox -- up|down|scenario|seed|stats|worker|fault --dir DIR
 *
 * The whole system on one machine: a Supabase-compatible API (cloud and local) over a real PostgreSQL,
 * the Spark SSH host and the worker. `up` returns once every part answers; `down` stops them all.
 */
import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { callSandboxControl, readSandboxInfo, sandboxPaths } from './layout.ts';
import { alive, stopProcessesUnder } from './processes.ts';
import { LIMIT_OPTIONS } from './rest/limits.ts';
import { isScenarioName, SCENARIOS } from './scenarios.ts';
import { seedJobs } from './seed.ts';

const HELP = `Usage: npm run sandbox -- <verb> --dir DIR [options]

Verbs:
  up --dir DIR [--scenario NAME] [--latency MS] [--owner-pid PID] [limits]
                                                  start the sandbox in the background; returns when it answers;
                                                  with --owner-pid it stops by itself when process PID ends
  down --dir DIR                                  stop every process the sandbox started
  scenario NAME --dir DIR                         apply a named incident to a running sandbox
  seed --dir DIR --jobs N [--failed PCT] [--queued PCT]
                                                  add N jobs to the cloud project, made by PostgreSQL itself
                                                  (10 million in minutes): PCT% failed in the last day
                                                  (default 1), PCT% queued in the last 2 h (default 0.1), 3
                                                  running, the rest done over 90 days; then ANALYZE.
                                                  Progress on stderr
  stats --dir DIR [--reset]                       request, connection and channel counters as JSON
  worker stop|start|restart|fix --dir DIR         control the worker on Spark ("fix" deploys the healthy config)
  latency MS --dir DIR                            delay every HTTP response and SSH exec by MS
  fault NAME|off --dir DIR [--api cloud|local] [--method M] [--client C] [--times N] [--bytes N]
                                                  break the sandbox on purpose (http-401, http-403, http-404,
                                                  http-500, http-503, http-slow, http-malformed, http-reset,
                                                  http-reset-after, gateway-520, gateway-522, gateway-524,
                                                  gateway-540, gateway-544, pool-exhausted, body-too-large,
                                                  url-too-long, ssh-auth-fail, ssh-slow, ssh-blackhole,
                                                  ssh-drop, ssh-drop-output, ssh-no-procps, ssh-no-curl);
                                                  gateway-*: the answer of Supabase's gateway (Cloudflare's
                                                  HTML error page; 540 project paused);
                                                  --method/--times: only those requests, only N of them;
                                                  --client: only requests whose client starts with C
                                                  (supabase-js: the runbooks'; curl: the probe's from Spark);
                                                  --bytes: the size over which body-too-large (413, default
                                                  1024) and url-too-long (414, default 2048) refuse

Limits of up (Supabase's, on by default; 0 turns one off):
  --max-rows N              rows a read or RPC result returns at most (PostgREST db-max-rows; 1000)
  --statement-timeout-ms N  every API role's statement_timeout (default as Supabase: service_role 8000
                            through the authenticator, authenticated 8000, anon 3000); 57014 past it
  --pool N                  database connections of each API, 1 to 40 (PostgREST db-pool; 10)
  --pool-timeout-ms N       wait for a connection, then 504 PGRST003 (10000; 0 waits without limit)
  --postgrest 12|13|14      whose error shapes the API gives (13)
  --max-url-bytes N         the gateway's URL limit: 520 above it, 414 above 32 KB (16384)
  --max-body-bytes N        the gateway's body limit: 413 above it (104857600, Cloudflare's 100 MB)

Scenarios:
${Object.entries(SCENARIOS)
  .map(([name, what]) => `  ${name.padEnd(18)} ${what}`)
  .join('\n')}
`;

const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 20_000;

function fail(message: string, code = 2): never {
  process.stderr.write(`sandbox: ${message}\n`);
  process.exit(code);
}

function isSupervisorOf(pid: number, root: string): boolean {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return args.some((a) => a.endsWith('supervisor.mts')) && args.includes(root);
  } catch {
    // No /proc (not Linux): fall back to trusting the pid file.
    return !existsSync('/proc/self/cmdline');
  }
}

function runningPid(dir: string): number | null {
  const file = sandboxPaths(dir).pid;
  if (!existsSync(file)) return null;
  const pid = Number(readFileSync(file, 'utf8').trim());
  // After a reboot the pid may belong to anything: only a supervisor of this folder is ours to signal.
  if (Number.isInteger(pid) && pid > 0 && alive(pid) && isSupervisorOf(pid, sandboxPaths(dir).root)) return pid;
  rmSync(file, { force: true });
  return null;
}

async function control(dir: string, method: string, route: string, body?: unknown): Promise<unknown> {
  const info = readSandboxInfo(dir);
  if (!runningPid(dir))
    fail(`the sandbox in ${dir} is not running: start it with \`npm run sandbox -- up --dir ${dir}\``);
  try {
    return await callSandboxControl(info, method, route, body, 120_000);
  } catch (e) {
    fail((e as Error).message);
  }
}

/** The limit flags of `up`, as given (checked by {@link limitArgs}). */
const LIMIT_FLAGS = [
  'max-rows',
  'statement-timeout-ms',
  'pool',
  'pool-timeout-ms',
  'postgrest',
  'max-url-bytes',
  'max-body-bytes',
] as const;

/** The supervisor's arguments for the limit flags given; fails with the fix on a bad value. */
function limitArgs(values: Partial<Record<(typeof LIMIT_FLAGS)[number], string>>): string[] {
  const args: string[] = [];
  for (const flag of LIMIT_FLAGS) {
    const v = values[flag];
    if (v === undefined) continue;
    if (flag === 'postgrest') {
      if (!['12', '13', '14'].includes(v))
        fail(`--postgrest takes 12, 13 or 14 (the PostgREST major version); not ${v}`);
    } else if (!/^\d{1,10}$/.test(v)) {
      fail(`--${flag} takes a whole number (0 turns the limit off), e.g. --${flag} ${flag === 'pool' ? 10 : 1000}`);
    } else if (flag === 'pool' && (Number(v) < 1 || Number(v) > 40)) {
      fail(`--pool takes 1 to 40 connections (PostgREST's default is 10); not ${v}`);
    }
    args.push(`--${flag}`, v);
  }
  return args;
}

async function up(
  dir: string,
  scenario: string | undefined,
  latency: string | undefined,
  ownerPid: string | undefined,
  limits: string[],
): Promise<void> {
  if (scenario !== undefined && !isScenarioName(scenario)) {
    fail(`unknown scenario "${scenario}"; one of: ${Object.keys(SCENARIOS).join(', ')}`);
  }
  if (latency !== undefined && !/^\d{1,5}$/.test(latency))
    fail('--latency takes whole milliseconds, e.g. --latency 50');
  if (ownerPid !== undefined && !(/^\d{1,10}$/.test(ownerPid) && alive(Number(ownerPid))))
    fail(`--owner-pid takes the pid of a running process (the sandbox stops when it ends); ${ownerPid} is not one`);
  const pid = runningPid(dir);
  if (pid) {
    fail(`a sandbox is already running in ${dir} (pid ${pid}); stop it first: npm run sandbox -- down --dir ${dir}`);
  }
  const paths = sandboxPaths(dir);
  // A previous sandbox's data would be half-valid at best; every `up` starts clean.
  for (const stale of [paths.pgData, paths.sparkHome, paths.sshDir, paths.info])
    rmSync(stale, { recursive: true, force: true });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(paths.root, { recursive: true });
  const log = openSync(paths.log, 'w');
  const supervisor = fileURLToPath(new URL('./supervisor.mts', import.meta.url));
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = spawn(
    process.execPath,
    [
      '--import',
      import.meta.resolve('tsx'),
      supervisor,
      '--dir',
      paths.root,
      ...(scenario ? ['--scenario', scenario] : []),
      ...(latency ? ['--latency', latency] : []),
      ...(ownerPid ? ['--owner-pid', ownerPid] : []),
      ...limits,
    ],
    { detached: true, stdio: ['ignore', log, log, 'ipc'], env },
  );
  const outcome = await new Promise<{ ready: boolean; error?: string }>((resolve) => {
    const timer = setTimeout(
      () => resolve({ ready: false, error: `not ready after ${START_TIMEOUT_MS / 1000} s` }),
      START_TIMEOUT_MS,
    );
    child.once('message', (m) => {
      clearTimeout(timer);
      resolve(m as { ready: boolean; error?: string });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ ready: false, error: `the supervisor exited with code ${code}` });
    });
  });
  if (!outcome.ready) {
    // Nothing of a sandbox that did not start may run on: stop the supervisor and whatever it had started.
    if (child.exitCode === null) child.kill('SIGTERM');
    await stopProcessesUnder(paths.root);
    fail(`could not start: ${outcome.error}; see ${paths.log}`);
  }
  child.disconnect();
  child.unref();
  const info = readSandboxInfo(dir);
  process.stdout.write(
    [
      `sandbox up in ${paths.root}`,
      `  cloud API   ${info.cloud.url}   (project ${info.cloud.ref})`,
      `  local API   ${info.local.url}   (plays the developer's local Supabase)`,
      `  spark       ssh -p ${info.spark.port} -i ${info.spark.keyPath} -o UserKnownHostsFile=${info.spark.knownHosts} ${info.spark.user}@${info.spark.host}`,
      `  worker      pid ${info.worker.pid} in ${info.spark.workerDir}`,
      `  scenario    ${scenario ?? 'healthy'}${info.latencyMs ? `, latency ${info.latencyMs} ms` : ''}`,
      `  limits      ${describeLimits(info.limits)}`,
      '',
      `Try: npx zx runbooks/debug-stuck-jobs.mts --config ${path.join(dir, '.env')}`,
      `Stop: npm run sandbox -- down --dir ${dir}`,
      '',
    ].join('\n'),
  );
}

function describeLimits(l: ReturnType<typeof readSandboxInfo>['limits']): string {
  if (!l) return 'unknown';
  const on = (n: number, text: string) => (n > 0 ? text : 'off');
  const timeout =
    l.statementTimeoutMs === null
      ? 'Supabase role timeouts (8 s, anon 3 s)'
      : on(l.statementTimeoutMs, `statement timeout ${l.statementTimeoutMs} ms`);
  return [
    `PostgREST ${l.postgrest}`,
    `max rows ${on(l.maxRows, String(l.maxRows))}`,
    timeout,
    `pool ${l.pool} (wait ${l.poolTimeoutMs > 0 ? `${l.poolTimeoutMs} ms` : 'without limit'})`,
    `URL ${on(l.maxUrlBytes, `${l.maxUrlBytes} B`)}`,
  ].join(', ');
}

async function down(dir: string): Promise<void> {
  const root = sandboxPaths(dir).root;
  const pid = runningPid(dir);
  if (pid) {
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    // The supervisor is its own process group leader (detached), so this reaches PostgreSQL and the worker too.
    if (alive(pid)) process.kill(-pid, 'SIGKILL');
    rmSync(sandboxPaths(dir).pid, { force: true });
  }
  // Whatever is left in the folder (the supervisor was killed, or died halfway through its cleanups): PostgreSQL
  // on its data folder and the worker in the Spark home still run, the worker with the service key.
  const leftovers = await stopProcessesUnder(root);
  if (!pid && !leftovers.length) {
    process.stdout.write(`no sandbox running in ${dir}\n`);
    return;
  }
  const extra = leftovers.length
    ? ` (${leftovers.length} process${leftovers.length === 1 ? '' : 'es'} ${pid ? 'left behind' : 'without a supervisor'} stopped too)`
    : '';
  process.stdout.write(`sandbox in ${dir} stopped${extra}\n`);
}

/** `seed`: N jobs straight into the cloud database, as its superuser (the sandbox's own admin password). */
async function seed(dir: string, jobs: string | undefined, failed: string | undefined, queued: string | undefined) {
  if (!jobs || !/^\d{1,9}$/.test(jobs) || Number(jobs) < 1)
    fail('seed needs --jobs N, a whole number, e.g. --jobs 10000000');
  const percent = (flag: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    if (!/^\d{1,3}(\.\d{1,4})?$/.test(v) || Number(v) > 100)
      fail(`--${flag} takes a percentage from 0 to 100, e.g. --${flag} 1`);
    return Number(v);
  };
  const failedPercent = percent('failed', failed);
  const queuedPercent = percent('queued', queued);
  if ((failedPercent ?? 1) + (queuedPercent ?? 0.1) > 100) fail('--failed and --queued add up to more than 100%');
  if (!runningPid(dir))
    fail(`the sandbox in ${dir} is not running: start it with \`npm run sandbox -- up --dir ${dir}\``);
  const info = readSandboxInfo(dir);
  const password = readFileSync(path.join(sandboxPaths(dir).pgData, 'admin-password'), 'utf8').trim();
  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${info.postgres.port}/cloud`;
  const r = await seedJobs(url, { jobs: Number(jobs), failedPercent, queuedPercent }, (line) =>
    process.stderr.write(`${line}\n`),
  );
  const counts = Object.entries(r.counts)
    .map(([status, n]) => `${n.toLocaleString('en')} ${status}`)
    .join(', ');
  process.stdout.write(
    `seeded ${Number(jobs).toLocaleString('en')} jobs (${counts}) in ${r.totalSeconds.toFixed(1)} s: insert ${r.insertSeconds.toFixed(1)} s, indexes ${r.indexSeconds.toFixed(1)} s, analyze ${r.analyzeSeconds.toFixed(1)} s\n`,
  );
}

const FAULTS: Record<string, object> = {
  'http-401': { httpFault: { kind: 'status', status: 401 } },
  'http-403': { httpFault: { kind: 'status', status: 403 } },
  'http-404': { httpFault: { kind: 'status', status: 404 } },
  'http-500': { httpFault: { kind: 'status', status: 500 } },
  'http-503': { httpFault: { kind: 'status', status: 503 } },
  'http-slow': { httpFault: { kind: 'slow', delayMs: 30_000 } },
  'http-malformed': { httpFault: { kind: 'malformed-json' } },
  'http-reset': { httpFault: { kind: 'reset' } },
  'http-reset-after': { httpFault: { kind: 'reset-after' } },
  'gateway-520': { httpFault: { kind: 'gateway', status: 520 } },
  'gateway-522': { httpFault: { kind: 'gateway', status: 522 } },
  'gateway-524': { httpFault: { kind: 'gateway', status: 524 } },
  'gateway-540': { httpFault: { kind: 'gateway', status: 540 } },
  'gateway-544': { httpFault: { kind: 'gateway', status: 544 } },
  'pool-exhausted': { httpFault: { kind: 'pool-exhausted' } },
  'body-too-large': { httpFault: { kind: 'body-too-large', bytes: 1024 } },
  'url-too-long': { httpFault: { kind: 'url-too-long', bytes: 2048 } },
  'ssh-auth-fail': { sshFault: { kind: 'auth-fail' } },
  'ssh-slow': { sshFault: { kind: 'slow-handshake', delayMs: 30_000 } },
  'ssh-drop': { sshFault: { kind: 'drop-mid-command' } },
  'ssh-drop-output': { sshFault: { kind: 'drop-mid-command', afterBytes: 200 } },
  'ssh-blackhole': { sshFault: { kind: 'silent' } },
  'ssh-no-procps': { sshFault: { kind: 'missing-command', commands: ['ps', 'pgrep'] } },
  'ssh-no-curl': { sshFault: { kind: 'missing-command', commands: ['curl'] } },
  off: { httpFault: null, sshFault: null },
};

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      dir: { type: 'string' },
      scenario: { type: 'string' },
      latency: { type: 'string' },
      'owner-pid': { type: 'string' },
      reset: { type: 'boolean', default: false },
      api: { type: 'string' },
      method: { type: 'string' },
      client: { type: 'string' },
      times: { type: 'string' },
      jobs: { type: 'string' },
      failed: { type: 'string' },
      queued: { type: 'string' },
      bytes: { type: 'string' },
      ...LIMIT_OPTIONS,
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [verb, arg] = positionals;
  if (values.help || !verb) {
    process.stdout.write(HELP);
    return;
  }
  const dir = values.dir;
  if (!dir) fail(`${verb} needs --dir DIR, the sandbox's folder (e.g. --dir .sandbox)`);
  switch (verb) {
    case 'up':
      return up(dir, values.scenario, values.latency, values['owner-pid'], limitArgs(values));
    case 'down':
      return down(dir);
    case 'scenario': {
      if (!arg || !isScenarioName(arg)) fail(`scenario needs a name, one of: ${Object.keys(SCENARIOS).join(', ')}`);
      await control(dir, 'POST', '/scenario', { name: arg });
      process.stdout.write(`scenario ${arg} applied: ${SCENARIOS[arg]}\n`);
      return;
    }
    case 'seed':
      return seed(dir, values.jobs, values.failed, values.queued);
    case 'stats': {
      if (values.reset) await control(dir, 'POST', '/stats/reset');
      else process.stdout.write(`${JSON.stringify(await control(dir, 'GET', '/stats'), null, 2)}\n`);
      return;
    }
    case 'worker': {
      if (!arg || !['stop', 'start', 'restart', 'fix'].includes(arg)) fail('worker needs stop, start, restart or fix');
      const r = (await control(dir, 'POST', '/worker', { action: arg })) as { workerPid: number | null };
      process.stdout.write(`worker ${arg}: pid ${r.workerPid ?? '(not running)'}\n`);
      return;
    }
    case 'latency': {
      if (!arg || !/^\d{1,5}$/.test(arg)) fail('latency needs whole milliseconds, e.g. latency 50');
      await control(dir, 'POST', '/controls', { latencyMs: Number(arg) });
      process.stdout.write(`latency ${arg} ms\n`);
      return;
    }
    case 'fault': {
      const fault = arg ? FAULTS[arg] : undefined;
      if (!fault) fail(`fault needs one of: ${Object.keys(FAULTS).join(', ')}`);
      if (values.times !== undefined && !/^\d{1,6}$/.test(values.times))
        fail('--times takes a whole number, e.g. --times 2');
      if (values.bytes !== undefined && !/^\d{1,9}$/.test(values.bytes))
        fail('--bytes takes a whole number of bytes, e.g. --bytes 4096');
      const http = 'httpFault' in fault && fault.httpFault ? (fault.httpFault as object) : undefined;
      const targeted = http
        ? {
            httpFault: {
              ...http,
              ...(values.api ? { api: values.api } : {}),
              ...(values.method ? { method: values.method.toUpperCase() } : {}),
              ...(values.client ? { client: values.client } : {}),
              ...(values.times !== undefined ? { times: Number(values.times) } : {}),
              ...(values.bytes !== undefined ? { bytes: Number(values.bytes) } : {}),
            },
          }
        : fault;
      await control(dir, 'POST', '/controls', targeted);
      process.stdout.write(`fault ${arg}\n`);
      return;
    }
    default:
      fail(`unknown verb "${verb}"; see npm run sandbox -- --help`);
  }
}

main().catch((e: Error) => fail(e.message));
