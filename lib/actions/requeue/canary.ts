/**
 * The canary: requeue a few jobs first, watch them, and release the rest only when none failed again. Picking and
 * judging are pure; the flow does the writing and the watching.
 */
import { groupWrites, type PlannedWrite } from './plan.ts';
import type { WatchReceipt } from './verify.ts';

export { DEFAULT_CANARY_TIMEOUT_SECONDS } from './limits.ts';

/**
 * Up to `n` writes, taken round-robin across the job_type × error groups, so a group that still fails shows up in
 * the canary rather than in the bulk.
 */
export function pickCanaries(writes: readonly PlannedWrite[], n: number): PlannedWrite[] {
  const byId = new Map(writes.map((w) => [w.jobId, w]));
  const queues = groupWrites(writes).map((g) => [...g.jobIds]);
  const picked: PlannedWrite[] = [];
  while (picked.length < Math.min(n, writes.length)) {
    for (const q of queues) {
      const id = q.shift();
      if (id !== undefined && picked.length < n) picked.push(byId.get(id)!);
    }
  }
  // Keep the plan's order: the audit file and the output read better that way.
  const ids = new Set(picked.map((w) => w.jobId));
  return writes.filter((w) => ids.has(w.jobId));
}

/** Whether to release the rest, and one line saying why. */
export interface CanaryVerdict {
  /** pass: release the rest; fail: a canary failed again; inconclusive: time ran out (or the watch broke). */
  verdict: 'pass' | 'fail' | 'inconclusive';
  line: string;
}

/** Any canary failed again: fail. All finished: pass. Otherwise (time ran out, watch broke): inconclusive. */
export function judgeCanary(receipt: WatchReceipt): CanaryVerdict {
  const c = receipt.counts;
  if (c.failedAgain > 0) {
    const sigs = [...new Set(receipt.jobs.filter((j) => j.state === 'failed-again').map((j) => j.signature))];
    return {
      verdict: 'fail',
      line: `${c.failedAgain} of ${receipt.total} canary job${receipt.total === 1 ? '' : 's'} failed again (${sigs.slice(0, 3).join('; ')}): the rest were not requeued`,
    };
  }
  if (receipt.ended === 'settled') {
    return {
      verdict: 'pass',
      line: `all ${receipt.total} canary job${receipt.total === 1 ? '' : 's'} finished (${c.done} done${c.gone ? `, ${c.gone} gone` : ''})`,
    };
  }
  const why =
    receipt.ended === 'read-failed'
      ? `the watch could not read the jobs (${receipt.message ?? 'error'})`
      : receipt.ended === 'aborted'
        ? 'the watch was interrupted'
        : `after ${receipt.seconds} s ${c.stillQueued} still queued and ${c.running} running`;
  return { verdict: 'inconclusive', line: `canary inconclusive: ${why} (${c.done} done, none failed again)` };
}
