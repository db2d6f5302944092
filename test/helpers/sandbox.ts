/**
 * Starts and stops a real sandbox for integration tests, through the same CLI an operator uses
 * (`npm run sandbox -- up|down|scenario|...`), and runs runbooks against it as child processes.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { callSandboxControl, readSandboxInfo, type SandboxInfo } from '../../sandbox/layout.ts';
import type { StatsSnapshot } from '../../sandbox/stats.ts';

const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSX = import.meta.resolve('tsx');

/** An environment for child processes: no inherited config, no CI leakage unless asked, no loader. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LANG: 'C.UTF-8',
    NO_COLOR: '1',
  };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

async function sandboxCli(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', TSX, path.join(ROOT, 'sandbox/cli.mts'), ...args], {
    cwd: ROOT,
    env: cleanEnv(),
    timeout: 150_000,
  });
  return stdout;
}

export interface Sandbox {
  dir: string;
  info: SandboxInfo;
  envFile: string;
  scenario(name: string): Promise<void>;
  stats(): Promise<StatsSnapshot>;
  resetStats(): Promise<void>;
  worker(action: 'stop' | 'start' | 'restart' | 'fix'): Promise<void>;
  controls(body: Record<string, unknown>): Promise<void>;
  sql<T = Record<string, unknown>>(sql: string, params?: unknown[], db?: 'cloud' | 'local'): Promise<T[]>;
  down(): Promise<void>;
}

const control = (info: SandboxInfo, method: string, route: string, body?: unknown) =>
  callSandboxControl(info, method, route, body);

export async function startSandbox(opts: { scenario?: string; latencyMs?: number } = {}): Promise<Sandbox> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hd-sandbox-'));
  await sandboxCli([
    'up',
    '--dir',
    dir,
    ...(opts.scenario ? ['--scenario', opts.scenario] : []),
    ...(opts.latencyMs ? ['--latency', String(opts.latencyMs)] : []),
  ]);
  const info = readSandboxInfo(dir);
  return {
    dir,
    info,
    envFile: path.join(dir, '.env'),
    async scenario(name) {
      await control(info, 'POST', '/scenario', { name });
    },
    stats: async () => (await control(info, 'GET', '/stats')) as StatsSnapshot,
    async resetStats() {
      await control(info, 'POST', '/stats/reset');
    },
    async worker(action) {
      await control(info, 'POST', '/worker', { action });
    },
    async controls(body) {
      await control(info, 'POST', '/controls', body);
    },
    async sql<T>(sql: string, params: unknown[] = [], db: 'cloud' | 'local' = 'cloud') {
      return ((await control(info, 'POST', '/sql', { sql, params, db })) as { rows: T[] }).rows;
    },
    async down() {
      await sandboxCli(['down', '--dir', dir]);
    },
  };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a runbook the way CI does: `node --import tsx runbooks/<name>.mts ...` with stdin closed. */
export function runRunbook(
  name: string,
  args: string[],
  opts: { env?: Record<string, string | undefined>; cwd?: string; timeoutMs?: number; stdin?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(
      process.execPath,
      ['--import', TSX, path.join(ROOT, 'runbooks', `${name}.mts`), ...args],
      { cwd: opts.cwd ?? ROOT, env: cleanEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => {
      stdout += d;
    });
    child.stderr!.on('data', (d) => {
      stderr += d;
    });
    if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
    else child.stdin!.end();
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`${name} ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 60_000} ms\n${stdout}\n${stderr}`),
      );
    }, opts.timeoutMs ?? 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
