/**
 * HD_TEST_SUPABASE_URL mode end to end: a sandbox is pointed at as if it were someone's Supabase (its URL, its JWT
 * keys, the connection string of its PostgreSQL) and the qualifying files run against it in a vitest of their own.
 * They pass there, the tests that need the sandbox's switches are skipped with their reason (and only those), no
 * sandbox of their own is started, and the rows and functions they made are gone afterwards while the rows they did
 * not make are as they were.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { processesUnder } from '../../sandbox/processes.ts';
import { sandboxDbUrl } from '../helpers/external.ts';
import { tempDir } from '../helpers/run.ts';
import { cleanEnv, ROOT, type Sandbox, startSandbox } from '../helpers/sandbox.ts';

const VITEST = path.join(path.dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
/** The files that qualify (README, "Against a real Supabase"). */
const FILES = [
  'test/integration/queue-reads.test.ts',
  'test/integration/rest-api.test.ts',
  'test/integration/requeue.test.ts',
];

interface JsonResults {
  testResults: Array<{ name: string; assertionResults: Array<{ fullName: string; status: string }> }>;
}

function innerVitest(tmp: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      VITEST,
      'run',
      ...FILES,
      // dot: a failure's own error in the output (shown when the inner run fails); then the closing summary.
      '--reporter=dot',
      '--reporter=./test/reporters/summary.ts',
      '--reporter=json',
      `--outputFile.json=${path.join(tmp, 'results.json')}`,
    ],
    {
      cwd: ROOT,
      env: { ...cleanEnv(env), TMPDIR: tmp, XDG_STATE_HOME: path.join(tmp, 'state') },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out })));
}

/** Every row of the table, as a comparable text (the inner run must leave exactly these). */
async function tableState(sb: Sandbox): Promise<string[]> {
  const rows = await sb.sql<{ row: string }>(
    'select row_to_json(j)::text as row from public.hd_ingestion_jobs j order by id',
  );
  return rows.map((r) => r.row);
}

let sb: Sandbox;

beforeAll(async () => {
  sb = await startSandbox();
  // Someone else's Supabase has no worker of ours polling it: nothing claims the jobs the tests plant.
  await sb.worker('stop');
  // Someone else's rows, with an error the requeue tests' filters could match were they not scoped.
  await sb.sql(
    `insert into public.hd_ingestion_jobs (account_id, job_type, status, attempts, error, finished_at)
     select gen_random_uuid(), t, 'failed', 1, 'OSError: [Errno 28] No space left on device', now()
     from unnest(array['filter_test', 'ci_test', 'race_test', 'reads_test', 'x']) t`,
  );
});

describe('HD_TEST_SUPABASE_URL mode', () => {
  it('runs the qualifying tests against the given Supabase, skips only the sandbox-bound ones with their reason, and leaves the rows it did not make alone', async () => {
    const before = await tableState(sb);
    const tmp = tempDir('hd-external-run-');
    // As root, a sandbox's PostgreSQL runs as `postgres`; the inner run starts none, but its folder is the same kind.
    chmodSync(tmp, 0o711);
    await sb.resetStats();
    const { code, out } = await innerVitest(tmp, {
      HD_TEST_SUPABASE_URL: sb.info.cloud.url,
      HD_TEST_SUPABASE_SERVICE_ROLE_KEY: sb.info.cloud.serviceRoleKey,
      HD_TEST_SUPABASE_ANON_KEY: sb.info.cloud.anonKey,
      HD_TEST_SUPABASE_DB_URL: sandboxDbUrl(sb),
    });
    expect(code, out).toBe(0);

    const results = JSON.parse(readFileSync(path.join(tmp, 'results.json'), 'utf8')) as JsonResults;
    const tests = results.testResults.flatMap((f) => f.assertionResults);
    const passed = tests.filter((t) => t.status === 'passed').map((t) => t.fullName);
    const skipped = tests.filter((t) => t.status !== 'passed');
    expect(skipped.every((t) => t.status === 'skipped')).toBe(true);
    // What the mode is for: PostgREST's answers and the requeue through the real table and its function.
    expect(passed).toEqual(
      expect.arrayContaining([
        "the queue reads against the table the diagnosis's snapshot counts what SQL counts, and its oldest queued job is the table's oldest",
        "the queue reads against the table the watch's refresh counts what SQL counts",
        'reads through supabase-js counts with head: true',
        'writes through supabase-js a conditional update returns the changed row, and nothing once its guard fails',
        'rpc calls a set-returning function, with a default argument',
        'requeue against the sandbox requeues a filtered set through the server function and leaves the rest alone',
        'requeue in-process with the real db port skips and reports a job the worker claims between preview and apply (--rpc auto)',
      ]),
    );
    expect(passed.length).toBeGreaterThan(skipped.length);
    // Each skip named in the closing summary with the switch it needs, and counted there.
    const skipLines = out.split('\n').filter((l) => /^ {2}\S.*\((test\/integration\/[^)]+)\): /.test(l));
    expect(skipLines).toHaveLength(skipped.length);
    for (const l of skipLines) expect(l).toMatch(/: needs the sandbox: .+ \(HD_TEST_SUPABASE_URL mode\)$/);
    expect(skipLines.join('\n')).toContain('its fault switches');
    expect(out).toMatch(new RegExp(`^tests: ${passed.length} passed, 0 failed, ${skipped.length} skipped$`, 'm'));

    // The tests went to this Supabase, and started no sandbox of their own.
    expect((await sb.stats()).httpWrites).toBeGreaterThan(0);
    expect(processesUnder(tmp)).toEqual([]);
    // What they planted is gone, what they did not plant is as it was, and their functions were dropped.
    expect(await tableState(sb)).toEqual(before);
    expect(
      await sb.sql(
        "select proname from pg_proc where proname like 'hd\\_test\\_%' and pronamespace = 'public'::regnamespace",
      ),
    ).toEqual([]);
  }, 300_000);
});
