/**
 * The benchmark's sandboxes: started and stopped through the operator's CLI (`sandbox/cli.mts up|down`), reached
 * through the supervisor's control API, and all stopped (and their folders removed) on exit or Ctrl-C.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { callSandboxControl, readSandboxInfo, type SandboxInfo, sandboxPaths } from '../sandbox/layout.ts';
import type { StatsSnapshot } from '../sandbox/stats.ts';
import { childEnv } from './child.ts';

const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSX = import.meta.resolve('tsx');
const CONTROL_TIMEOUT_MS = 300_000;

async function sandboxCli(args: string[]): Promise<void> {
  await run(process.execPath, ['--import', TSX, path.join(ROOT, 'sandbox/cli.mts'), ...args], {
    cwd: ROOT,
    env: childEnv(),
    timeout: 150_000,
  });
}

export interface BenchSandbox {
  dir: string;
  info: SandboxInfo;
  envFile: string;
  workerDir: string;
  control<T = unknown>(method: string, route: string, body?: unknown): Promise<T>;
  stats(): Promise<StatsSnapshot>;
  resetStats(): Promise<void>;
  sql<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: T[]; rowCount: number | null }>;
  latency(ms: number): Promise<void>;
  scenario(name: string): Promise<void>;
  worker(action: 'stop' | 'start' | 'restart' | 'fix'): Promise<void>;
  /** Keeps the worker running (the runbooks see a live process) but polling once an hour, so it is silent. */
  quietWorker(): Promise<void>;
  down(): Promise<void>;
}

const live = new Set<BenchSandbox>();

/** Stops every sandbox still running (the bench's finally, and its SIGINT/SIGTERM handler). */
export async function stopAllSandboxes(): Promise<void> {
  await Promise.all([...live].map((s) => s.down().catch(() => {})));
}

export async function startBenchSandbox(opts: { scenario?: string; latencyMs?: number } = {}): Promise<BenchSandbox> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hd-bench-sandbox-'));
  try {
    await sandboxCli([
      'up',
      '--dir',
      dir,
      ...(opts.scenario ? ['--scenario', opts.scenario] : []),
      ...(opts.latencyMs ? ['--latency', String(opts.latencyMs)] : []),
    ]);
  } catch (e) {
    await sandboxCli(['down', '--dir', dir]).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const info = readSandboxInfo(dir);
  const workerDir = sandboxPaths(dir).workerDir;

  const control = <T>(method: string, route: string, body?: unknown) =>
    callSandboxControl<T>(info, method, route, body, CONTROL_TIMEOUT_MS);

  let stopped = false;
  const sb: BenchSandbox = {
    dir,
    info,
    envFile: path.join(dir, '.env'),
    workerDir,
    control,
    stats: () => control<StatsSnapshot>('GET', '/stats'),
    async resetStats() {
      await control('POST', '/stats/reset');
    },
    sql: (sql, params = []) => control('POST', '/sql', { sql, params }),
    async latency(ms) {
      await control('POST', '/controls', { latencyMs: ms });
    },
    async scenario(name) {
      await control('POST', '/scenario', { name });
    },
    async worker(action) {
      await control('POST', '/worker', { action });
    },
    async quietWorker() {
      const envPath = path.join(workerDir, '.env');
      const text = readFileSync(envPath, 'utf8');
      writeFileSync(envPath, text.replace(/^WORKER_POLL_MS=.*$/m, 'WORKER_POLL_MS=3600000'), { mode: 0o600 });
      await control('POST', '/worker', { action: 'restart' });
      // Its first poll happens at start; let it pass before anything is measured.
      await new Promise((r) => setTimeout(r, 1_500));
    },
    async down() {
      if (stopped) return;
      stopped = true;
      live.delete(sb);
      try {
        await sandboxCli(['down', '--dir', dir]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  live.add(sb);
  return sb;
}
