/**
 * Runs one measured command as a child process: wall time from spawn to exit, measured here, and peak memory
 * from GNU time (`/usr/bin/time -f %M`: the largest resident set of any process in the child's tree that was
 * waited for, in KB). `npx zx x.mts` is npm, then zx with the runbook in the same process; the runbook's
 * process is the largest of them, so the figure is the runbook's own peak.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const GNU_TIME = '/usr/bin/time';

export interface ChildResult {
  code: number | null;
  wallMs: number;
  /** Peak RSS in MB, or undefined without GNU time. */
  maxRssMb?: number;
  stdout: string;
  stderr: string;
}

/** What the benchmark's children get: no inherited config, no CI, no colour, no loader from the parent. */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LANG: 'C.UTF-8',
    NO_COLOR: '1',
    // The operator running the runbook: set, so no `git config` call is timed.
    RUNBOOK_OPERATOR: 'bench@localhost',
  };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

export function hasGnuTime(): boolean {
  return existsSync(GNU_TIME);
}

/** Keeps at most this much of a child's output (the runbooks print a few KB; a runaway must not fill memory). */
const MAX_OUTPUT = 1024 * 1024;

export function runTimed(
  command: string,
  args: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number; stdin?: string; memory?: boolean },
): Promise<ChildResult> {
  const memory = (opts.memory ?? true) && hasGnuTime();
  const dir = memory ? mkdtempSync(path.join(os.tmpdir(), 'hd-bench-time-')) : undefined;
  const timeFile = dir ? path.join(dir, 'rss') : undefined;
  const [cmd, argv] = timeFile ? [GNU_TIME, ['-f', '%M', '-o', timeFile, command, ...args]] : [command, args];
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, argv, { cwd: opts.cwd, env: opts.env ?? childEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      if (stdout.length < MAX_OUTPUT) stdout += d;
    });
    child.stderr.on('data', (d) => {
      if (stderr.length < MAX_OUTPUT) stderr += d;
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.stdin ?? '');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')}: no exit after ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      const wallMs = performance.now() - started;
      clearTimeout(timer);
      let maxRssMb: number | undefined;
      if (timeFile && dir) {
        const kb = Number(/(\d+)\s*$/.exec(readFileSync(timeFile, 'utf8').trim())?.[1]);
        if (Number.isFinite(kb) && kb > 0) maxRssMb = kb / 1024;
        rmSync(dir, { recursive: true, force: true });
      }
      resolve({ code, wallMs, maxRssMb, stdout, stderr });
    });
  });
}
