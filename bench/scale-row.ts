/**
 * The production-scale row (issue #10): one sandbox seeded with millions of jobs (1% failed in the last day, 0.1%
 * queued), then the runbooks an incident runs against it, one after the other on the same data: debug-stuck-jobs,
 * diagnose-env, a requeue preview (dry run) and an applied requeue through the SQL function. For each: its exit code,
 * its wall time, and the server time of every queue read it made (the sandbox's stats), against the goal "every
 * queue read's server time ≤ 1 s". Before them, on the table as seeded, the watch row's large case (bench/watch-row.ts).
 */
import path from 'node:path';
import { sandboxCli, sandboxSeed } from '../sandbox/client.ts';
import { childEnv, runTimed } from './child.ts';
import { type BenchSandbox, ROOT, startBenchSandbox } from './sandbox.ts';
import { type QueueRead, queueReads, readTimes } from './stats.ts';
import { table } from './table.ts';
import { measureWatch, type WatchRowOptions, type WatchRowResult, watchNotMeasured } from './watch-row.ts';

/** The goal of issue #10: every queue read's server time at most this. */
export const READ_GOAL_MS = 1_000;
/** The issue's scale: 10 million jobs, a preview of 50,000 and an applied requeue of 100,000 (scaled with --scale-jobs). */
export const SCALE_ROW_JOBS = 10_000_000;
/** A step may take long at this scale (a slow read is what the row is there to show); past this it is killed. */
const STEP_TIMEOUT_MS = 20 * 60_000;

export interface ScaleStep {
  step: string;
  args: string[];
  exitCode: number | null;
  wallMs: number;
  reads: QueueRead[];
  maxReadMs: number;
  /** Reads over {@link READ_GOAL_MS}, slowest first. */
  slowReads: QueueRead[];
  /** Calls of the SQL function (writes): how many and the slowest server time. */
  rpc: { n: number; maxMs: number };
  /** The last lines the runbook printed, when it did not exit 0 or 1. */
  tail?: string;
}

export interface ScaleRowResult {
  jobs: number;
  limits: string;
  seed: { seconds: number; summary: string };
  steps: ScaleStep[];
  /** Jobs queued before and after the applied requeue. */
  queued?: { before: number; after: number; asked?: number };
  /** The watch's refreshes on this table (bench/watch-row.ts), when asked for. */
  watch?: WatchRowResult;
  notMeasured?: string;
}

async function sandboxLimits(): Promise<string> {
  const help = await sandboxCli(['--help'], childEnv());
  return /--max-rows/.test(help)
    ? "the sandbox's defaults (see npm run sandbox -- --help)"
    : 'none: this sandbox has no --max-rows or statement timeout yet';
}

async function countQueued(sb: BenchSandbox): Promise<number> {
  const r = await sb.sql<{ n: number }>(
    "select count(*)::int as n from public.hd_ingestion_jobs where status = 'queued'",
  );
  return Number(r.rows[0].n);
}

/**
 * Waits until PostgreSQL runs no statement of the API's (the `authenticator` login): a runbook that gave up on a
 * slow read leaves it running on the server, where it would be charged to the next step and slow it down.
 */
