/**
 * The one client of a sandbox for the code that drives it from outside (the tests, the bench): started and stopped
 * through the operator's CLI (`sandbox/cli.mts up|down`), reached through the supervisor's control API. Each caller
 * adds what it alone needs (the tests' ownership of a sandbox, the bench's quiet worker and clean-up on exit).
 */
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { callSandboxControl, readSandboxInfo, type SandboxInfo, sandboxPaths } from './layout.ts';
import type { StatsSnapshot } from './stats.ts';

const run = promisify(execFile);
/** The repository's root folder. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The loader a child process runs TypeScript sources with (`node --import TSX file.mts`). */
export const TSX = import.meta.resolve('tsx');
const CLI_TIMEOUT_MS = 150_000;

/** What `worker` does to the worker on Spark ("fix" deploys the healthy config). */
export type WorkerAction = 'stop' | 'start' | 'restart' | 'fix';

/**
 * How to start a sandbox: its scenario, its added latency, the process whose end stops it, and its limits (Supabase's
 * when unset; 0 turns one off: see `npm run sandbox -- --help`).
 */
export interface SandboxStartOptions {
  scenario?: string;
  latencyMs?: number;
  ownerPid?: number;
  maxRows?: number;
  statementTimeoutMs?: number;
  pool?: number;
  poolTimeoutMs?: number;
  postgrest?: 12 | 13 | 14;
  maxUrlBytes?: number;
  maxBodyBytes?: number;
}

/** The `up` flags of the limits set in `opts`. */
function limitFlags(opts: SandboxStartOptions): string[] {
  const flags: [string, number | undefined][] = [
    ['--max-rows', opts.maxRows],
    ['--statement-timeout-ms', opts.statementTimeoutMs],
    ['--pool', opts.pool],
    ['--pool-timeout-ms', opts.poolTimeoutMs],
    ['--postgrest', opts.postgrest],
    ['--max-url-bytes', opts.maxUrlBytes],
    ['--max-body-bytes', opts.maxBodyBytes],
  ];
  return flags.flatMap(([flag, v]) => (v === undefined ? [] : [flag, String(v)]));
}

/** Runs `sandbox/cli.mts ARGS` as a child with `env`; resolves to its stdout, rejects with the child's error. */
export async function sandboxCli(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', TSX, path.join(ROOT, 'sandbox/cli.mts'), ...args], {
    cwd: ROOT,
    env,
    timeout: CLI_TIMEOUT_MS,
  });
  return stdout;
}

/** `up`: starts a sandbox in `dir` and returns once every part answers. */
export async function sandboxUp(dir: string, opts: SandboxStartOptions, env: NodeJS.ProcessEnv): Promise<void> {
  await sandboxCli(
    [
      'up',
      '--dir',
      dir,
      ...(opts.ownerPid !== undefined ? ['--owner-pid', String(opts.ownerPid)] : []),
      ...(opts.scenario ? ['--scenario', opts.scenario] : []),
      ...(opts.latencyMs ? ['--latency', String(opts.latencyMs)] : []),
      ...limitFlags(opts),
    ],
    env,
  );
}

/** How many jobs `seed` adds, and their mix (see `npm run sandbox -- --help`). */
export interface SeedRequest {
  jobs: number;
  failedPercent?: number;
  queuedPercent?: number;
}

/**
 * `seed`: adds jobs to the running sandbox in `dir`; resolves to the CLI's summary line. Its progress lines (stderr)
 * go to `progress` as they come: at 10 million jobs the seed takes minutes, far past the other verbs' timeout.
 */
export function sandboxSeed(
  dir: string,
  req: SeedRequest,
  env: NodeJS.ProcessEnv,
  progress: (line: string) => void = () => {},
): Promise<string> {
  const args = ['seed', '--dir', dir, '--jobs', String(req.jobs)];
  if (req.failedPercent !== undefined) args.push('--failed', String(req.failedPercent));
  if (req.queuedPercent !== undefined) args.push('--queued', String(req.queuedPercent));
  const child = spawn(process.execPath, ['--import', TSX, path.join(ROOT, 'sandbox/cli.mts'), ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let partial = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
    const lines = (partial + d).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) if (l.trim()) progress(l);
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(stdout.trim());
      else reject(new Error(`sandbox seed exited ${code}: ${stderr.trim().split('\n').slice(-3).join(' / ')}`));
    });
  });
}

/** `down`: stops every process the sandbox in `dir` started. */
export async function sandboxDown(dir: string, env: NodeJS.ProcessEnv): Promise<void> {
  await sandboxCli(['down', '--dir', dir], env);
}

/** A running sandbox, through its control API. */
export interface SandboxClient {
  dir: string;
  info: SandboxInfo;
  /** The laptop's `.env` the sandbox wrote for the runbooks. */
  envFile: string;
  /** The worker's folder on the sandbox's Spark. */
  workerDir: string;
  control<T = unknown>(method: string, route: string, body?: unknown): Promise<T>;
  scenario(name: string): Promise<void>;
  stats(): Promise<StatsSnapshot>;
  resetStats(): Promise<void>;
  worker(action: WorkerAction): Promise<void>;
  /** Latency and faults: `{ latencyMs }`, `{ fault, ... }` (see `npm run sandbox -- --help`). */
  controls(body: Record<string, unknown>): Promise<void>;
  /** SQL on the cloud database, or on the local one when `db` says so. */
  sql<T = Record<string, unknown>>(
    sql: string,
    params?: unknown[],
    db?: 'cloud' | 'local',
  ): Promise<{ rows: T[]; rowCount: number | null }>;
}

/** The client of the sandbox running in `dir` (read from its sandbox.json). */
export function sandboxClient(dir: string): SandboxClient {
  const info = readSandboxInfo(dir);
  const control = <T>(method: string, route: string, body?: unknown) =>
    callSandboxControl<T>(info, method, route, body);
  return {
    dir,
    info,
    envFile: path.join(dir, '.env'),
    workerDir: sandboxPaths(dir).workerDir,
    control,
    stats: () => control<StatsSnapshot>('GET', '/stats'),
    async scenario(name) {
      await control('POST', '/scenario', { name });
    },
    async resetStats() {
      await control('POST', '/stats/reset');
    },
    async worker(action) {
      await control('POST', '/worker', { action });
    },
    async controls(body) {
      await control('POST', '/controls', body);
    },
    sql: (sql, params = [], db) => control('POST', '/sql', db === undefined ? { sql, params } : { sql, params, db }),
  };
}
