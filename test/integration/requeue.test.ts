/**
 * The requeue runbook against the real sandbox: child processes as CI runs them (stdin closed, JSON read back),
 * and, for the race between preview and apply, the flow in-process with a real db port and a scripted prompt that
 * lets the "worker" claim a job while the operator reads the preview. One sandbox for the file; with
 * HD_TEST_SUPABASE_URL, the tests that need no sandbox switch run against that Supabase instead (test/helpers/
 * external.ts): every job they plant carries the file's account_id, and every filtered run is scoped to it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'vitest';
import { beforeAll, describe, expect, it } from 'vitest';
import { type AuditJobLine, type AuditLine, parseAuditText, pendingIntents } from '../../lib/actions/requeue/audit.ts';
import { EXIT } from '../../lib/core/exit-codes.ts';
import { DEFAULT_RULES } from '../../lib/core/stuck-rules.ts';
import { executeRequeue } from '../../lib/flows/requeue.ts';
import { parseRequeueOptions } from '../../lib/flows/requeue-usage.ts';
import type { Ports } from '../../lib/io/context.ts';
import { realClock, realFiles } from '../../lib/io/context.ts';
import { createJobsDb } from '../../lib/io/jobs-db.ts';
import { createOutput } from '../../lib/io/output.ts';
import type { Prompter } from '../../lib/io/prompt.ts';
import { needsSandbox, type SupabaseUnderTest, supabaseUnderTest } from '../helpers/external.ts';
import { tempDir } from '../helpers/run.ts';
import { cleanEnv, ROOT, type RunResult, runRunbook, type Sandbox } from '../helpers/sandbox.ts';

interface RequeueJson {
  runbook: string;
  verdict: string;
  exitCode: number;
  findings: Array<{ id: string }>;
  plan: {
    writes: Array<{ jobId: string }>;
    excluded: Array<{ jobId: string; reason: string }>;
    project: { ref?: string; credentials: string };
  } | null;
  results: Array<{ jobId: string; outcome: string; detail?: string }>;
  receipt: {
    ended: string;
    counts: { pickedUp: number; done: number; failedAgain: number; stillQueued: number };
  } | null;
  canary: { ids: string[]; verdict: { verdict: string }; heldBack: number } | null;
  audit: { file: string; linesAppended: number; settled: { requeued: number; notWritten: number } | null };
  writePath: string | null;
}

interface JobRow {
  id: string;
  status: string;
  attempts: number;
  error: string | null;
  debug: { requeue_history?: Array<Record<string, unknown>>; [k: string]: unknown };
}

let target: SupabaseUnderTest;
let tmp: string;

beforeAll(async () => {
  target = await supabaseUnderTest();
  tmp = tempDir('hd-requeue-');
});

/** The sandbox, for a test that uses its switches (skipped, saying so, in HD_TEST_SUPABASE_URL mode). */
function sandbox(ctx: TestContext, reason: string): Sandbox {
  needsSandbox(ctx, reason);
  return target.sandbox!;
}

/** A sandbox's healthy scenario with its worker stopped (nothing picks the jobs up); elsewhere nothing to do. */
async function quietQueue(): Promise<void> {
  if (!target.sandbox) return;
  await target.sandbox.scenario('healthy');
  await target.sandbox.worker('stop');
}

/** Filters a run to the jobs this file planted. */
const own = (): string[] => ['--account', target.accountId];

