/**
 * Races: 200 requeue attempts while other actors claim the same jobs. Once the runbook has read its preview, a racer
 * keeps moving jobs on under it: some to `running` with one more attempt (a worker's claim), some to `queued` (another
 * operator's blind requeue, which the real worker then claims). A trigger records every update of the table with who
 * made it, so the test judges the runbook by the database, not by its own report: no job it wrote had changed since
 * the preview, no job written twice, every write reported, every job it left alone reported as skipped.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { type Sandbox, startSandbox } from '../helpers/sandbox.ts';
import { faultCase, insertFailed, NO_GATE, observe, requeueResults, run, runbookRequests, tempDir } from './harness.ts';

let sb: Sandbox;

beforeAll(async () => {
  sb = await startSandbox();
  // Every update, with the old and new state and who made it (supabase-js names itself in x-client-info).
  await sb.sql(`
    create table if not exists public.fault_race_log (
      id uuid, old_status text, new_status text, old_attempts int, new_attempts int, client text,
      at timestamptz default clock_timestamp());
    create or replace function public.fault_race_log_update() returns trigger
    language plpgsql security definer set search_path = public as $$
    begin
      insert into public.fault_race_log (id, old_status, new_status, old_attempts, new_attempts, client)
      values (old.id, old.status, new.status, old.attempts, new.attempts,
              coalesce(nullif(current_setting('request.headers', true), '')::json ->> 'x-client-info',
                       nullif(current_setting('request.headers', true), '')::json ->> 'user-agent', 'sql'));
      return new;
    end $$;
    drop trigger if exists fault_race_log on public.hd_ingestion_jobs;
    create trigger fault_race_log after update on public.hd_ingestion_jobs
      for each row execute function public.fault_race_log_update();`);
});

afterAll(async () => {
  await sb?.down();
});

interface LogRow {
  id: string;
  old_status: string;
  new_status: string;
  client: string;
}

/**
 * Moves random still-failed jobs among `candidates` on until stopped, as three workers would: each claim one row per
 * statement (a statement holding several row locks could deadlock with the batch write, which no worker does).
 * Returns how many moves were made.
 */
function racer(candidates: readonly string[]): { stop: () => Promise<number> } {
  let stopped = false;
  let moved = 0;
  const actor = async (n: number) => {
    let i = n;
    while (!stopped) {
      // Alternate: a worker's claim (running, one more attempt), or someone else's blind requeue (queued).
      const claim = i++ % 2 === 0;
      const rows = await sb.sql(
        `update public.hd_ingestion_jobs set
           status = $2, attempts = attempts + $3, started_at = case when $3 = 1 then now() else null end,
           finished_at = null, error = null
         where id = (select id from public.hd_ingestion_jobs
                     where id = any($1::uuid[]) and status = 'failed' order by random() limit 1)
           and status = 'failed'
         returning id`,
        [candidates, claim ? 'running' : 'queued', claim ? 1 : 0],
      );
      moved += rows.length;
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  const actors = Promise.all([0, 1, 2].map(actor));
  return {
    stop: async () => {
      stopped = true;
      await actors;
      return moved;
    },
  };
}

/** Resolves once the runbook's preview read of `jobType` has been answered. */
async function previewRead(jobType: string, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const seen = runbookRequests((await sb.stats()).events).some(
      (e) => e.method === 'GET' && (e.query ?? '').includes(`job_type=eq.${jobType}`) && e.status === 200,
    );
    if (seen) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error('the runbook never read its preview');
}

describe('requeue racing the claims', () => {
  for (const rpc of ['off', 'auto'] as const) {
    faultCase(
      {
        group: 'Races',
        runbook: 'requeue',
        name: `200 requeue attempts racing claims (${rpc === 'off' ? 'compare-and-set per job' : 'batch RPC'})`,
        expected: 'no job overwritten or written twice; every write and every skip reported',
      },
      async () => {
        const jobType = `race_${rpc}`;
        const ids = await insertFailed(sb, 200, jobType);
        await sb.resetStats();
        // A little latency per request widens every window between reading a job and writing it.
        await sb.controls({ latencyMs: 15 });
        const audit = path.join(tempDir('race'), 'audit.jsonl');
        try {
          const runbook = run('requeue', [
            '--env-file',
            sb.envFile,
            '--job-type',
            jobType,
            '--limit',
            '200',
            '--apply',
            '--yes',
            '--reason',
            'race drill',
            '--rpc',
            rpc,
            ...NO_GATE,
            '--audit',
            audit,
            '--timeout',
            '10',
          ]);
          // Should the preview never come, the run's own failure is the one to report.
          runbook.catch(() => {});
          await previewRead(jobType, Date.now() + 20_000);
          // Half the jobs are contested; the other half only the runbook touches, so some writes always happen.
          const race = racer(ids.filter((_, i) => i % 2 === 0));
          const r = await runbook;
          const moved = await race.stop();

          const results = requeueResults(r);
          const log = await sb.sql<LogRow>(
            'select id::text, old_status, new_status, client from public.fault_race_log where id = any($1::uuid[])',
            [ids],
          );
          const byRunbook = log.filter((l) => l.client.startsWith('supabase-js'));
          const requeued = results.filter((x) => x.outcome === 'requeued').map((x) => x.jobId);
          const skipped = results.filter((x) => x.outcome === 'skipped');

          // Every one of the 200 attempts is accounted for, once.
          expect(results.map((x) => x.jobId).sort(), r.stdout + r.stderr).toEqual([...ids].sort());
          expect(results.every((x) => x.outcome === 'requeued' || x.outcome === 'skipped')).toBe(true);
          // No job overwritten: the runbook only ever wrote jobs still failed as the preview saw them.
          expect(byRunbook.filter((l) => l.old_status !== 'failed')).toEqual([]);
          // No job written twice.
          expect(new Set(byRunbook.map((l) => l.id)).size).toBe(byRunbook.length);
          // Every write reported, and nothing reported that was not written.
          expect(byRunbook.map((l) => l.id).sort()).toEqual([...requeued].sort());
          // Every skip reported with what changed; the race really happened.
          for (const s of skipped) expect(s.detail).toMatch(/changed since the preview|changed just before the write/);
          expect(skipped.length).toBeGreaterThan(0);
          expect(requeued.length).toBeGreaterThan(0);
          expect(r.code).toBe(1);
          expect(r.stdout).toMatch(new RegExp(`${skipped.length} jobs? changed after the preview`));
          // The audit file says the same, job by job.
          expect(existsSync(audit)).toBe(true);
          const lines = readFileSync(audit, 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as { job_id?: string; outcome?: string });
          const auditRequeued = lines.filter((l) => l.outcome === 'requeued').map((l) => l.job_id);
          const auditSkipped = lines.filter((l) => l.outcome === 'skipped').map((l) => l.job_id);
          expect(auditRequeued.sort()).toEqual([...requeued].sort());
          expect(auditSkipped.sort()).toEqual(skipped.map((s) => s.jobId).sort());
          observe(`${requeued.length} requeued, ${skipped.length} skipped (racer moved ${moved})`);
        } finally {
          await sb.controls({ latencyMs: 0 });
        }
      },
      120_000,
    );
  }
});
