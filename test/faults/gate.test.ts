/**
 * The fix gate, as a script meets it: `requeue --apply --yes` without a terminal must not write jobs that would fail
 * again (the worker has not restarted since they failed) or that it cannot judge because Spark, configured, did
 * not answer; `--canary N` and `--skip-fix-gate "REASON"` are the two ways past it, and the reason is kept.
 */
import { afterAll, beforeAll, beforeEach, describe, expect } from 'vitest';
import { type Sandbox, startSandbox } from '../helpers/sandbox.ts';
import {
  closedPort,
  envVariant,
  expectClear,
  faultCase,
  insertFailed,
  jobRows,
  observe,
  run,
  runbookWrites,
} from './harness.ts';

let sb: Sandbox;
let ids: string[];
const JOB_TYPE = 'gate_case';

beforeAll(async () => {
  sb = await startSandbox();
});

afterAll(async () => {
  await sb?.down();
});

beforeEach(async () => {
  // Failed just now, after the worker started: by the gate, the fix is not deployed.
  await sb.sql('delete from public.hd_ingestion_jobs where job_type = $1', [JOB_TYPE]);
  ids = await insertFailed(sb, 2, JOB_TYPE);
  await sb.sql(`update public.hd_ingestion_jobs set finished_at = now() where job_type = $1`, [JOB_TYPE]);
  await sb.resetStats();
});

const APPLY = ['--job-type', JOB_TYPE, '--apply', '--yes', '--reason', 'gate case'];

async function statuses(): Promise<string[]> {
  return [...(await jobRows(sb, ids)).values()].map((r) => r.status);
}

describe('the fix gate, without a terminal', () => {
  faultCase(
    {
      group: 'Fix gate',
      runbook: 'requeue',
      name: '--apply --yes while the worker has not restarted since the failures',
      expected: 'exit 1 · fix-not-deployed; nothing written',
    },
    async () => {
      const r = await run('requeue', ['--env-file', sb.envFile, ...APPLY]);
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.report?.findings.map((f) => f.id)).toContain('fix-not-deployed');
      expect(r.stdout).toMatch(/nothing requeued: the fix is probably not deployed/);
      expect(runbookWrites((await sb.stats()).events)).toEqual([]);
      expect(await statuses()).toEqual(['failed', 'failed']);
    },
  );

  faultCase(
    {
      group: 'Fix gate',
      runbook: 'requeue',
      name: '--apply --yes with Spark configured and refusing the connection',
      expected: 'exit 2 · the gate cannot tell, with the way past it; nothing written',
    },
    async () => {
      const env = envVariant(sb, { SPARK_PORT: String(await closedPort()) });
      const r = await run('requeue', ['--env-file', env, ...APPLY]);
      expectClear(r, { code: 2, says: /the fix gate cannot tell whether the fix is deployed: Spark did not answer/ });
      expect(r.stderr).toContain('--skip-fix-gate "REASON"');
      expect(runbookWrites((await sb.stats()).events)).toEqual([]);
      expect(await statuses()).toEqual(['failed', 'failed']);
    },
  );

  faultCase(
    {
      group: 'Fix gate',
      runbook: 'requeue',
      name: '--apply --yes --skip-fix-gate "REASON" with Spark refusing the connection',
      expected: 'exit 0 · written; the reason in each history entry',
    },
    async () => {
      const env = envVariant(sb, { SPARK_PORT: String(await closedPort()) });
      const r = await run('requeue', ['--env-file', env, ...APPLY, '--skip-fix-gate', 'fix checked on Spark by hand']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const rows = await sb.sql<{ reason: string }>(
        "select debug->'requeue_history'->-1->>'reason' as reason from public.hd_ingestion_jobs where id = any($1::uuid[])",
        [ids],
      );
      expect(rows.map((x) => x.reason)).toEqual([
        'gate case (fix gate skipped: fix checked on Spark by hand)',
        'gate case (fix gate skipped: fix checked on Spark by hand)',
      ]);
      observe(`exit ${r.code}; history reason kept`);
    },
  );

  faultCase(
    {
      group: 'Fix gate',
      runbook: 'requeue',
      name: '--apply --yes --canary 1 while the worker has not restarted',
      expected: 'the canary goes ahead: one job first, the rest only after it',
    },
    async () => {
      await sb.worker('stop');
      try {
        const r = await run('requeue', ['--env-file', sb.envFile, ...APPLY, '--canary', '1', '--canary-timeout', '2']);
        // The worker is stopped: the canary is not picked up, times out, and the rest is held back.
        expect(r.code, r.stdout + r.stderr).toBe(1);
        expect((await statuses()).sort()).toEqual(['failed', 'queued']);
      } finally {
        await sb.worker('start');
      }
    },
  );
});