async function settle(sb: BenchSandbox, log: (m: string) => void): Promise<void> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  for (let said = false; Date.now() < deadline; said = true) {
    const r = await sb.sql<{ n: number }>(
      "select count(*)::int as n from pg_stat_activity where usename = 'authenticator' and state = 'active'",
    );
    if (Number(r.rows[0].n) === 0) return;
    if (!said) log(`scale row: waiting for ${r.rows[0].n} statement(s) the runbook left running on the server`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function runStep(
  sb: BenchSandbox,
  step: string,
  script: string,
  args: string[],
  log: (m: string) => void,
): Promise<ScaleStep> {
  await settle(sb, log);
  await sb.resetStats();
  const startedAt = Date.now();
  const r = await runTimed('npx', ['zx', `runbooks/${script}.mts`, ...args], {
    cwd: ROOT,
    env: childEnv(),
    timeoutMs: STEP_TIMEOUT_MS,
    memory: false,
  });
  // The reads it left running end later: their server time is the step's too.
  await settle(sb, log);
  const stats = await sb.stats();
  const events = stats.events.filter((e) => e.startedAt >= startedAt);
  const reads = queueReads(events);
  const t = readTimes(reads, READ_GOAL_MS);
  const rpcs = events.filter((e) => e.method === 'POST' && e.path.endsWith('/rpc/hd_requeue_jobs'));
  return {
    step,
    args,
    exitCode: r.code,
    wallMs: r.wallMs,
    reads,
    maxReadMs: t.maxMs,
    slowReads: t.over,
    rpc: { n: rpcs.length, maxMs: rpcs.reduce((m, e) => Math.max(m, e.endedAt - e.startedAt), 0) },
    tail:
      r.code === 0 || r.code === 1
        ? undefined
        : `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-4).join(' / ').slice(0, 600),
  };
}

/** Starts its own sandbox, seeds it, runs the four steps on it, and stops it (its folder removed). */
export async function scaleRow(o: {
  jobs: number;
  work: string;
  log: (m: string) => void;
  /** Also measure the watch's refreshes on the seeded table, before the steps change it. */
  watch?: WatchRowOptions;
}): Promise<ScaleRowResult> {
  const jobs = o.jobs;
  const preview = Math.max(1, Math.round(jobs * 0.005));
  const apply = Math.max(1, Math.round(jobs * 0.01));
  const limits = await sandboxLimits();
  o.log(`scale row: a sandbox with ${jobs.toLocaleString('en')} jobs (limits: ${limits})`);
  const sb = await startBenchSandbox({ scenario: 'healthy' });
  try {
    // Before the seed: the quiet worker's first poll claims the oldest queued job, and none after that.
    await sb.quietWorker();
    const t = performance.now();
    const summary = await sandboxSeed(sb.dir, { jobs }, childEnv(), (line) => o.log(`scale row: ${line}`));
    const seed = { seconds: (performance.now() - t) / 1000, summary };
    o.log(`scale row: ${summary}`);
    let watch: WatchRowResult | undefined;
    if (o.watch) {
      watch = await measureWatch(sb, 'large', jobs, o.watch).catch((e) => watchNotMeasured('large', jobs, o.watch!, e));
      o.log(`scale row: watch refresh ${watch.notMeasured ?? `${watch.wallMs.median.toFixed(0)} ms (median)`}`);
    }
    const env = ['--ci', '--env-file', sb.envFile];
    // The preview writes nothing, but reads the audit file to settle an earlier run: the bench's own, never yours.
    const audit = ['--audit', path.join(o.work, 'scale-row-audit.jsonl')];
    const steps: ScaleStep[] = [];
    const queuedBefore = await countQueued(sb);
    for (const [step, script, args] of [
      ['debug-stuck-jobs', 'debug-stuck-jobs', env],
      ['diagnose-env', 'diagnose-env', env],
      [
        `requeue preview of ${preview.toLocaleString('en')}`,
        'requeue',
        ['--status', 'failed', '--error', 'Circular reference', '--limit', String(preview), ...audit, ...env],
      ],
      [
        `requeue --apply of ${apply.toLocaleString('en')} (SQL function)`,
        'requeue',
        [
          ...['--status', 'failed', '--limit', String(apply), '--apply', '--yes', '--rpc', 'only'],
          ...['--reason', 'bench: scale row', '--skip-fix-gate', 'the bench measures reads and writes, not the gate'],
          ...audit,
          ...env,
        ],
      ],
    ] as const) {
      o.log(`scale row: ${step}`);
      const s = await runStep(sb, step, script, [...args], o.log);
      o.log(
        `scale row: ${step}: exit ${s.exitCode}, ${(s.wallMs / 1000).toFixed(1)} s, ${s.reads.length} reads, slowest ${s.maxReadMs} ms`,
      );
      steps.push(s);
    }
    const queued = { before: queuedBefore, after: await countQueued(sb), asked: apply };
    return { jobs, limits, seed, steps, queued, ...(watch ? { watch } : {}) };
  } finally {
    await sb.down();
  }
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** A recorded query string (`?select=id%2Cstatus…`) as a person reads it (`select=id,status…`). */
export function readable(query: string): string {
  const q = query.replace(/^\?/, '');
  try {
    return decodeURIComponent(q);
  } catch {
    return q;
  }
}

/** The row's table and the reads over the goal with their query strings. */
export function scaleRowReport(r: ScaleRowResult): string[] {
  const out = [
    `Production scale: ${r.jobs.toLocaleString('en')} jobs (1% failed in the last day, 0.1% queued), seeded in ${r.seed.seconds.toFixed(0)} s · limits: ${r.limits}`,
  ];
  if (r.notMeasured) return [...out, `  not measured: ${r.notMeasured}`, ''];
  out.push(
    table(
      ['step', 'exit', 'wall', 'queue reads', `over ${READ_GOAL_MS} ms`, 'slowest read', 'SQL function calls'],
      r.steps.map((s) => [
        s.step,
        String(s.exitCode),
        secs(s.wallMs),
        String(s.reads.length),
        String(s.slowReads.length),
        `${s.maxReadMs} ms`,
        s.rpc.n ? `${s.rpc.n} (slowest ${s.rpc.maxMs} ms)` : '—',
      ]),
    ),
  );
  if (r.queued) out.push(`queued before the applied requeue ${r.queued.before}, after ${r.queued.after}`);
  for (const s of r.steps) {
    if (s.tail) out.push(`${s.step} (exit ${s.exitCode}): ${s.tail}`);
    if (!s.slowReads.length) continue;
    out.push(`${s.step}: reads over ${READ_GOAL_MS} ms (server time, query string)`);
    for (const read of s.slowReads.slice(0, 8))
      out.push(`  ${read.serverMs} ms  ${read.method} ?${readable(read.query)}`);
    if (s.slowReads.length > 8) out.push(`  … and ${s.slowReads.length - 8} more (all in the JSON results)`);
  }
  out.push('');
  return out;
}

/** The row's goals: each step runs (exit 0 or 1), and every queue read within the budget. Judged at full scale only. */
export function scaleRowGoals(
  r: ScaleRowResult,
): Array<{ goal: string; target: string; measured: string; met: boolean | null }> {
  const judge = (met: boolean) => (r.jobs >= SCALE_ROW_JOBS ? met : null);
  const at = `at ${r.jobs.toLocaleString('en')} jobs`;
  if (r.notMeasured)
    return [{ goal: `scale row ${at}`, target: 'measured', measured: r.notMeasured, met: judge(false) }];
  const written = r.queued?.asked
    ? [
        {
          goal: `the applied requeue ${at}: every job it was asked for is queued`,
          target: `${r.queued.asked.toLocaleString('en')} more queued`,
          measured: `${(r.queued.after - r.queued.before).toLocaleString('en')} more queued`,
          met: judge(r.queued.after - r.queued.before === r.queued.asked),
        },
      ]
    : [];
  return [...stepGoals(r, judge, at), ...written];
}

function stepGoals(r: ScaleRowResult, judge: (met: boolean) => boolean | null, at: string) {
  return r.steps.flatMap((s) => [
    {
      goal: `${s.step} ${at}: runs`,
      target: 'exit 0 or 1',
      measured: `exit ${s.exitCode}`,
      met: judge(s.exitCode === 0 || s.exitCode === 1),
    },
    {
      goal: `${s.step} ${at}: every queue read's server time`,
      target: `<= ${READ_GOAL_MS} ms`,
      measured: `max ${s.maxReadMs} ms, ${s.slowReads.length} of ${s.reads.length} over`,
      met: judge(s.reads.length > 0 && s.slowReads.length === 0),
    },
  ]);
}
