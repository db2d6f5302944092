/**
 * The watch runbook against the real sandbox, as an operator runs it: the backlog draining after `worker fix`, the
 * numbers of `--once --json` against the table itself, what one refresh costs (requests, bytes, SSH), and Ctrl-C
 * in a real pseudo-terminal. One sandbox for the file.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lazyJobsDb, realClock } from '../../lib/io/context.ts';
import type { JobsDb } from '../../lib/io/jobs-db.ts';
import { keepAliveFor } from '../../lib/io/keep-alive.ts';
import { TSX } from '../../sandbox/client.ts';
import { sandboxPaths } from '../../sandbox/layout.ts';
import { inPty, type RunbookName, runbookRequests, withControls } from '../faults/harness.ts';
import { processesWithArgs, processesWorkingIn } from '../helpers/proc.ts';
import { tempDir } from '../helpers/run.ts';
import { cleanEnv, ROOT, type RunResult, runRunbook, type Sandbox, startSandbox } from '../helpers/sandbox.ts';

let sb: Sandbox;
let state: string;

beforeAll(async () => {
  sb = await startSandbox();
  state = tempDir('hd-watch-state-');
});

afterAll(async () => {
  await sb?.down();
});

interface WatchJson {
  runbook: string;
  exitCode: number;
  stalled: boolean;
  counts: Record<string, number>;
  backlog: number;
  window: { done: number; failed: number };
  eta: { state: string };
  worker: { state: string; pid?: number };
}

function json(r: RunResult): WatchJson {
  try {
    return JSON.parse(r.stdout) as WatchJson;
  } catch {
    throw new Error(`not JSON on stdout (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

const env = () => ({ XDG_STATE_HOME: state });

/** The failed circular-metadata jobs, requeued with the worker stopped: they wait in the queue. */
async function requeuedWhileWorkerDown(): Promise<string[]> {
  await sb.scenario('circular-metadata');
  const failed = (await sb.sql<{ id: string }>("select id from hd_ingestion_jobs where status = 'failed'")).map(
    (r) => r.id,
  );
  await sb.worker('stop');
  const r = await runRunbook(
    'requeue',
    [
      ...['--config', sb.envFile, '--status', 'failed', '--error', 'Circular reference', '--reason', 'fix on its way'],
      ...['--apply', '--yes', '--ci', '--skip-fix-gate', 'the worker is stopped on purpose'],
    ],
    { env: env(), timeoutMs: 30_000 },
  );
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  return failed;
}

/** Starts a runbook as a child (no terminal: one block per refresh) and collects what it prints. */
function startWatch(
  args: string[],
  runbook = 'watch',
): { child: ChildProcess; out: () => string; done: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', TSX, path.join(ROOT, 'runbooks', `${runbook}.mts`), ...args], {
    cwd: ROOT,
    env: cleanEnv(env()),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout!.on('data', (d) => {
    text += d;
  });
  child.stderr!.on('data', (d) => {
    text += d;
  });
  const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, out: () => text, done };
}

/** Resolves once `test` holds on the output; fails with the output after the hang limit. */
async function until(out: () => string, test: (text: string) => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (test(out())) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`never saw ${what}:\n${out()}`);
}

/** Processes still running this runbook with this config (none must be left). */
function leftWatches(config: string): number[] {
  return processesWithArgs((args) => args.some((a) => a.endsWith('runbooks/watch.mts')) && args.includes(config));
}

/** Processes working in the sandbox's Spark home itself: the watch's remote bash while its channel is open. */
function inSparkHome(): number[] {
  return processesWorkingIn(sandboxPaths(sb.dir).sparkHome);
}

/** Waits for the sandbox's sshd to have ended what a closed channel left (it kills the process group). */
async function noneInSparkHome(): Promise<number[]> {
  for (let i = 0; i < 50 && inSparkHome().length; i++) await new Promise((r) => setTimeout(r, 100));
  return inSparkHome();
}

