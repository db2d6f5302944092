/**
 * The fault harness: each case is one vitest test that runs a runbook as a child process against a sandbox broken
 * on purpose, and asserts the promises an incident relies on (exit code, one clear line with its fix, no stack
 * trace, no hang, no write left unreported). Every case carries its row of the table in `task.meta.faultCase`; the
 * reporter in ./table-reporter.ts prints the table of cases tried and held at the end of the run.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { HttpEvent } from '../../sandbox/stats.ts';
import { tempDir as runTempDir } from '../helpers/run.ts';
import { cleanEnv, ROOT, type RunResult, runRunbook, type Sandbox } from '../helpers/sandbox.ts';

/** One row of the table. */
export interface FaultCaseMeta {
  /** Supabase, SSH, Retries, Writes, Bad input, Secrets, Races. */
  group: string;
  /** The runbook the case ran, or a comma-separated list. */
  runbook: string;
  /** What was broken or typed. */
  name: string;
  /** What must happen, e.g. `exit 2 · supabase-key-rejected`. */
  expected: string;
  /** What did happen, filled in by the case (exit code and time of the last run). */
  observed?: string;
  /**
   * A known product issue the case shows: the case runs as `it.fails` (it must still fail; once the issue is fixed
   * it passes, `it.fails` fails, and the marker has to go). The table lists it apart from the cases that held.
   */
  known?: string;
}

declare module 'vitest' {
  interface TaskMeta {
    faultCase?: FaultCaseMeta;
  }
}

export type RunbookName = 'debug-stuck-jobs' | 'diagnose-env' | 'requeue';

/** For requeue cases about something else: the fix gate passed by, with the reason recorded as the flag asks. */
export const NO_GATE = ['--skip-fix-gate', 'the fix gate is not what this case tests'] as const;
export const RUNBOOKS: readonly RunbookName[] = ['debug-stuck-jobs', 'diagnose-env', 'requeue'];

/** A runbook that has not finished after this long hangs: the case fails. */
export const HANG_MS = 30_000;
/** Per network call, as an operator in a hurry would pass it: small, so the slow cases stay short. */
export const RUNBOOK_TIMEOUT_S = '2';

/** The row of the case running in this async context (cases of a `describe.concurrent` overlap). */
const current = new AsyncLocalStorage<FaultCaseMeta>();

/**
 * Registers one case. The test's name is the row; a failed assertion (or a runbook that hangs past
 * {@link HANG_MS}) fails the case, and the table shows it as not held.
 */
export function faultCase(meta: FaultCaseMeta, fn: () => Promise<void>, timeoutMs = HANG_MS * 2 + 10_000): void {
  (meta.known ? it.fails : it)(
    `${meta.group} · ${meta.name} · ${meta.runbook}`,
    async ({ task }) => {
      const row: FaultCaseMeta = { ...meta };
      task.meta.faultCase = row;
      await current.run(row, fn);
    },
    timeoutMs,
  );
}

/** Notes what a case saw, for the table's "observed" column. */
export function observe(text: string): void {
  const row = current.getStore();
  if (row) row.observed = row.observed ? `${row.observed}; ${text}` : text;
}

export interface Run extends RunResult {
  /** How long the run took, for the table's "observed" column: no case asserts it (it grows with the load). */
  ms: number;
  /**
   * `Date.now()` just before the runbook started: the clock the sandbox stamps its events with (same machine), so
   * the events of this run are the ones that started at or after it (see {@link requestsOfRun}).
   */
  startedAt: number;
  /** The `--json FILE` report, when the runbook wrote one. */
  report?: { exitCode: number; findings: Array<{ id: string; severity: string; fix: string }> } & Record<
    string,
    unknown
  >;
}

let tmpRoot: string | undefined;
afterAll(() => {
  if (tmpRoot) rmSync(tmpRoot, { recursive: true, force: true });
});
/** A fresh folder under one temporary root per test file. */
export function tempDir(label: string): string {
  tmpRoot ??= runTempDir('hd-faults-');
  return mkdtempSync(path.join(tmpRoot, `${label}-`));
}

/**
 * Runs a runbook as CI would (stdin closed, `--ci`, a short `--timeout`), with a `--json FILE` report unless
 * `json: false`. HOME and XDG_STATE_HOME point at a temporary folder, so nothing lands in the real home.
 */
