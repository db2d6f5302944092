/**
 * The benchmark's sandboxes: the shared client (sandbox/client.ts) with the bench's children's environment, a
 * worker kept quiet while measuring, and all stopped (and their folders removed) on exit or Ctrl-C.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type SandboxClient, sandboxClient, sandboxDown, sandboxUp } from '../sandbox/client.ts';
import { childEnv } from './child.ts';

export { ROOT } from '../sandbox/client.ts';

export interface BenchSandbox extends SandboxClient {
  latency(ms: number): Promise<void>;
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
    await sandboxUp(dir, opts, childEnv());
  } catch (e) {
    await sandboxDown(dir, childEnv()).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const client = sandboxClient(dir);
  let stopped = false;
  const sb: BenchSandbox = {
    ...client,
    async latency(ms) {
      await client.controls({ latencyMs: ms });
    },
    async quietWorker() {
      const envPath = path.join(client.workerDir, '.env');
      const text = readFileSync(envPath, 'utf8');
      writeFileSync(envPath, text.replace(/^WORKER_POLL_MS=.*$/m, 'WORKER_POLL_MS=3600000'), { mode: 0o600 });
      await client.worker('restart');
      // Its first poll happens at start; let it pass before anything is measured.
      await new Promise((r) => setTimeout(r, 1_500));
    },
    async down() {
      if (stopped) return;
      stopped = true;
      live.delete(sb);
      try {
        await sandboxDown(dir, childEnv());
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  live.add(sb);
  return sb;
}
