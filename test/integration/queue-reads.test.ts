/**
 * The runbooks' queue reads (the db port of lib/io/jobs-db.ts: the diagnosis's snapshot, the requeue's selection,
 * the watch's refresh) against a real table behind a real API: what they answer is what SQL says of the same
 * table. A sandbox normally; with HD_TEST_SUPABASE_URL, that Supabase (test/helpers/external.ts), where the table may
 * hold other rows: every comparison is with SQL over the same rows, and only this file's rows are planted.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { realClock } from '../../lib/io/context.ts';
import { createJobsDb, type JobsDb } from '../../lib/io/jobs-db.ts';
import { type SupabaseUnderTest, supabaseUnderTest } from '../helpers/external.ts';

let target: SupabaseUnderTest;
let db: JobsDb;
const since = new Date(Date.now() - 24 * 3_600_000);

beforeAll(async () => {
  target = await supabaseUnderTest();
  // Nothing may change the table between a read and the SQL that checks it: the sandbox's worker is stopped.
  await target.sandbox?.worker('stop');
  db = createJobsDb({
    url: target.url,
    key: target.serviceRoleKey,
    timeoutMs: 15_000,
    sleep: realClock.sleep,
    now: () => performance.now(),
  });
  // This file's jobs, one of each status, the queued one older than any a project would hold.
  await target.sql(
    `insert into public.hd_ingestion_jobs (account_id, job_type, status, attempts, error, created_at, started_at, finished_at)
     values ($1, 'reads_test', 'queued', 0, null, '2001-01-01T00:00:00Z', null, null),
            ($1, 'reads_test', 'pending', 0, null, now() - interval '2 h', null, null),
            ($1, 'reads_test', 'running', 1, null, now() - interval '1 h', now() - interval '50 min', null),
            ($1, 'reads_test', 'failed', 1, 'RuntimeError: reads', now() - interval '1 h', now() - interval '40 min', now() - interval '30 min'),
            ($1, 'reads_test', 'done', 1, null, now() - interval '1 h', now() - interval '20 min', now() - interval '2 min')`,
    [target.accountId],
  );
});

/**
 * A read and the SQL counts of the table it read, taken just before and just after: equal, or the table changed
 * meanwhile and the comparison would mean nothing (on a real project: something else writes to it).
 */
async function withCounts<T>(read: () => Promise<T>): Promise<{ value: T; c: Record<string, number> }> {
  const before = await sqlCounts();
  const value = await read();
  const after = await sqlCounts();
  expect(after, 'the table changed during the read: stop what writes to it (a worker, another run)').toEqual(before);
  return { value, c: after };
}

/** The same counts, by SQL over the whole table. */
async function sqlCounts(): Promise<Record<string, number>> {
  const [r] = await target.sql<Record<string, number>>(
    `select count(*) filter (where status in ('queued', 'pending'))::int as backlog,
            count(*) filter (where status = 'pending')::int as pending,
            count(*) filter (where status = 'running')::int as running,
            count(*) filter (where status = 'failed')::int as failed,
            count(*) filter (where status = 'failed' and created_at >= $1)::int as failed_since,
            count(*) filter (where status = 'done')::int as done
     from public.hd_ingestion_jobs`,
    [since.toISOString()],
  );
  return r;
}

describe('the queue reads against the table', () => {
  it("the diagnosis's snapshot counts what SQL counts, and its oldest queued job is the table's oldest", async () => {
    const { value: r, c } = await withCounts(() => db.queueSnapshot({ failedSince: since, listLimit: 50 }));
    if (!r.ok) throw new Error(`queueSnapshot failed: ${r.failure.message}`);
    expect({
      queued: r.value.queued.count,
      running: r.value.running.count,
      failed: r.value.failed.count,
      done: r.value.done.count,
    }).toEqual({ queued: c.backlog, running: c.running, failed: c.failed_since, done: c.done });
    const [oldest] = await target.sql<{ id: string }>(
      "select id from public.hd_ingestion_jobs where status in ('queued', 'pending') order by created_at, id limit 1",
    );
    expect(r.value.queued.oldest[0]?.id).toBe(oldest.id);
  });

  it("the requeue's selection by account and status finds exactly this file's jobs, with the total", async () => {
    const r = await db.findJobs({ accountId: target.accountId, statuses: ['failed', 'done'], limit: 10 });
    if (!r.ok) throw new Error(`findJobs failed: ${r.failure.message}`);
    expect(r.value.jobs.map((j) => j.status).sort()).toEqual(['done', 'failed']);
    expect(r.value.jobs.every((j) => j.account_id === target.accountId)).toBe(true);
    expect(r.value.total).toBe(2);
    const one = await db.findJobs({ accountId: target.accountId, errorContains: 'runtimeerror: READS', limit: 10 });
    expect(one.ok && one.value.jobs.map((j) => j.error)).toEqual(['RuntimeError: reads']);
  });

  it("the watch's refresh counts what SQL counts", async () => {
    const { value: r, c } = await withCounts(() => db.watchReads({ since, limit: 20 }));
    if (!r.ok) throw new Error(`watchReads failed: ${r.failure.message}`);
    expect(r.value.counts).toMatchObject({
      pending: c.pending,
      queued: c.backlog - c.pending,
      running: c.running,
      failed: c.failed,
      done: c.done,
    });
    expect(r.value.backlog.length).toBe(Math.min(20, c.backlog));
  });
});
