/**
 * `npm run sandbox -- seed` against a real sandbox, at a small N: the counts by status follow the percentages, the
 * times fall in their windows, the table is analysed, and the runbooks read the seeded jobs as they read real ones
 * (the queue's counts, the failures named by the catalog, a requeue preview of the circular ones).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sandboxSeed, TSX } from '../../sandbox/client.ts';
import { sandboxPaths } from '../../sandbox/layout.ts';
import { seedJobs } from '../../sandbox/seed.ts';
import { tempDir } from '../helpers/run.ts';
import { cleanEnv, ROOT, runRunbook, type Sandbox, startSandbox } from '../helpers/sandbox.ts';

const run = promisify(execFile);

let sb: Sandbox;
const progress: string[] = [];
let summary = '';

async function counts(): Promise<Record<string, number>> {
  const rows = await sb.sql<{ status: string; n: number }>(
    'select status, count(*)::int as n from public.hd_ingestion_jobs group by status',
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

beforeAll(async () => {
  sb = await startSandbox();
  // The worker would claim the queued jobs as they arrive; without it the counts hold still.
  await sb.worker('stop');
  await sb.sql('truncate public.hd_assets, public.hd_ingestion_jobs');
  summary = await sandboxSeed(sb.dir, { jobs: 5_000 }, cleanEnv(), (l) => progress.push(l));
});

afterAll(async () => {
  await sb?.down();
});

describe('seed --jobs 5000 (defaults)', () => {
  it('makes 1% failed, 0.1% queued, 3 running and the rest done, and says so', async () => {
    expect(await counts()).toEqual({ done: 4_942, failed: 50, queued: 5, running: 3 });
    expect(summary).toMatch(/^seeded 5,000 jobs \(4,942 done, 50 failed, 5 queued, 3 running\) in [\d.]+ s/);
    expect(progress.filter((l) => /^seed: 5,000 \/ 5,000 jobs \(100%\), \d+ s, [\d,]+ jobs\/s$/.test(l))).toHaveLength(
      1,
    );
    expect(progress).toContain('seed: analyze public.hd_ingestion_jobs');
  });

  it('puts every time in its window, in order: created, started, finished', async () => {
    const [r] = await sb.sql<Record<string, number>>(
      `select
         count(*) filter (where status = 'done' and created_at < now() - interval '90 days 1 minute') as done_too_old,
         count(*) filter (where status = 'failed' and finished_at < now() - interval '24 hours') as failed_too_old,
         count(*) filter (where status = 'queued' and created_at < now() - interval '2 hours 1 minute') as queued_too_old,
         count(*) filter (where status = 'running' and started_at < now() - interval '10 minutes') as running_too_old,
         count(*) filter (where greatest(created_at, started_at, finished_at) > now()) as in_the_future,
         count(*) filter (where started_at < created_at or finished_at < started_at) as out_of_order,
         count(*) filter (where (status in ('done', 'failed')) <> (finished_at is not null)) as finish_wrong,
         count(*) filter (where (status = 'queued') <> (started_at is null)) as start_wrong,
         count(*) filter (where status = 'done' and created_at < now() - interval '60 days') as done_older_than_60_days
       from public.hd_ingestion_jobs`,
    );
    expect(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v)]))).toMatchObject({
      done_too_old: 0,
      failed_too_old: 0,
      queued_too_old: 0,
      running_too_old: 0,
      in_the_future: 0,
      out_of_order: 0,
      finish_wrong: 0,
      start_wrong: 0,
    });
    // Spread over the 90 days, not bunched at one end.
    expect(Number(r.done_older_than_60_days)).toBeGreaterThan(1_000);
  });

  it('analyses the table (planned and estimated counts read its statistics)', async () => {
    const [r] = await sb.sql<{ analyzed: boolean; reltuples: number }>(
      `select s.last_analyze is not null as analyzed, c.reltuples
         from pg_stat_user_tables s join pg_class c on c.oid = s.relid
        where s.relname = 'hd_ingestion_jobs'`,
    );
    expect(r.analyzed).toBe(true);
    expect(Number(r.reltuples)).toBe(5_000);
  });

  it('is read by debug-stuck-jobs as a queue: its counts, the failures named by the catalog', async () => {
    const r = await runRunbook('debug-stuck-jobs', ['--env-file', sb.envFile, '--ci', '--json', '-']);
    const report = JSON.parse(r.stdout) as {
      checks: Array<{ id: string; status: string; summary: string }>;
      findings: Array<{ id: string }>;
    };
    expect(r.code).toBe(1);
    const summary = report.checks.find((c) => c.id === 'queue')?.summary ?? '';
    // Done jobs are past max-rows (1,000): the count is the planner's estimate, which ANALYZE made close.
    const done = /^5 queued\/pending \(oldest [^)]+\), 3 running, 50 failed in 24 h, about ([\d,]+) done/.exec(summary);
    expect(done, summary).not.toBeNull();
    expect(Math.abs(Number(done![1].replace(/,/g, '')) - 4942)).toBeLessThan(4942 * 0.1);
    expect(report.findings.map((f) => f.id)).toContain('circular-metadata');
  });

  it('gives requeue the circular-reference failures to preview (60% of the failed)', async () => {
    const circular = await sb.sql<{ id: string }>(
      "select id from public.hd_ingestion_jobs where status = 'failed' and error = 'ValueError: Circular reference detected'",
    );
    const r = await runRunbook('requeue', [
      ...['--status', 'failed', '--error', 'Circular reference', '--limit', '1000'],
      ...['--env-file', sb.envFile, '--ci', '--json', '-'],
    ]);
    const report = JSON.parse(r.stdout) as { plan: { writes: Array<{ jobId: string }> } | null };
    expect(r.code).toBe(0);
    expect(report.plan?.writes.map((w) => w.jobId).sort()).toEqual(circular.map((j) => j.id).sort());
    expect(circular).toHaveLength(30);
  });
});

describe('seed flags', () => {
  it('adds to what is there, with --failed and --queued as asked', async () => {
    const before = await counts();
    await sandboxSeed(sb.dir, { jobs: 1_000, failedPercent: 10, queuedPercent: 5 }, cleanEnv());
    const after = await counts();
    expect({
      done: after.done - before.done,
      failed: after.failed - before.failed,
      queued: after.queued - before.queued,
      running: after.running - before.running,
    }).toEqual({ done: 847, failed: 100, queued: 50, running: 3 });
  });

  it('with the indexes dropped during the load, builds the same ones again', async () => {
    const indexes = () =>
      sb.sql<{ def: string }>(
        "select indexdef as def from pg_indexes where schemaname = 'public' and tablename = 'hd_ingestion_jobs' order by 1",
      );
    const before = await indexes();
    const password = readFileSync(path.join(sandboxPaths(sb.dir).pgData, 'admin-password'), 'utf8').trim();
    const url = `postgres://postgres:${password}@127.0.0.1:${sb.info.postgres.port}/cloud`;
    const lines: string[] = [];
    const r = await seedJobs(url, { jobs: 2_000, rebuildIndexes: true }, (l) => lines.push(l));
    expect(r.counts).toEqual({ done: 1_975, failed: 20, queued: 2, running: 3 });
    expect(await indexes()).toEqual(before);
    expect(before.length).toBeGreaterThanOrEqual(3);
    // The primary key is a constraint's (hd_assets refers to it): it stays; the others are rebuilt.
    expect(lines.filter((l) => l.startsWith('seed: building index '))).toHaveLength(before.length - 1);
  });

  it.each([
    [['--jobs', 'many'], 'seed needs --jobs N, a whole number'],
    [['--jobs', '10', '--failed', '150'], '--failed takes a percentage from 0 to 100'],
    [['--jobs', '10', '--failed', '60', '--queued', '50'], '--failed and --queued add up to more than 100%'],
  ])('refuses %j with one line and exit 2', async (args, message) => {
    const err = await run(
      process.execPath,
      ['--import', TSX, path.join(ROOT, 'sandbox/cli.mts'), 'seed', '--dir', sb.dir, ...args],
      {
        cwd: ROOT,
        env: cleanEnv(),
      },
    ).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr).toMatch(/^sandbox: /);
    expect(err?.stderr.trim().split('\n')).toHaveLength(1);
    expect(err?.stderr).toContain(message);
  });

  it('names the command to start a sandbox when none runs in the folder', async () => {
    const dir = tempDir('hd-seed-none-');
    const err = await run(
      process.execPath,
      ['--import', TSX, path.join(ROOT, 'sandbox/cli.mts'), 'seed', '--dir', dir, '--jobs', '10'],
      {
        cwd: ROOT,
        env: cleanEnv(),
      },
    ).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr).toContain(`the sandbox in ${dir} is not running: start it with`);
  });
});
