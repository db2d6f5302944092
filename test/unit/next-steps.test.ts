/** "Next steps": what to do, in order, with the exact commands; a restart is shown, never run. */
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../lib/core/finding.ts';
import type { Evidence } from '../../lib/evidence/evidence.ts';
import { nextSteps, requeueOffers } from '../../lib/flows/next-steps.ts';
import type { Job } from '../../lib/io/jobs-db.ts';

const NOW = new Date('2026-12-01T12:00:00Z');
const ID = '3f1c0e2a-0000-4000-8000-000000000001';

function failedJob(finishedAt: string): Job {
  return {
    id: ID,
    account_id: 'a',
    job_type: 'import_assets_jsonl',
    status: 'failed',
    attempts: 1,
    error: 'ValueError: Circular reference detected',
    debug: null,
    created_at: '2026-12-01T11:00:00Z',
    started_at: '2026-12-01T11:00:01Z',
    finished_at: finishedAt,
  } as Job;
}

/** The evidence next-steps reads: the failed jobs, and Spark's target and worker process (the fix gate). */
function evidence(workerStartedAt: string): Evidence {
  return {
    now: NOW,
    queue: { failed: { recent: [failedJob('2026-12-01T11:30:00Z')] }, running: { jobs: [] } },
    spark: {
      ok: true,
      target: { host: '100.64.0.7', port: 2222, user: 'sparkuser' },
      probe: {
        processes: [{ pid: 10, elapsedSeconds: 60, startedAt: new Date(workerStartedAt), args: 'python3 worker.py' }],
      },
    },
  } as unknown as Evidence;
}

const circular: Finding = {
  id: 'circular-metadata',
  severity: 'critical',
  title: 'import_assets_jsonl writes a circular structure into metadata',
  evidence: [],
  cause: 'a whole object as source_line',
  fix: 'store only a small flat subset as source_line, deploy the worker, then requeue the failed jobs',
  jobIds: [ID],
  requeueSafe: true,
};

describe('nextSteps', () => {
  it('before the fix is live: fix, restart (WORKER_RESTART_CMD over ssh), requeue, check, in that order', () => {
    const ev = evidence('2026-12-01T11:00:00Z');
    const flags = { config: '/home/alice/.env.prod' };
    const steps = nextSteps(ev, [circular], requeueOffers(ev, [circular], flags), {
      flags,
      restartCmd: 'sudo systemctl restart hd-worker',
      runbook: 'debug-stuck-jobs',
    });
    expect(steps).toEqual([
      '1. Fix [circular-metadata]: store only a small flat subset as source_line, deploy the worker',
      "2. Restart the worker so the fix is live (WORKER_RESTART_CMD): ssh -p 2222 sparkuser@100.64.0.7 'sudo systemctl restart hd-worker'",
      `3. Requeue the 1 job(s) of [circular-metadata]: npx zx runbooks/requeue.mts --config /home/alice/.env.prod --id ${ID} --reason 'circular-metadata fixed'`,
      '4. Check the queue drains: npx zx runbooks/debug-stuck-jobs.mts --config /home/alice/.env.prod',
    ]);
  });

  it('after a restart that followed the failures: straight to the requeue', () => {
    const ev = evidence('2026-12-01T11:45:00Z');
    const steps = nextSteps(ev, [circular], requeueOffers(ev, [circular], {}), {
      flags: {},
      runbook: 'debug-stuck-jobs',
    });
    expect(steps.map((s) => s.replace(/:.*/, ''))).toEqual([
      '1. Requeue the 1 job(s) of [circular-metadata]',
      '2. Check the queue drains',
    ]);
  });

  it('without WORKER_RESTART_CMD it says how to get the command shown', () => {
    const ev = evidence('2026-12-01T11:00:00Z');
    const steps = nextSteps(ev, [circular], requeueOffers(ev, [circular], {}), {
      flags: {},
      runbook: 'debug-stuck-jobs',
    });
    expect(steps[1]).toBe('2. Restart the worker so the fix is live (WORKER_RESTART_CMD shows the command)');
  });

  it('nothing at warning or above: no steps', () => {
    const info: Finding = { ...circular, id: 'old', severity: 'info', requeueSafe: false };
    expect(nextSteps(evidence('2026-12-01T11:00:00Z'), [info], [], { flags: {}, runbook: 'debug-stuck-jobs' })).toEqual(
      [],
    );
  });
});
