/**
 * The runbooks under an API that cuts every answer at 100 rows (Supabase's db-max-rows, lowered as a project may):
 * a requeue of 250 jobs writes, reports and audits all 250, through hd_requeue_jobs and job by job, and the regex
 * scan finds every match. One sandbox started with `--max-rows 100` for the file; the queue's indexes
 * (sandbox/migrations/004_queue_read_indexes.sql) are there.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuditJobLine, parseAuditText } from '../../lib/actions/requeue/audit.ts';
import { EXIT } from '../../lib/core/exit-codes.ts';
import { createJobsDb } from '../../lib/io/jobs-db.ts';
import { tempDir } from '../helpers/run.ts';
import { type RunResult, runRunbook, type Sandbox, startSandbox } from '../helpers/sandbox.ts';

const MAX_ROWS = 100;

interface RequeueJson {
  exitCode: number;
  plan: { writes: Array<{ jobId: string }>; more: { total?: number } | null } | null;
  results: Array<{ jobId: string; outcome: string; detail?: string }>;
  writePath: string | null;
}

let sb: Sandbox;
let tmp: string;

beforeAll(async () => {
  // `maxRows` is startSandbox's option for `npm run sandbox -- up --max-rows N` (test/helpers/sandbox.ts).
  const limits = { scenario: 'healthy', maxRows: MAX_ROWS };
  sb = await startSandbox(limits);
  tmp = tempDir('hd-max-rows-');
  await sb.worker('stop');
});

afterAll(async () => {
  await sb?.down();
});

function json(r: RunResult): RequeueJson {
  try {
    return JSON.parse(r.stdout) as RequeueJson;
  } catch {
    throw new Error(`not JSON on stdout (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

let audits = 0;
function auditFile(): string {
  return path.join(tmp, `audit-${++audits}.jsonl`);
}

function auditJobLines(file: string): AuditJobLine[] {
  const lines = parseAuditText(existsSync(file) ? readFileSync(file, 'utf8') : undefined);
  return lines.filter((l): l is AuditJobLine => l.outcome !== 'intent');
}

/** Inserts `n` failed jobs of `jobType`, the error of each from `error(i)`; returns their ids. */
async function insertFailed(n: number, jobType: string, error: (i: number) => string): Promise<string[]> {
  const errors = Array.from({ length: n }, (_, i) => error(i));
  const rows = await sb.sql<{ id: string }>(
    `insert into public.hd_ingestion_jobs (job_type, status, attempts, error, debug, created_at, started_at, finished_at)
     select $1, 'failed', 1, e, '{"note":"keep me"}'::jsonb, now() - make_interval(secs => 1000 - g),
            now() - interval '5 min', now() - interval '4 min'
     from unnest($2::text[]) with ordinality as t(e, g)
     returning id`,
    [jobType, errors],
  );
  return rows.map((r) => r.id);
}

function requeue(args: string[]): Promise<RunResult> {
  return runRunbook(
    'requeue',
    ['--env-file', sb.envFile, '--by', 'tester@example.com', '--skip-fix-gate', 'max-rows test', ...args],
    { env: { XDG_STATE_HOME: path.join(tmp, 'state') }, timeoutMs: 60_000 },
  );
}

describe(`an API with max-rows ${MAX_ROWS}`, () => {
  it(`cuts a read at ${MAX_ROWS} rows, and the queue's indexes of 004 are there`, async () => {
    const db = createJobsDb({
      url: sb.info.cloud.url,
      key: sb.info.cloud.serviceRoleKey,
      timeoutMs: 10_000,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      now: () => performance.now(),
    });
    await insertFailed(150, 'max_rows_probe', () => 'probe');
    const r = await db.findJobs({ jobType: 'max_rows_probe', limit: 150 });
    expect(r.ok && r.value.jobs.length).toBe(MAX_ROWS);
    const indexes = await sb.sql<{ indexname: string }>(
      "select indexname from pg_indexes where tablename = 'hd_ingestion_jobs' and indexname like 'hd_ingestion_jobs_%'",
    );
    expect(indexes.map((i) => i.indexname)).toEqual(
      expect.arrayContaining([
        'hd_ingestion_jobs_status_finished_at',
        'hd_ingestion_jobs_status_created_at_id',
        'hd_ingestion_jobs_waiting_created_at',
        'hd_ingestion_jobs_running_started_at',
      ]),
    );
  });

  it.each([
    ['hd_requeue_jobs', 'only', 'server-side hd_requeue_jobs'],
    ['one compare-and-set per job', 'off', 'one compare-and-set per job'],
  ])('a requeue of 250 jobs via %s writes all 250, reports 250, and the audit says 250', async (_n, rpc, path_) => {
    const jobType = `max_rows_${rpc}`;
    const ids = await insertFailed(250, jobType, (i) => `OSError: [Errno 28] No space left on device (${i})`);
    const audit = auditFile();
    const r = await requeue([
      '--job-type',
      jobType,
      '--reason',
      'disk cleaned',
      '--rpc',
      rpc,
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
    expect(report.writePath).toContain(path_);
    expect(report.plan?.writes).toHaveLength(250);
    expect(report.results.filter((x) => x.outcome === 'requeued')).toHaveLength(250);
    expect(report.results.filter((x) => x.outcome !== 'requeued')).toEqual([]);
    const lines = auditJobLines(audit);
    expect(lines.map((l) => l.outcome)).toEqual(Array(250).fill('requeued'));
    expect(new Set(lines.map((l) => l.job_id))).toEqual(new Set(ids));
    const rows = await sb.sql<{ status: string; history: number }>(
      `select status, jsonb_array_length(debug->'requeue_history') as history from public.hd_ingestion_jobs
       where id = any($1::uuid[])`,
      [ids],
    );
    expect(rows).toHaveLength(250);
    expect(rows.every((x) => x.status === 'queued' && x.history === 1)).toBe(true);
  });

  it('the regex scan finds every match among pages cut at 100 rows', async () => {
    const jobType = 'max_rows_regex';
    const ids = await insertFailed(600, jobType, (i) =>
      i % 3 === 0 ? `ValueError: Circular reference detected (${i})` : `KeyError: width (${i})`,
    );
    const r = await requeue(['--job-type', jobType, '--error', '/circular reference/i', '--ci', '--json', '-']);
    const report = json(r);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    const matching = ids.filter((_, i) => i % 3 === 0);
    expect(new Set(report.plan?.writes.map((w) => w.jobId))).toEqual(new Set(matching));
    expect(report.plan?.more ?? null).toBeNull();
  });
});
