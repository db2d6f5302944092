import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WORKER_SOURCE = fileURLToPath(new URL('./spark/worker.mjs', import.meta.url));

/** The worker's `.env` on Spark, as the sandbox writes it. */
export interface WorkerEnv {
  SUPABASE_URL: string;
  SUPABASE_SERVICE_ROLE_KEY: string;
  WORKER_POLL_MS: string;
  WORKER_MAX_ATTEMPTS: string;
  WORKER_SOURCE_LINE: 'subset' | 'full';
}

/**
 * Plays the process manager on Spark (systemd or a tmux session there): installs the worker into
 * ~/srv/hd-worker/, writes its .env and starts, stops and restarts it.
 */
export class WorkerProcess {
  private child: ChildProcess | null = null;
  readonly workerDir: string;
  readonly home: string;

  constructor(home: string, workerDir: string) {
    this.home = home;
    this.workerDir = workerDir;
  }

  install(env: WorkerEnv): void {
    mkdirSync(path.join(this.workerDir, 'logs'), { recursive: true });
    copyFileSync(WORKER_SOURCE, path.join(this.workerDir, 'worker.mjs'));
    this.writeEnv(env);
  }

  writeEnv(env: WorkerEnv): void {
    const lines = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    writeFileSync(path.join(this.workerDir, '.env'), `# hd-worker configuration\n${lines.join('\n')}\n`, {
      mode: 0o600,
    });
  }

  readEnv(): WorkerEnv {
    const text = readFileSync(path.join(this.workerDir, '.env'), 'utf8');
    const out: Record<string, string> = {};
    for (const line of text.split('\n')) {
      const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
      if (m) out[m[1]] = m[2];
    }
    return out as unknown as WorkerEnv;
  }

  truncateLog(): void {
    writeFileSync(path.join(this.workerDir, 'logs', 'worker.log'), '');
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): number {
    if (this.running) return this.child!.pid!;
    const child = spawn(process.execPath, [path.join(this.workerDir, 'worker.mjs')], {
      cwd: this.workerDir,
      // The worker on Spark has its own environment, not ours: no NODE_OPTIONS loader, no secrets of the host.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: this.home, USER: 'sparkuser', LANG: 'C.UTF-8' },
      stdio: 'ignore',
    });
    this.child = child;
    return child.pid!;
  }

  async stop(timeoutMs = 5_000): Promise<void> {
    const child = this.child;
    if (!child || !this.running) {
      this.child = null;
      return;
    }
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
    this.child = null;
  }

  async restart(): Promise<number> {
    await this.stop();
    return this.start();
  }
}