describe('watch against the sandbox', () => {
  it('shows the backlog draining after `worker fix`; Ctrl-C ends it with exit 0 and what was seen', async () => {
    const ids = await requeuedWhileWorkerDown();
    const w = startWatch(['--config', sb.envFile, '--every', '1']);
    try {
      await until(w.out, (t) => /^queued 2 · pending 0 · running 0/m.test(t), 'the 2 requeued jobs queued');
      expect(w.out()).toMatch(/^worker: no worker process in /m);
      await sb.worker('fix');
      await until(w.out, (t) => /queued 0 · pending 0 · running 0 · failed 0/.test(t), 'the queue drained');
      w.child.kill('SIGINT');
      expect(await w.done).toBe(0);
    } finally {
      w.child.kill('SIGKILL');
    }
    const text = w.out();
    expect(text).toMatch(/^worker: pid \d+, up /m);
    expect(text).toMatch(/^watched .* \(\d+ refresh(es)?\): backlog 2 → 0, drained; 2 done, 0 failed meanwhile$/m);
    const rows = await sb.sql<{ status: string }>('select status from hd_ingestion_jobs where id = any($1::uuid[])', [
      ids,
    ]);
    expect(rows.map((r) => r.status)).toEqual(['done', 'done']);
  });

  it('--once --json: the numbers are the table’s, for one parallel round, under 32 KB and one SSH command', async () => {
    await sb.scenario('circular-metadata');
    await sb.worker('fix');
    const r0 = await runRunbook(
      'requeue',
      [
        ...['--config', sb.envFile, '--status', 'failed', '--error', 'Circular reference', '--reason', 'fixed'],
        ...['--apply', '--yes', '--ci', '--rpc', 'off', '--verify', '20'],
      ],
      { env: env(), timeoutMs: 60_000 },
    );
    expect(r0.code, `${r0.stdout}\n${r0.stderr}`).toBe(0);
    await sb.resetStats();
    const startedAt = Date.now();
    const r = await runRunbook('watch', ['--config', sb.envFile, '--once', '--json', '-'], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    const doc = json(r);
    const table = await sb.sql<{ status: string; n: number }>(
      'select status, count(*)::int as n from hd_ingestion_jobs group by status',
    );
    const expected = { queued: 0, pending: 0, running: 0, done: 0, failed: 0 } as Record<string, number>;
    for (const row of table) expected[row.status] = row.n;
    expect(doc.counts).toEqual(expected);
    expect(doc).toMatchObject({ runbook: 'watch', exitCode: 0, stalled: false, backlog: 0, eta: { state: 'empty' } });
    expect(doc.window.done).toBeGreaterThanOrEqual(2);
    expect(doc.worker).toMatchObject({ state: 'running', pid: expect.any(Number) });
    // One refresh: seven reads, bounded bytes; one SSH connection running one command.
    const stats = await sb.stats();
    const reads = runbookRequests(stats.events).filter((e) => e.startedAt >= startedAt);
    expect(reads).toHaveLength(7);
    expect(reads.reduce((sum, e) => sum + e.bytesOut, 0)).toBeLessThanOrEqual(32 * 1024);
    expect(stats.ssh).toMatchObject({ connections: 1, execChannels: 1 });
  });

  it('a refresh with every list full stays under 32 KB, and says which per-type counts are partial', async () => {
    await sb.scenario('healthy');
    await sb.worker('stop');
    await sb.sql(
      `insert into hd_ingestion_jobs (job_type, status, attempts, created_at, started_at, finished_at)
       select 'import_assets_jsonl', s.status, 1, now() - interval '2 min',
              case when s.status = 'queued' then null else now() - interval '1 min' end,
              case when s.status in ('done', 'failed') then now() - interval '30 s' end
       from (values ('queued', 300), ('running', 100), ('failed', 100), ('done', 100)) s(status, n),
            generate_series(1, s.n)`,
    );
    await sb.resetStats();
    const startedAt = Date.now();
    const r = await runRunbook('watch', ['--config', sb.envFile, '--once', '--json', '-'], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    const doc = json(r) as WatchJson & {
      byJobType: Record<string, { sampled: number; total: number; complete: boolean }>;
    };
    const table = await sb.sql<{ status: string; n: number }>(
      'select status, count(*)::int as n from hd_ingestion_jobs group by status',
    );
    for (const row of table) expect(doc.counts[row.status], row.status).toBe(row.n);
    expect(doc.byJobType.queued).toMatchObject({ sampled: 100, total: 300, complete: false });
    expect(r.stderr).toContain('(among the 100 oldest of 300)');
    const reads = runbookRequests((await sb.stats()).events).filter((e) => e.startedAt >= startedAt);
    expect(reads).toHaveLength(7);
    expect(reads.reduce((sum, e) => sum + e.bytesOut, 0)).toBeLessThanOrEqual(32 * 1024);
  });

  it('--once exits 1 when the queue is stalled: queued over the rule and the worker down', async () => {
    await sb.scenario('worker-down');
    // The jobs the scenario had the worker finish first: an hour ago, so nothing is done in the window.
    await sb.sql(
      "update hd_ingestion_jobs set finished_at = now() - interval '1 hour', started_at = now() - interval '61 min' where status = 'done'",
    );
    const r = await runRunbook('watch', ['--config', sb.envFile, '--once', '--json', '-'], { env: env() });
    expect(r.code, r.stderr).toBe(1);
    expect(json(r)).toMatchObject({ stalled: true, exitCode: 1, eta: { state: 'not-draining' } });
    expect(r.stderr).toContain('STALLED');
  });

  it('in a terminal: redrawn in place every second; Ctrl-C after two refreshes exits 0 and leaves no process', async () => {
    await sb.scenario('healthy');
    await sb.resetStats();
    const twice = /watch · http[\s\S]*watch · http/;
    const { code, screen, unanswered } = await inPty(
      'watch' as RunbookName,
      ['--config', sb.envFile, '--every', '1'],
      [{ when: twice, send: '\x03' }],
      env(),
    );
    expect(unanswered).toBe(0);
    expect(code, screen).toBe(0);
    expect(screen).toContain('\x1b[H\x1b[2J');
    expect(screen).toContain('Ctrl-C to leave');
    expect(screen).toMatch(/watched .* \(\d+ refreshes\): backlog \d+ → \d+/);
    expect(leftWatches(sb.envFile)).toEqual([]);
    // The whole watch used one SSH connection and one exec channel, its bash reading each refresh's command; gone
    // with the watch.
    const { ssh } = await sb.stats();
    expect(ssh.connections).toBe(1);
    expect(ssh.execChannels).toBe(1);
    expect(await noneInSparkHome()).toEqual([]);
  });

  it('debug-stuck-jobs --watch: after the diagnosis and its report, the watch on the same SSH connection', async () => {
    await sb.scenario('circular-metadata');
    await sb.resetStats();
    const report = path.join(tempDir('hd-watch-report-'), 'report.json');
    const w = startWatch(['--config', sb.envFile, '--watch', '--ci', '--json', report], 'debug-stuck-jobs');
    try {
      await until(
        w.out,
        (t) => /\(exit 1\)[\s\S]*watch · http[\s\S]*watch · http/.test(t),
        'two refreshes after the verdict',
      );
      w.child.kill('SIGINT');
      // Ctrl-C is how the live view ends: the diagnosis's own exit code stands (1: its findings), not 3.
      expect(await w.done).toBe(1);
    } finally {
      w.child.kill('SIGKILL');
    }
    expect(w.out()).toMatch(/^watched .* \(\d+ refreshes\): backlog \d+ → \d+/m);
    // The diagnosis's report, not the watch's.
    expect(JSON.parse(readFileSync(report, 'utf8'))).toMatchObject({ runbook: 'debug-stuck-jobs', exitCode: 1 });
    const { ssh } = await sb.stats();
    // The diagnosis's probe, then the watch's one channel for all its refreshes.
    expect(ssh.connections).toBe(1);
    expect(ssh.execChannels).toBe(2);
    expect(await noneInSparkHome()).toEqual([]);
  });

  it('three refreshes over one connection open exactly one exec channel, and leave no process on Spark', async () => {
    await sb.scenario('healthy');
    await sb.resetStats();
    const r = await runRunbook('watch', ['--config', sb.envFile, '--every', '1', '--for', '2', '--ci'], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    const text = `${r.stdout}\n${r.stderr}`;
    expect(text).toMatch(/\(3 refreshes\)/);
    expect(text.match(/^worker: pid \d+, up /gm), text).toHaveLength(3);
    expect((await sb.stats()).ssh).toMatchObject({ connections: 1, execChannels: 1 });
    expect(await noneInSparkHome()).toEqual([]);
  });

  it.each([
    ['ssh-drop-output', { kind: 'drop-mid-command', afterBytes: 200 }, /^worker: the connection to Spark was lost/m],
    [
      'ssh-no-procps',
      { kind: 'missing-command', commands: ['ps', 'pgrep'] },
      /^worker: ps, pgrep not installed on Spark/m,
    ],
  ])(
    '%s: each refresh says the worker is unknown and why, the watch goes on, nothing is left on Spark',
    async (_name, fault, says) => {
      await sb.scenario('healthy');
      const r = await withControls(sb, { sshFault: fault }, () =>
        runRunbook('watch', ['--config', sb.envFile, '--every', '1', '--for', '1', '--ci'], { env: env() }),
      );
      const text = `${r.stdout}\n${r.stderr}`;
      expect(r.code, text).toBe(0);
      expect(text).toMatch(/\(2 refreshes\)/);
      expect(text.match(new RegExp(says.source, 'gm')), text).toHaveLength(2);
      expect(text).not.toMatch(/^worker: (pid|no worker)/m);
      expect(await noneInSparkHome()).toEqual([]);
    },
  );

  it('ssh-drop: once the connection is cut, every refresh says so, and the watch goes on to its end', async () => {
    // The sandbox cuts the connection 100 ms into the command: a refresh quicker than that may still answer before
    // (timing, not a fault of the watch); every one after the cut is unknown, with why.
    await sb.scenario('healthy');
    const r = await withControls(sb, { sshFault: { kind: 'drop-mid-command' } }, () =>
      runRunbook('watch', ['--config', sb.envFile, '--every', '1', '--for', '1', '--ci'], { env: env() }),
    );
    const text = `${r.stdout}\n${r.stderr}`;
    expect(r.code, text).toBe(0);
    expect(text).toMatch(/\(2 refreshes\)/);
    const lines = (text.match(/^worker: .*/gm) ?? []).map((l) =>
      l.startsWith('worker: pid ') ? 'seen' : l.startsWith('worker: the connection to Spark was lost') ? 'lost' : l,
    );
    expect(lines.join(' '), text).toMatch(/^(seen )?lost( lost)*$/);
    expect(await noneInSparkHome()).toEqual([]);
  });

  it('--help prints the usage, the flags and the exit codes', async () => {
    const r = await runRunbook('watch', ['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: npx zx runbooks/watch.mts');
    expect(r.stdout).toContain('--every SECONDS');
    expect(r.stdout).toContain('Exit codes:');
  });
});

describe("the watch's HTTP connections", () => {
  // The db client the watch opens (lib/flows/watch.ts), against the sandbox's API, which counts the TCP connections
  // it accepts. The worker is stopped: its own polls would open connections too.
  const watchDb = () =>
    lazyJobsDb({
      url: sb.info.cloud.url,
      key: sb.info.cloud.serviceRoleKey,
      timeoutMs: 15_000,
      sleep: realClock.sleep,
      now: () => performance.now(),
      keepAliveMs: keepAliveFor(5_000),
    });
  const opened = async () => (await sb.stats()).httpConnections.cloud ?? 0;
  const refreshOk = async (db: JobsDb) => {
    const r = await db.watchReads({ since: new Date(Date.now() - 3_600_000), limit: 100 });
    expect(r.ok, r.ok ? '' : r.failure.message).toBe(true);
  };

  it('refreshes reuse the seven connections of the first, HEAD counts included and past an idle 5 s', async () => {
    await sb.worker('stop');
    const db = watchDb();
    const before = await opened();
    try {
      await refreshOk(db);
      expect(await opened()).toBeLessThanOrEqual(before + 7);
      // The watch's default interval, once: longer than the 4 s Node's fetch keeps an idle connection.
      await realClock.sleep(5_000);
      await refreshOk(db);
      expect(await opened()).toBeLessThanOrEqual(before + 7);
      // Three more, as a fast --every makes them: the three HEAD counts keep their connections too (Node's fetch alone
      // closes them, 3 more per refresh). A moment between refreshes, as the watch always has: a connection goes back
      // to the pool a tick after its answer, and a refresh started at once could find it still taken (timing, not reuse).
      for (let i = 0; i < 3; i++) {
        await realClock.sleep(100);
        await refreshOk(db);
      }
      expect(await opened()).toBeLessThanOrEqual(before + 7);
    } finally {
      await db.close?.();
    }
  }, 30_000);
});
