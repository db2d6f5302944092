/**
 * The Python worker (worker.py beside this file) on the sandbox's Spark, in place of the reference worker: installed
 * into the Spark home's worker folder and started there (its cwd, and the script a file in it), so the Spark probe
 * sees it as the worker: a process of the folder's owner running a file in the folder. Its stdout and stderr go to
 * logs/worker.log, as a process manager would put them. `restartOnExit` plays systemd's Restart=always (a crash
 * loop). Every process it starts is held by the test file and stopped when the file ends.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { holdUntilFileEnd } from '../run.ts';

const SOURCE = fileURLToPath(new URL('./worker.py', import.meta.url));

/**
 * The python3 to run the worker with: Debian's (/usr/bin/python3, with python3-requests, which .ci/run installs),
 * else the first on PATH. Missing python3 or requests is an error, never a skip.
 */
export function pythonBin(): string {
  for (const bin of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(bin, ['-c', 'import requests'], { stdio: 'ignore' });
      return bin;
    } catch {
      // try the next
    }
  }
  throw new Error('no python3 with the requests module: install python3 and python3-requests (.ci/run does)');
}

export class PythonWorker {
  readonly dir: string;
  readonly python: string;
  private child: ChildProcess | null = null;
  private restartOnExit = false;
  private restartTimer: NodeJS.Timeout | undefined;
  /** How many times the worker process was started. */
  starts = 0;

  /** Installs worker.py into the worker folder (resolved: the probe compares real paths). */
  constructor(workerDir: string) {
    this.dir = realpathSync(workerDir);
    this.python = pythonBin();
    mkdirSync(path.join(this.dir, 'logs'), { recursive: true });
    copyFileSync(SOURCE, path.join(this.dir, 'worker.py'));
    holdUntilFileEnd(() => this.stop());
  }

  get logFile(): string {
    return path.join(this.dir, 'logs', 'worker.log');
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Writes the worker's .env (the sandbox's format: KEY=VALUE lines). */
  writeEnv(vars: Record<string, string>): void {
    const lines = Object.entries(vars).map(([k, v]) => `${k}=${v}`);
    writeFileSync(path.join(this.dir, '.env'), `# hd-worker configuration\n${lines.join('\n')}\n`, { mode: 0o600 });
  }

  truncateLog(): void {
    writeFileSync(this.logFile, '');
  }

  /** Starts `python3 <dir>/worker.py` in the folder; with `restartOnExit`, starts it again 300 ms after each exit. */
  start(opts: { restartOnExit?: boolean } = {}): void {
    this.restartOnExit = opts.restartOnExit ?? false;
    this.spawnOnce();
  }

  private spawnOnce(): void {
    if (this.running) return;
    const fd = openSync(this.logFile, 'a');
    try {
      const child = spawn(this.python, [path.join(this.dir, 'worker.py')], {
        cwd: this.dir,
        // Spark's environment, not the test run's: no loader, no secrets of this host.
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: path.dirname(path.dirname(this.dir)), LANG: 'C.UTF-8' },
        stdio: ['ignore', fd, fd],
      });
      this.child = child;
      this.starts += 1;
      child.on('exit', () => {
        if (this.child !== child || !this.restartOnExit) return;
        this.restartTimer = setTimeout(() => this.spawnOnce(), 300);
      });
    } finally {
      closeSync(fd);
    }
  }

  /** Waits until `check` holds (polled every 100 ms), or throws naming `what`. */
  static async waitFor(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }

  /** Sends a signal to the running process (SIGKILL: the OOM killer), without restarting it. */
  async kill(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    this.restartOnExit = false;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
    this.child = null;
  }

  /** Stops it (SIGTERM, then SIGKILL after 5 s) and any restart. */
  async stop(): Promise<void> {
    this.restartOnExit = false;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || !this.running) {
      this.child = null;
      return;
    }
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
    this.child = null;
  }

  /** Whether the log file exists (a worker that never started writes none). */
  hasLog(): boolean {
    return existsSync(this.logFile);
  }
}
