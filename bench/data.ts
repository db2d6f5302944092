/**
 * Bulk data for the scale and requeue measurements: jobs inserted by one `insert … select from generate_series`
 * statement through the sandbox's control API, and a worker log grown to a size by appending realistic lines.
 */
import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';

const ACCOUNT = '6f1c2a44-2d0e-4c55-9a51-3f6d3b1f0a10';

/**
 * `count` jobs, oldest first, one every 0.5 s back from an hour ago: one in 1,000 failed (a few error texts), one in
 * 5,000 queued, the rest done. Row `i` of a later call continues the timeline (`offset`).
 */
export function insertJobsSql(count: number, offset = 0): string {
  const n = Math.floor(count);
  const o = Math.floor(offset);
  return `insert into public.hd_ingestion_jobs
    (account_id, job_type, status, attempts, error, payload, debug, created_at, started_at, finished_at)
  select '${ACCOUNT}'::uuid,
    case when i % 3 = 0 then 'thumbnail' else 'import_assets_jsonl' end,
    case when i % 1000 = 0 then 'failed' when i % 5000 = 1 then 'queued' else 'done' end,
    case when i % 5000 = 1 then 0 else 1 end,
    case when i % 1000 = 0 then 'upstream returned 502 for asset ' || i else null end,
    jsonb_build_object('source', 'uploads/batch-' || (i % 97) || '.jsonl'),
    '{}'::jsonb,
    now() - interval '1 hour' - make_interval(secs => (${o + n} - i) * 0.5),
    case when i % 5000 = 1 then null else now() - interval '1 hour' - make_interval(secs => (${o + n} - i) * 0.5 - 1) end,
    case when i % 5000 = 1 then null else now() - interval '1 hour' - make_interval(secs => (${o + n} - i) * 0.5 - 2) end
  from generate_series(${o + 1}, ${o + n}) as i`;
}

/**
 * `count` failed jobs for the bulk requeue (attempts 1, finished a minute ago), created 10 ms apart as jobs arriving
 * one by one are: the requeue pages through them by created_at.
 */
export function insertFailedJobsSql(count: number): string {
  const n = Math.floor(count);
  return `insert into public.hd_ingestion_jobs
    (account_id, job_type, status, attempts, error, payload, created_at, started_at, finished_at)
  select '${ACCOUNT}'::uuid, 'import_assets_jsonl', 'failed', 1, 'upstream returned 502 for asset ' || i,
    '{}'::jsonb, now() - interval '10 minutes' - make_interval(secs => (${n} - i) * 0.01),
    now() - interval '2 minutes', now() - interval '1 minute'
  from generate_series(1, ${n}) as i`;
}

/** About 1 MB of log lines as the worker writes them: polls, claims, completions, an error with its traceback. */
export function logBlock(bytes = 1024 * 1024): Buffer {
  const lines: string[] = [];
  let size = 0;
  let t = Date.parse('2026-01-01T00:00:00Z');
  for (let i = 0; size < bytes; i++) {
    t += 500;
    const at = new Date(t).toISOString();
    const id = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
    const chunk =
      i % 50 === 7
        ? [
            `${at} ERROR job ${id} failed: upstream returned 502 for asset ${i}`,
            'Traceback (most recent call last):',
            '  File "/home/sparkuser/srv/hd-worker/worker.py", line 212, in process_job',
            'RuntimeError: upstream returned 502',
          ]
        : i % 10 === 3
          ? [`${at} INFO job ${id} claimed`, `${at} INFO job ${id} done assets=3`]
          : [`${at} INFO poll queued=0`];
    for (const l of chunk) {
      lines.push(l);
      size += l.length + 1;
    }
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

/** Appends whole blocks to `worker.log` until it is at least `targetBytes`. Bounded: at most 4,096 blocks. */
export function growLog(workerDir: string, targetBytes: number): number {
  const file = path.join(workerDir, 'logs', 'worker.log');
  const block = logBlock();
  let size = (() => {
    try {
      return statSync(file).size;
    } catch {
      return 0;
    }
  })();
  const fd = openSync(file, 'a');
  try {
    for (let i = 0; i < 4_096 && size < targetBytes; i++) size += writeSync(fd, block);
  } finally {
    closeSync(fd);
  }
  return size;
}