function json(r: RunResult): RequeueJson {
  try {
    return JSON.parse(r.stdout) as RequeueJson;
  } catch {
    throw new Error(`not JSON on stdout (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

let auditCounter = 0;
function auditFile(): string {
  return path.join(tmp, `audit-${++auditCounter}.jsonl`);
}

function auditLines(file: string): AuditLine[] {
  return parseAuditText(existsSync(file) ? readFileSync(file, 'utf8') : undefined);
}

function requeuedLines(file: string): AuditJobLine[] {
  return auditLines(file).filter((l): l is AuditJobLine => l.outcome === 'requeued');
}

function requeue(args: string[], timeoutMs = 30_000): Promise<RunResult> {
  return runRunbook('requeue', ['--env-file', target.envFile, '--by', 'tester@example.com', ...args], {
    env: { XDG_STATE_HOME: path.join(tmp, 'state') },
    timeoutMs,
  });
}

/** Inserts `n` failed jobs of `jobType` (this file's account); returns their ids in created_at order. */
async function insertFailed(
  n: number,
  jobType: string,
  error: string,
  debug: object = { note: 'keep me' },
): Promise<string[]> {
  const rows = await target.sql<{ id: string }>(
    `insert into public.hd_ingestion_jobs (account_id, job_type, status, attempts, error, debug, created_at, started_at, finished_at)
     select $5, $2, 'failed', 1, $3, $4::jsonb, now() - make_interval(secs => 1000 - g), now() - interval '5 min', now() - interval '4 min'
     from generate_series(1, $1::int) g
     returning id`,
    [n, jobType, error, JSON.stringify(debug), target.accountId],
  );
  const ids = await target.sql<{ id: string }>(
    'select id from public.hd_ingestion_jobs where id = any($1::uuid[]) order by created_at, id',
    [rows.map((r) => r.id)],
  );
  return ids.map((r) => r.id);
}

async function jobs(ids: string[]): Promise<Map<string, JobRow>> {
  const rows = await target.sql<JobRow>(
    'select id, status, attempts, error, debug from public.hd_ingestion_jobs where id = any($1::uuid[])',
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r]));
}

async function untouched(jobType: string): Promise<{ failed: number; withHistory: number }> {
  const [r] = await target.sql<{ failed: number; with_history: number }>(
    `select count(*) filter (where status = 'failed')::int as failed,
            count(*) filter (where debug ? 'requeue_history')::int as with_history
     from public.hd_ingestion_jobs where job_type = $1 and (account_id = $2 or $3)`,
    // The sandbox's scenarios plant jobs of no account; a sandbox-only test counts those too.
    [jobType, target.accountId, !target.external],
  );
  return { failed: r.failed, withHistory: r.with_history };
}

describe('requeue against the sandbox', () => {
  it('requeues one job by id: the history keeps the old error and the rest of debug, the audit matches, the worker finishes it', async (ctx) => {
    const sb = sandbox(ctx, 'its scenarios and its worker (worker fix, --verify)');
    await sb.scenario('circular-metadata');
    const [failed] = await sb.sql<{ id: string; error: string }>(
      "select id, error from public.hd_ingestion_jobs where status = 'failed' order by created_at limit 1",
    );
    await sb.sql(`update public.hd_ingestion_jobs set debug = debug || '{"note":"keep me"}'::jsonb where id = $1`, [
      failed.id,
    ]);
    await sb.worker('fix');
    const audit = auditFile();
    const r = await requeue([
      '--id',
      failed.id,
      '--apply',
      '--yes',
      '--ci',
      '--rpc',
      'off',
      '--verify',
      '20',
      '--audit',
      audit,
      '--json',
      '-',
    ]);
    const report = json(r);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(report.results).toEqual([expect.objectContaining({ jobId: failed.id, outcome: 'requeued' })]);
    expect(report.receipt).toMatchObject({ ended: 'settled', counts: { pickedUp: 1, done: 1, failedAgain: 0 } });
    expect(report.writePath).toContain('--rpc off');
    expect(report.plan?.project.credentials).toContain(`SUPABASE_URL in ${sb.envFile}`);
    expect(r.stderr).toContain(`project ${sb.info.cloud.ref} at 127.0.0.1:`);

    const row = (await jobs([failed.id])).get(failed.id)!;
    expect(row.status).toBe('done');
    expect(row.debug.note).toBe('keep me');
    expect(row.debug.requeue_history).toEqual([
      expect.objectContaining({
        by: 'tester@example.com',
        from_status: 'failed',
        from_error: failed.error,
        from_attempts: 1,
        run_id: expect.any(String),
      }),
    ]);
    const lines = requeuedLines(audit);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      job_id: failed.id,
      by: 'tester@example.com',
      before: { status: 'failed', error: failed.error },
      after: { status: 'queued', error: null, started_at: null, finished_at: null },
      project: { origin: sb.info.cloud.url, ref: sb.info.cloud.ref },
    });
    expect(lines[0].run_id).toBe(row.debug.requeue_history?.[0].run_id);
    expect(readFileSync(audit, 'utf8')).not.toContain(sb.info.cloud.serviceRoleKey);
  });

  it('requeues a filtered set through the server function and leaves the rest alone', async () => {
    await quietQueue();
    const disk = await insertFailed(40, 'filter_test', 'OSError: [Errno 28] No space left on device');
    const other = await insertFailed(10, 'filter_test', 'KeyError: width');
    const audit = auditFile();
    const r = await requeue([
      ...own(),
      '--job-type',
      'filter_test',
      '--error',
      '/no space left/i',
      '--reason',
      'disk cleaned',
      '--apply',
      '--yes',
      '--ci',
      '--audit',
      audit,
      '--json',
      '-',
    ]);
    const report = json(r);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(report.writePath).toContain('server-side hd_requeue_jobs');
    expect(report.results.filter((x) => x.outcome === 'requeued')).toHaveLength(40);
    const after = await jobs([...disk, ...other]);
    expect(disk.every((id) => after.get(id)!.status === 'queued')).toBe(true);
    expect(other.every((id) => after.get(id)!.status === 'failed' && !after.get(id)!.debug.requeue_history)).toBe(true);
    const h = after.get(disk[0])!.debug;
    expect(h.note).toBe('keep me');
    expect(h.requeue_history).toEqual([
      expect.objectContaining({
        reason: 'disk cleaned',
        from_error: 'OSError: [Errno 28] No space left on device',
        from_status: 'failed',
      }),
    ]);
    expect(
      requeuedLines(audit)
        .map((l) => l.job_id)
        .sort(),
    ).toEqual([...disk].sort());
  });

  it('--ci without --apply --yes writes nothing (preview exits 0, --apply alone exits 2)', async () => {
    await quietQueue();
    await insertFailed(3, 'ci_test', 'boom');
    const audit = auditFile();
    const preview = await requeue([...own(), '--job-type', 'ci_test', '--ci', '--audit', audit, '--json', '-']);
    expect(preview.code, preview.stderr).toBe(EXIT.ok);
    expect(json(preview).verdict).toBe('dry run: 3 jobs would be requeued; nothing written');
    const noYes = await requeue([
      ...own(),
      '--job-type',
      'ci_test',
      '--ci',
      '--apply',
      '--reason',
      'x',
      '--audit',
      audit,
      '--json',
      '-',
    ]);
    expect(noYes.code).toBe(EXIT.couldNotRun);
    expect(noYes.stderr).toContain('error: this run is non-interactive');
    expect(json(noYes).results).toEqual([]);
    expect(await untouched('ci_test')).toEqual({ failed: 3, withHistory: 0 });
    expect(existsSync(audit)).toBe(false);
  });

  it('rejects bad input with exit 2 and one clear line, writing nothing', async () => {
    await quietQueue();
    await insertFailed(2, 'bad_input', 'boom');
    const cases: Array<[string[], string]> = [
      [['--id', '1&status=eq.done'], '--id "1&status=eq.done" is not a job id'],
      [['--id', ''], '--id is empty'],
      [['--job-type', 'bad_input', '--error', '/(unclosed/'], 'is not a valid regex'],
      [['--job-type', 'bad_input', '--limit=-5'], '--limit must be a whole number from 1 to 10000'],
      [['--job-type', 'bad_input', '--limit', '99999999'], '--limit must be a whole number from 1 to 10000'],
      [['--job-type', 'bad_input', '--status', 'stuck'], '--status "stuck" is not a job status'],
      [['--job-type', 'bad_input', '--older-than', 'yesterday'], '--older-than "yesterday"'],
    ];
    const results = await Promise.all(
      cases.map(([args]) => requeue([...args, '--reason', 'x', '--apply', '--yes', '--ci'])),
    );
    results.forEach((r, i) => {
      const [args, text] = cases[i];
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(EXIT.couldNotRun);
      const first = r.stderr.split('\n')[0];
      expect(first).toMatch(/^error: /);
      expect(first).toContain(text);
      expect(r.stderr).toContain('  fix: ');
    });
    expect(await untouched('bad_input')).toEqual({ failed: 2, withHistory: 0 });
  });

  it('killed midway and run again, requeues every job exactly once and the audit file matches the database', async (ctx) => {
    const sb = sandbox(ctx, 'its latency switch, so that the kill lands mid-run');
    await quietQueue();
    const ids = await insertFailed(300, 'kill_test', 'RuntimeError: bulk');
    const audit = auditFile();
    const args = [
      '--job-type',
      'kill_test',
      '--reason',
      'bulk requeue',
      '--apply',
      '--yes',
      '--ci',
      '--rpc',
      'off',
      '--concurrency',
      '4',
      '--limit',
      '1000',
      '--audit',
      audit,
    ];
    await sb.controls({ latencyMs: 15 });
    let child: ChildProcess | undefined;
    try {
      child = spawn(
        process.execPath,
        [
          '--import',
          import.meta.resolve('tsx'),
          path.join(ROOT, 'runbooks', 'requeue.mts'),
          '--env-file',
          sb.envFile,
          '--by',
          'tester@example.com',
          ...args,
        ],
        { cwd: ROOT, env: cleanEnv(), stdio: 'ignore' },
      );
      const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
      // Kill it once a fair share is written, however fast or slow this machine is.
      for (;;) {
        const n = requeuedLines(audit).length;
        if (n >= 40) break;
        if (child.exitCode !== null)
          throw new Error(`the first run ended before it could be killed (exit ${child.exitCode})`);
        await new Promise((r) => setTimeout(r, 10));
      }
      child.kill('SIGKILL');
      await exited;
    } finally {
      await sb.controls({ latencyMs: 0 });
    }
    const firstRun = requeuedLines(audit).length;
    // A count, not a time: the kill came mid-run (else the rerun below would have nothing to resume). It is sent in
    // the same step as the read that saw 40 lines, and the 260 writes left need over a second (15 ms of latency
    // each, four at a time) however fast the machine, so load cannot make it miss.
    expect(firstRun).toBeLessThan(300);

    const again = await requeue([...args, '--json', '-']);
    expect(again.code, again.stderr).toBe(EXIT.ok);
    const report = json(again);
    expect(report.results.filter((r) => r.outcome === 'requeued').length + (report.audit.settled?.requeued ?? 0)).toBe(
      300 - firstRun,
    );

    const rows = await jobs(ids);
    for (const id of ids) {
      expect(rows.get(id)!.status, id).toBe('queued');
      expect(rows.get(id)!.debug.requeue_history, id).toHaveLength(1);
    }
    const lines = requeuedLines(audit);
    expect(lines.map((l) => l.job_id).sort()).toEqual([...ids].sort());
    for (const l of lines) expect(l.run_id).toBe(rows.get(l.job_id)!.debug.requeue_history?.[0].run_id);
    expect(pendingIntents(auditLines(audit))).toEqual([]);

    const third = await requeue([...args, '--json', '-']);
    expect(json(third).verdict).toContain('nothing to do');
    expect(requeuedLines(audit)).toHaveLength(300);
  });

  it('a canary that fails again holds the rest back; after the fix the same command retries it, releases the rest and verifies', async (ctx) => {
    const sb = sandbox(ctx, 'its scenarios and its worker (the canary must fail, then pass after worker fix)');
    await sb.scenario('circular-metadata');
    // Three more jobs that fail the same way (same payload) while the worker is broken.
    await sb.sql(
      `insert into public.hd_ingestion_jobs (account_id, job_type, status, attempts, error, payload, created_at, started_at, finished_at)
       select account_id, job_type, 'failed', 1, error, payload, created_at - make_interval(secs => g), started_at, finished_at
       from public.hd_ingestion_jobs, generate_series(1, 3) g
       where id = (select id from public.hd_ingestion_jobs where status = 'failed' order by created_at limit 1)`,
    );
    const audit = auditFile();
    const args = [
      '--job-type',
      'import_assets_jsonl',
      '--reason',
      'canary drill',
      '--canary',
      '1',
      '--canary-timeout',
      '20',
      '--apply',
      '--yes',
      '--ci',
      '--audit',
      audit,
      '--json',
      '-',
    ];
    const first = await requeue(args);
    const r1 = json(first);
    expect(first.code, first.stderr).toBe(EXIT.findings);
    expect(r1.canary).toMatchObject({ verdict: { verdict: 'fail' }, heldBack: 4 });
    expect(r1.findings.map((f) => f.id)).toContain('canary-failed');
    expect(await untouched('import_assets_jsonl')).toEqual({ failed: 5, withHistory: 1 });

    await sb.worker('fix');
    const second = await requeue([...args, '--verify', '20']);
    const r2 = json(second);
    expect(second.code, second.stderr).toBe(EXIT.ok);
    // The canary job failed again after the first run requeued it: the same command retries it too, now.
    expect(r2.plan?.excluded).toEqual([]);
    expect(second.stderr + second.stdout).toContain('requeued before, and failed again since');
    expect(r2.canary).toMatchObject({ verdict: { verdict: 'pass' }, heldBack: 0 });
    expect(r2.receipt).toMatchObject({ ended: 'settled', counts: { done: 5, failedAgain: 0 } });
    expect(await untouched('import_assets_jsonl')).toEqual({ failed: 0, withHistory: 5 });
  });

  it('writes the receipt into the JSON and the markdown report', async (ctx) => {
    const sb = sandbox(ctx, 'its worker (--verify waits until the jobs are done)');
    await sb.scenario('healthy');
    const ids = await insertFailed(3, 'thumbnail', 'OSError: transient');
    const md = path.join(tmp, 'report.md');
    const file = path.join(tmp, 'report.json');
    const r = await requeue([
      '--job-type',
      'thumbnail',
      '--reason',
      'transient',
      '--apply',
      '--yes',
      '--ci',
      '--verify',
      '20',
      '--audit',
      auditFile(),
      '--json',
      file,
      '--markdown',
      md,
    ]);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    const report = JSON.parse(readFileSync(file, 'utf8')) as RequeueJson;
    expect(report.receipt).toMatchObject({ ended: 'settled', counts: { done: 3 } });
    expect(report.results.map((x) => x.jobId).sort()).toEqual([...ids].sort());
    const text = readFileSync(md, 'utf8');
    expect(text).toContain('# requeue: requeued 3 of 3 jobs');
    expect(text).toContain('verify: all settled');
    expect(text).not.toContain(sb.info.cloud.serviceRoleKey);
  });
});

describe('requeue in-process with the real db port', () => {
  /** Scripted answers; an answer may act (here: play the worker) before it returns. */
  function prompter(answers: Record<string, () => Promise<boolean | string>>): Prompter {
    const ask = async (name: string) => {
      const a = answers[name];
      if (!a) throw new Error(`unexpected prompt ${name}`);
      return a();
    };
    return {
      interactive: true,
      confirm: async (name) => (await ask(name)) as boolean,
      text: async (name) => (await ask(name)) as string,
      select: async (name) => {
        throw new Error(`unexpected select ${name}`);
      },
    };
  }

  for (const rpc of ['off', 'auto'] as const) {
    it(`skips and reports a job the worker claims between preview and apply (--rpc ${rpc})`, async () => {
      await quietQueue();
      const ids = await insertFailed(3, 'race_test', 'boom');
      const printed: string[] = [];
      const db = createJobsDb({
        url: target.url,
        key: target.serviceRoleKey,
        timeoutMs: 10_000,
        sleep: realClock.sleep,
        now: () => performance.now(),
      });
      const ports: Ports = {
        out: createOutput({ write: (t) => printed.push(t), color: false, spinner: false, verbose: false }),
        prompt: prompter({
          'confirm-apply': async () => {
            // The worker's claim, as worker.mjs does it: running, attempts + 1, started_at now.
            await target.sql(
              "update public.hd_ingestion_jobs set status = 'running', attempts = attempts + 1, started_at = now(), finished_at = null where id = $1",
              [ids[1]],
            );
            return true;
          },
        }),
        clock: realClock,
        files: realFiles,
        env: {},
        cwd: tmp,
        homeDir: tmp,
        stdout: () => {},
        openDb: () => db,
        openCatalog: () => {
          throw new Error('not used');
        },
        preconnectSpark: () => {},
        connectSpark: async () => {
          throw new Error('not used');
        },
        operator: () => 'tester@example.com',
        timeoutMs: 10_000,
      };
      const audit = auditFile();
      const options = parseRequeueOptions(
        { 'job-type': 'race_test', account: target.accountId, reason: 'race', apply: true, audit, rpc, verify: '0' },
        new Date(),
        true,
      );
      const outcome = await executeRequeue(
        ports,
        {
          db,
          project: {
            origin: target.url,
            host: new URL(target.url).host,
            ref: target.ref,
            credentials: 'test',
            key: 'service_role JWT',
            privileged: true,
          },
          rules: DEFAULT_RULES,
          evidence: {
            now: new Date(),
            rules: DEFAULT_RULES,
            laptop: { source: 'test', urlVar: 'SUPABASE_URL', issues: [] },
          },
          values: {},
        },
        options,
      );
      expect(outcome.exitCode).toBe(EXIT.findings);
      const skipped = outcome.results.find((r) => r.jobId === ids[1])!;
      expect(skipped.outcome).toBe('skipped');
      expect(skipped.detail).toContain('status failed → running');
      expect(outcome.findings.map((f) => f.id)).toContain('requeue-skipped');
      const rows = await jobs(ids);
      expect(rows.get(ids[1])).toMatchObject({ status: 'running', attempts: 2, error: 'boom' });
      expect(rows.get(ids[1])!.debug.requeue_history).toBeUndefined();
      expect([ids[0], ids[2]].every((id) => rows.get(id)!.status === 'queued')).toBe(true);
      expect(
        auditLines(audit)
          .filter((l) => l.outcome === 'skipped')
          .map((l) => (l as AuditJobLine).job_id),
      ).toEqual([ids[1]]);
      expect(printed.join('')).toContain('changed after the preview');
    });
  }
});