export async function run(
  runbook: RunbookName,
  args: readonly string[],
  opts: { env?: Record<string, string | undefined>; json?: boolean; ci?: boolean; hangMs?: number; cwd?: string } = {},
): Promise<Run> {
  const dir = tempDir('run');
  const jsonFile = path.join(dir, 'report.json');
  const full = [
    ...args,
    ...(opts.ci === false ? [] : ['--ci']),
    ...(args.includes('--timeout') ? [] : ['--timeout', RUNBOOK_TIMEOUT_S]),
    ...(opts.json === false || args.includes('--json') ? [] : ['--json', jsonFile]),
  ];
  const startedAt = Date.now();
  const started = performance.now();
  const r = await runRunbook(runbook, full, {
    env: { HOME: dir, XDG_STATE_HOME: path.join(dir, 'state'), ...opts.env },
    timeoutMs: opts.hangMs ?? HANG_MS,
    cwd: opts.cwd,
    // The harness starts runbooks by the hundred: the run's bundle of the same sources starts faster.
    from: 'bundle',
  });
  const ms = performance.now() - started;
  const out: Run = { ...r, ms, startedAt };
  if (existsSync(jsonFile)) out.report = JSON.parse(readFileSync(jsonFile, 'utf8'));
  const ids = out.report?.findings?.filter((f) => f.severity !== 'info').map((f) => f.id) ?? [];
  observe(`exit ${r.code} in ${(ms / 1000).toFixed(1)} s${ids.length ? ` · ${[...new Set(ids)].join(', ')}` : ''}`);
  return out;
}

/** A stack frame as Node prints it. */
const STACK_FRAME = /^ {4}at \S/m;

/**
 * The promise for every failure: the exit code, a line naming what failed (`says`) with a fix (`fix:` or `→`) on
 * it or within the lines that follow, and no stack trace (unless `verbose`). With `finding`, the JSON report holds
 * that finding at warning level or above.
 */
