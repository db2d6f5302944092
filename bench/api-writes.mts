/**
 * node --import tsx bench/api-writes.mts --dir SANDBOX_DIR [--writes N] [--concurrency N] [--runs N] [--latency MS]
 *
 * A focused micro-bench of the sandbox API's write throughput: N failed jobs inserted, then one compare-and-set
 * PATCH per job as the requeue's per-job path sends it (lib/io/jobs-db.ts compareAndSet, through supabase-js),
 * `--concurrency` in flight, against a running sandbox (`npm run sandbox -- up --dir DIR`), its latency set to
 * `--latency` (default 0) while writing and to 0 otherwise (left so). The table is emptied before each run. Prints
 * writes per second, and the CPU time per write of the API's process, of PostgreSQL's and of this client (from
 * /proc: Linux): on a machine of two cores they share, the CPU is the limit. The first run warms up (JIT, the
 * API's pool connections).
 * Not part of `npm run bench` or `npm test`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createJobsDb, type Job } from '../lib/io/jobs-db.ts';
import { sandboxClient } from '../sandbox/client.ts';
import { insertFailedJobsSql } from './data.ts';

const { values: flags } = parseArgs({
  options: {
    dir: { type: 'string' },
    writes: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '24' },
    runs: { type: 'string', default: '3' },
    latency: { type: 'string', default: '0' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags.help || !flags.dir) {
  process.stdout.write(
    'Usage: node --import tsx bench/api-writes.mts --dir SANDBOX_DIR [--writes 2000] [--concurrency 24] [--runs 3] [--latency 0]\n',
  );
  process.exit(flags.help ? 0 : 2);
}

const sb = sandboxClient(path.resolve(flags.dir));
const N = Math.max(1, Number(flags.writes) || 2000);
const C = Math.max(1, Number(flags.concurrency) || 24);
const RUNS = Math.max(1, Number(flags.runs) || 3);
const env = Object.fromEntries(
  readFileSync(sb.envFile, 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z_]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);
const db = createJobsDb({
  url: env.SUPABASE_URL,
  key: env.SUPABASE_SERVICE_ROLE_KEY,
  timeoutMs: 30_000,
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  now: () => Date.now(),
});

/** CPU seconds (user + system) a process has used so far, from /proc; 0 where there is none. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** The sandbox's API process (its supervisor) and PostgreSQL's processes (the postmaster and its children). */
function serverPids(): { api: number; postgres: number[] } {
  const pidFile = readdirSync(sb.dir, { recursive: true, encoding: 'utf8' }).find((f) => f.endsWith('postmaster.pid'));
  const postmaster = pidFile ? Number(readFileSync(path.join(sb.dir, pidFile), 'utf8').split('\n')[0]) : 0;
  const children = existsSync('/proc')
    ? readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .filter((d) => {
          try {
            return readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ')[1] === String(postmaster);
          } catch {
            return false;
          }
        })
        .map(Number)
    : [];
  return { api: sb.info.supervisorPid, postgres: [postmaster, ...children] };
}

await sb.controls({ latencyMs: 0 });
for (let run = 1; run <= RUNS; run++) {
  await sb.sql('truncate public.hd_assets, public.hd_ingestion_jobs');
  await sb.sql(insertFailedJobsSql(N));
  await sb.sql('vacuum analyze public.hd_ingestion_jobs');
  const { rows } = await sb.sql<Job>(
    "select id, status, attempts, to_json(started_at) #>> '{}' as started_at, debug from public.hd_ingestion_jobs order by created_at",
  );
  let next = 0;
  let failed = 0;
  const pids = serverPids();
  const cpu = () => ({
    api: cpuSeconds(pids.api),
    postgres: pids.postgres.reduce((t, p) => t + cpuSeconds(p), 0),
    self: process.cpuUsage(),
  });
  await sb.controls({ latencyMs: Number(flags.latency) || 0 });
  const before = cpu();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (next < rows.length) {
        const j = rows[next++];
        const r = await db.compareAndSet(
          { id: j.id, status: j.status, attempts: j.attempts, started_at: j.started_at },
          { status: 'queued', debug: { requeue_history: [{ at: new Date().toISOString(), by: 'bench' }] } },
          { debug: j.debug },
        );
        if (!r.ok || !r.value) failed++;
      }
    }),
  );
  const s = (performance.now() - started) / 1000;
  const after = cpu();
  await sb.controls({ latencyMs: 0 });
  const self = process.cpuUsage(before.self);
  const ms = (seconds: number) => ((seconds * 1000) / N).toFixed(2);
  process.stdout.write(
    `run ${run}: ${N} PATCHes, ${C} in flight: ${s.toFixed(2)} s, ${Math.round(N / s)} writes/s${failed ? `, ${failed} not written` : ''}; ` +
      `CPU ms per write: API ${ms(after.api - before.api)}, PostgreSQL ${ms(after.postgres - before.postgres)}, ` +
      `this client ${ms((self.user + self.system) / 1e6)}\n`,
  );
}