export function expectClear(
  r: Run,
  e: { code: number | readonly number[]; says: RegExp; finding?: string; verbose?: boolean; fix?: boolean },
): void {
  const all = `${r.stdout}\n${r.stderr}`;
  const codes = typeof e.code === 'number' ? [e.code] : e.code;
  const context = `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
  expect(codes, context).toContain(r.code);
  if (!e.verbose) expect(all, `a stack trace without --verbose\n${context}`).not.toMatch(STACK_FRAME);
  const lines = all.split('\n');
  const at = lines.findIndex((l) => e.says.test(l));
  expect(at, `no line matches ${e.says}\n${context}`).toBeGreaterThanOrEqual(0);
  const near = lines.slice(at, at + 10);
  if (e.fix !== false)
    expect(
      near.some((l) => /(?:^|\s)(?:fix:|→)\s+\S.{8,}/.test(l)),
      `no fix after the line ${JSON.stringify(lines[at])}\n${context}`,
    ).toBe(true);
  if (e.finding) {
    const ids = r.report?.findings.filter((f) => f.severity !== 'info').map((f) => f.id) ?? [];
    expect(ids, `finding ${e.finding}\n${context}`).toContain(e.finding);
  }
}

/** Requests the runbook itself made (supabase-js names itself in x-client-info), not the worker's or curl's. */
export function runbookRequests(events: readonly HttpEvent[]): HttpEvent[] {
  return events.filter((e) => (e.client ?? '').startsWith('supabase-js'));
}

/**
 * The runbook's requests in one run: those that reached the sandbox after the run started. The sandbox records a
 * request when it answers it, so a request of an earlier case that a `slow` fault held (and its runbook gave up on)
 * can be recorded during a later case, under load even a minute later; it keeps its own start and is left out here.
 */
export function requestsOfRun(r: Run, events: readonly HttpEvent[]): HttpEvent[] {
  return runbookRequests(events).filter((e) => e.startedAt >= r.startedAt);
}

/** Requests grouped by what they asked (method, path and query): a retry asks the same again. Oldest first. */
export function triesByRequest(events: readonly HttpEvent[]): Map<string, HttpEvent[]> {
  const tries = new Map<string, HttpEvent[]>();
  for (const e of [...events].sort((a, b) => a.startedAt - b.startedAt)) {
    const key = `${e.method} ${e.path}${e.query ?? ''}`;
    tries.set(key, [...(tries.get(key) ?? []), e]);
  }
  return tries;
}

export function runbookWrites(events: readonly HttpEvent[]): HttpEvent[] {
  return runbookRequests(events).filter((e) => e.method !== 'GET' && e.method !== 'HEAD');
}

/** A copy of the sandbox's laptop .env with some values replaced (or removed, with `undefined`). */
export function envVariant(sb: Sandbox, changes: Record<string, string | undefined>): string {
  let text = readFileSync(sb.envFile, 'utf8');
  for (const [k, v] of Object.entries(changes)) {
    const re = new RegExp(`^${k}=.*\\n?`, 'm');
    if (v === undefined) text = text.replace(re, '');
    else if (re.test(text)) text = text.replace(re, () => `${k}=${v}\n`);
    else text = `${text}${text.endsWith('\n') ? '' : '\n'}${k}=${v}\n`;
  }
  const file = path.join(tempDir('env'), '.env');
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

/** Runs `fn` with the sandbox's controls set, and sets them back to normal after, whatever happens. */
export async function withControls<T>(
  sb: Sandbox,
  controls: Record<string, unknown>,
  fn: () => Promise<T>,
): Promise<T> {
  await sb.controls(controls);
  try {
    return await fn();
  } finally {
    await sb.controls({ httpFault: null, sshFault: null, latencyMs: 0 });
  }
}

/** A TCP port on 127.0.0.1 with nothing listening (bound, then closed). */
export async function closedPort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Inserts `n` failed jobs of `jobType` (the worker leaves failed jobs alone); returns their ids, oldest first. */
export async function insertFailed(sb: Sandbox, n: number, jobType: string): Promise<string[]> {
  const rows = await sb.sql<{ id: string }>(
    `insert into public.hd_ingestion_jobs (job_type, status, attempts, error, debug, created_at, started_at, finished_at)
     select $2, 'failed', 1, 'ValueError: Circular reference detected', '{"note":"keep me"}'::jsonb,
            now() - make_interval(secs => 1000 - g), now() - interval '5 min', now() - interval '4 min'
     from generate_series(1, $1::int) g
     returning id`,
    [n, jobType],
  );
  const ids = await sb.sql<{ id: string }>(
    'select id from public.hd_ingestion_jobs where id = any($1::uuid[]) order by created_at, id',
    [rows.map((r) => r.id)],
  );
  return ids.map((r) => r.id);
}

export interface JobRow {
  id: string;
  status: string;
  attempts: number;
  debug: { requeue_history?: Array<{ run_id?: string; op_id?: string }> } | null;
}

export async function jobRows(sb: Sandbox, ids: readonly string[]): Promise<Map<string, JobRow>> {
  const rows = await sb.sql<JobRow>(
    'select id, status, attempts, debug from public.hd_ingestion_jobs where id = any($1::uuid[])',
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r]));
}

/** What a requeue run reported per job, from its JSON report. */
export function requeueResults(r: Run): Array<{ jobId: string; outcome: string; detail?: string }> {
  return (r.report?.results as Array<{ jobId: string; outcome: string; detail?: string }> | undefined) ?? [];
}

/** Runs a runbook under `script` (a real pseudo-terminal), answering prompts as they appear. */
export function inPty(
  runbook: RunbookName,
  args: string[],
  answers: Array<{ when: RegExp; send: string }>,
  env: Record<string, string>,
): Promise<{ code: number | null; screen: string; unanswered: number }> {
  return new Promise((resolve, reject) => {
    const argv = [process.execPath, '--import', 'tsx', path.join(ROOT, 'runbooks', `${runbook}.mts`), ...args];
    const cmd = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const child = spawn('script', ['-q', '-e', '-c', cmd, '/dev/null'], {
      cwd: ROOT,
      env: cleanEnv({ TERM: 'xterm', ...env }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let screen = '';
    const pending = [...answers];
    const onData = (d: Buffer) => {
      screen += d.toString();
      const next = pending[0];
      if (next?.when.test(screen)) {
        pending.shift();
        setTimeout(() => child.stdin.write(next.send), 300);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pty run did not finish:\n${screen}`));
    }, 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, screen, unanswered: pending.length });
    });
  });
}
