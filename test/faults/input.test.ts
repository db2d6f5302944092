/**
 * Bad input: flags and env vars of the wrong type, empty, oversized, or carrying an injection (`;`, `$()`,
 * backticks, quotes, newlines, `&`, `,`, `)`) aimed at the remote shell or at PostgREST's filters. Each is rejected
 * (exit 2, one line naming the flag or variable, with a fix, before anything is read) or quoted (the run goes on,
 * the value arrives literally). Every injection tries to create a marker file; it must never exist.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { escapeLike } from '../../lib/io/jobs-db.ts';
import { type Sandbox, startSandbox } from '../helpers/sandbox.ts';
import {
  envVariant,
  expectClear,
  faultCase,
  insertFailed,
  NO_GATE,
  observe,
  RUNBOOKS,
  type RunbookName,
  requeueResults,
  run,
  runbookRequests,
  runbookWrites,
  tempDir,
} from './harness.ts';

let sb: Sandbox;
/** Where the markers would appear; made while the cases are collected, since their values name it. */
const markDir = tempDir('marks');
/** Failed jobs of this type exist; the worker leaves them alone. */
const JOB_TYPE = 'input_case';

beforeAll(async () => {
  sb = await startSandbox();
  await insertFailed(sb, 3, JOB_TYPE);
});

afterAll(async () => {
  await sb?.down();
});

let marks = 0;
/** A fresh marker path: if an injection runs, it creates this file. */
function mark(): string {
  return path.join(markDir, `pwned-${++marks}`);
}

/**
 * The injection shapes the issue names, each trying to `touch` the marker; `$IFS` stands for the space that would get
 * the value rejected for whitespace before it could reach a shell.
 */
function injections(): Array<[label: string, value: string]> {
  const shapes: Array<[string, (m: string) => string]> = [
    [';', (m) => `x;touch$IFS${m}`],
    ['$()', (m) => `$(touch$IFS${m})`],
    ['backticks', (m) => `\`touch$IFS${m}\``],
    ["' quote", (m) => `x';touch$IFS${m};'`],
    ['" quote', (m) => `x";touch$IFS${m};"`],
    ['newline', (m) => `x\ntouch ${m}`],
    ['&', (m) => `x&touch$IFS${m}`],
    [',', () => 'x,status.eq.done'],
    [')', () => 'x)or(status.eq.done'],
  ];
  // A marker of its own per value, so a command that ran is pinned on the value that ran it.
  return shapes.map(([label, make]) => [label, make(mark())]);
}

const OVERSIZED = '9'.repeat(100_000);

/**
 * Node (20 and later) scans the whole command line for its own `--env-file`, even after the script, and exits 9
 * with "node: FILE: not found" before the runbook starts (nodejs/node#54232): no fix line, exit 9 not 2.
 */
const NODE_ENV_FILE_ISSUE =
  'node itself takes --env-file after the script too: exit 9, "node: FILE: not found", before the runbook runs (nodejs/node#54232)';

interface Case {
  runbook: RunbookName;
  name: string;
  args?: string[];
  /** Process environment (the env file's value for the same name is removed). */
  env?: Record<string, string>;
  /** What the runbook must say: rejected = exit 2 and this line, naming the flag or variable. */
  says: RegExp;
  code?: number;
  finding?: string;
  /** The marker that must not exist afterwards. */
  marker?: string;
  /** Rejected, but only after the config was read and Spark probed (stdout is not empty). */
  late?: boolean;
  known?: string;
}

/** An env file without the names given in the process environment, so the process environment is what is read. */
function envFileWithout(names: readonly string[]): string {
  return envVariant(sb, Object.fromEntries(names.map((n) => [n, undefined])));
}

function rejected(runbook: RunbookName, name: string, args: string[], says: RegExp, marker?: string): Case {
  return { runbook, name, args, says, code: 2, ...(marker ? { marker } : {}) };
}

function rejectedEnv(runbook: RunbookName, name: string, env: Record<string, string>, says: RegExp): Case {
  return { runbook, name, env, says, code: 2 };
}

// ---- flags every runbook takes --------------------------------------------------------------------------------

const COMMON: Case[] = RUNBOOKS.flatMap((rb) => [
  rejected(rb, '--timeout abc (not a number)', ['--timeout', 'abc'], /--timeout must be seconds/),
  rejected(rb, '--timeout 0', ['--timeout', '0'], /--timeout must be seconds/),
  rejected(rb, '--timeout "" (empty)', ['--timeout', ''], /--timeout must be seconds/),
  rejected(rb, '--timeout 1e3 (exponent)', ['--timeout', '1e3'], /--timeout must be seconds/),
  rejected(rb, '--timeout of 100 kB', ['--timeout', OVERSIZED], /--timeout must be seconds/),
  rejected(rb, '--timeout without its value', ['--timeout'], /usage: .*--timeout/),
  rejected(rb, 'an unknown flag (--bogus)', ['--bogus'], /usage: Unknown option '--bogus'/),
  rejected(rb, 'a stray positional argument', ['extra'], /usage: .*extra/),
  ((m) => ({
    ...rejected(
      rb,
      '--env-file naming no file, with $()',
      ['--env-file', `/nonexistent/$(touch ${m})`],
      /--env-file .*: no such file/,
      m,
    ),
    known: NODE_ENV_FILE_ISSUE,
  }))(mark()),
  // --config is the runbooks' own flag: Node never reads it, so a missing file gets the runbook's line and fix.
  ((m) =>
    rejected(
      rb,
      '--config naming no file, with $()',
      ['--config', `/nonexistent/$(touch ${m})`],
      /config file .*: no such file/,
      m,
    ))(mark()),
]);

// ---- debug-stuck-jobs' own flags ------------------------------------------------------------------------------

const DEBUG: Case[] = [
  rejected(
    'debug-stuck-jobs',
    '--queued-minutes abc',
    ['--queued-minutes', 'abc'],
    /--queued-minutes must be a whole number/,
  ),
  rejected(
    'debug-stuck-jobs',
    '--queued-minutes "" (empty)',
    ['--queued-minutes', ''],
    /--queued-minutes must be a whole number/,
  ),
  rejected('debug-stuck-jobs', '--queued-minutes -5', ['--queued-minutes', '-5'], /usage: .*--queued-minutes/),
  rejected(
    'debug-stuck-jobs',
    '--queued-minutes of 100 kB',
    ['--queued-minutes', OVERSIZED],
    /--queued-minutes must be a whole number/,
  ),
  ((m) =>
    rejected(
      'debug-stuck-jobs',
      '--running-minutes with $()',
      ['--running-minutes', `$(touch ${m})`],
      /--running-minutes must be a whole number/,
      m,
    ))(mark()),
  ((m) =>
    rejected(
      'debug-stuck-jobs',
      '--max-attempts with ; and backticks',
      ['--max-attempts', `3;\`touch ${m}\``],
      /--max-attempts must be a whole number/,
      m,
    ))(mark()),
  rejected(
    'debug-stuck-jobs',
    '--job-type-rule with a word for a number',
    ['--job-type-rule', 'x:running=abc'],
    /--job-type-rule: /,
  ),
  rejected('debug-stuck-jobs', '--job-type-rule "" (empty)', ['--job-type-rule', ''], /--job-type-rule is empty/),
  rejected(
    'debug-stuck-jobs',
    '--job-type-rule with ) and ,',
    ['--job-type-rule', 'a)or(b:queued=1,,'],
    /--job-type-rule: /,
  ),
  ((m) =>
    rejected(
      'debug-stuck-jobs',
      '--patterns naming no file, with $()',
      ['--patterns', `/nonexistent/$(touch ${m}).json`],
      /patterns file .* does not exist/,
      m,
    ))(mark()),
];

// ---- the laptop config (one runbook: all three load it the same way) ------------------------------------------

const CONFIG: Case[] = [
  rejectedEnv('diagnose-env', 'SUPABASE_URL not a URL', { SUPABASE_URL: 'not a url' }, /SUPABASE_URL/),
  rejectedEnv(
    'diagnose-env',
    'SUPABASE_URL of 100 kB',
    { SUPABASE_URL: `https://${'a'.repeat(100_000)}.supabase.co` },
    /SUPABASE_URL/,
  ),
  rejectedEnv('diagnose-env', 'SUPABASE_URL javascript:', { SUPABASE_URL: 'javascript:alert(1)' }, /SUPABASE_URL/),
  rejectedEnv(
    'diagnose-env',
    'SUPABASE_SERVICE_ROLE_KEY too short',
    { SUPABASE_SERVICE_ROLE_KEY: 'short' },
    /SUPABASE_SERVICE_ROLE_KEY/,
  ),
  rejectedEnv(
    'diagnose-env',
    'SUPABASE_SERVICE_ROLE_KEY of 100 kB',
    { SUPABASE_SERVICE_ROLE_KEY: `eyJ${'A'.repeat(100_000)}` },
    /SUPABASE_SERVICE_ROLE_KEY/,
  ),
  rejectedEnv(
    'diagnose-env',
    'SUPABASE_SERVICE_ROLE_KEY with $()',
    { SUPABASE_SERVICE_ROLE_KEY: '$(touch x)' },
    /SUPABASE_SERVICE_ROLE_KEY/,
  ),
  rejectedEnv(
    'diagnose-env',
    'SUPABASE_PROJECT_REF with $()',
    { SUPABASE_PROJECT_REF: '$(touch x)' },
    /SUPABASE_PROJECT_REF/,
  ),
  rejectedEnv('diagnose-env', 'SPARK_PORT abc', { SPARK_PORT: 'abc' }, /SPARK_PORT must be a whole number/),
  rejectedEnv('diagnose-env', 'SPARK_PORT 0', { SPARK_PORT: '0' }, /SPARK_PORT must be a whole number/),
  rejectedEnv('diagnose-env', 'SPARK_PORT 65536', { SPARK_PORT: '65536' }, /SPARK_PORT must be a whole number/),
  rejectedEnv('diagnose-env', 'SPARK_PORT with ;', { SPARK_PORT: '22;id' }, /SPARK_PORT must be a whole number/),
  rejectedEnv('diagnose-env', 'SPARK_USER with $()', { SPARK_USER: '$(id)' }, /SPARK_USER is not a valid user name/),
  rejectedEnv(
    'diagnose-env',
    'SPARK_USER with ; and a space',
    { SPARK_USER: 'spark; id' },
    /SPARK_USER is not a valid user name/,
  ),
  rejectedEnv(
    'diagnose-env',
    'SPARK_HOST_KEY_SHA256 garbage',
    { SPARK_HOST_KEY_SHA256: 'garbage' },
    /SPARK_HOST_KEY_SHA256/,
  ),
  rejectedEnv(
    'diagnose-env',
    'SPARK_WORKER_DIR with a newline',
    { SPARK_WORKER_DIR: '~/srv/x\ntouch y' },
    /SPARK_WORKER_DIR contains a line break/,
  ),
  rejectedEnv(
    'diagnose-env',
    'STUCK_QUEUED_MINUTES abc',
    { STUCK_QUEUED_MINUTES: 'abc' },
    /STUCK_QUEUED_MINUTES must be a whole number/,
  ),
  rejectedEnv(
    'diagnose-env',
    'STUCK_RUNNING_MINUTES of 100 kB',
    { STUCK_RUNNING_MINUTES: OVERSIZED },
    /STUCK_RUNNING_MINUTES must be a whole number/,
  ),
  rejectedEnv('diagnose-env', 'MAX_ATTEMPTS -1', { MAX_ATTEMPTS: '-1' }, /MAX_ATTEMPTS must be a whole number/),
  rejectedEnv(
    'diagnose-env',
    'RUNBOOK_OPERATOR with a newline',
    { RUNBOOK_OPERATOR: 'alice\n## injected' },
    /RUNBOOK_OPERATOR contains control characters/,
  ),
  rejectedEnv(
    'diagnose-env',
    'APP_SUPABASE_URL not a URL',
    { APP_SUPABASE_URL: 'javascript:alert(1)' },
    /APP_SUPABASE_URL/,
  ),
  rejectedEnv(
    'debug-stuck-jobs',
    'HD_RUNBOOKS_PATTERNS_FILE naming no file',
    { HD_RUNBOOKS_PATTERNS_FILE: '/nonexistent/p.json' },
    /patterns file .* does not exist/,
  ),
];

// ---- requeue's own flags --------------------------------------------------------------------------------------

const RQ = (name: string, args: string[], says: RegExp, marker?: string) =>
  rejected('requeue', name, args, says, marker);
const REQUEUE: Case[] = [
  RQ('--id not a UUID', ['--id', 'not-a-uuid'], /--id "not-a-uuid" is not a job id/),
  RQ('--id "" (empty)', ['--id', ''], /--id is empty/),
  RQ('--id of 100 kB', ['--id', OVERSIZED], /--id ".*" is not a job id/),
  RQ('--id a UUID followed by )', ['--id', '3fa85f64-5717-4562-b3fc-2c963f66afa6)'], /is not a job id/),
  RQ(
    '--id a UUID, then or=(…) after a comma',
    ['--id', '3fa85f64-5717-4562-b3fc-2c963f66afa6,or=(status.eq.done)'],
    /is not a job id/,
  ),
  RQ('--status bogus', ['--status', 'bogus'], /--status/),
  RQ('--status failed)', ['--status', 'failed)'], /--status/),
  RQ('--account not a UUID', ['--account', 'x;id'], /--account/),
  RQ('--error an invalid regex', ['--error', '/[/'], /--error/),
  RQ('--older-than abc', ['--older-than', 'abc'], /--older-than/),
  RQ('--older-than "" (empty)', ['--older-than', ''], /--older-than/),
  RQ('--newer-than 1d;id', ['--newer-than', '1d;id'], /--newer-than/),
  RQ('--limit 0', ['--limit', '0'], /--limit must be a whole number/),
  RQ('--limit -1', ['--limit', '-1'], /usage: .*--limit/),
  RQ('--limit 1e9', ['--limit', '1e9'], /--limit must be a whole number/),
  RQ('--limit of 100 kB', ['--limit', OVERSIZED], /--limit must be a whole number/),
  RQ('--reason "" (empty)', ['--reason', ''], /--reason is empty/),
  RQ('--reason with a newline', ['--reason', 'fixed\nby: mallory'], /--reason must be one line/),
  RQ('--reason of 600 characters', ['--reason', 'r'.repeat(600)], /--reason is longer than 500 characters/),
  RQ('--by with a newline', ['--by', 'alice\nmallory'], /--by must be one line/),
  RQ('--canary abc', ['--canary', 'abc'], /--canary must be a whole number/),
  RQ('--canary-timeout -1', ['--canary-timeout', '-1'], /usage: .*--canary-timeout/),
  RQ('--verify abc', ['--verify', 'abc'], /--verify must be a whole number/),
  RQ('--concurrency 0', ['--concurrency', '0'], /--concurrency must be a whole number/),
  RQ('--rpc bogus', ['--rpc', 'bogus'], /--rpc "bogus" is not auto, off or only/),
  {
    ...RQ('--audit "" (empty)', ['--audit', '', '--id', '3fa85f64-5717-4562-b3fc-2c963f66afa6'], /--audit is empty/),
    late: true,
  },
  RQ('--yes without --apply', ['--yes'], /--yes without --apply/),
  ...injections().map(([label, value]) => RQ(`--job-type with ${label}`, ['--job-type', value], /--job-type/)),
];

describe.concurrent('bad input is rejected before anything is read', () => {
  for (const c of [...COMMON, ...DEBUG, ...CONFIG, ...REQUEUE]) {
    faultCase(
      {
        group: 'Bad input',
        runbook: c.runbook,
        name: c.name,
        expected: c.late
          ? 'exit 2 · names it, with a fix; nothing written'
          : 'exit 2 · names it, with a fix; nothing read',
        ...(c.known ? { known: c.known } : {}),
      },
      async () => {
        const envFile = c.env ? envFileWithout(Object.keys(c.env)) : sb.envFile;
        const args =
          c.args?.includes('--env-file') || c.args?.includes('--config')
            ? c.args
            : ['--env-file', envFile, ...(c.args ?? [])];
        const r = await run(c.runbook, args, { env: c.env, json: false });
        expectClear(r, { code: c.code ?? 2, says: c.says });
        // Rejected before any check ran: nothing on stdout, a short answer on stderr (the value is never echoed whole).
        if (!c.late) expect(r.stdout).toBe('');
        expect(r.stderr.length).toBeLessThan(1_000);
        if (c.marker) expect(existsSync(c.marker)).toBe(false);
      },
    );
  }
});

// ---- values that are legal, or caught later, and must arrive literally ----------------------------------------

describe('hostile values that reach Spark or the API arrive quoted', () => {
  for (const [label, value] of injections()) {
    const m = value.match(/pwned-\d+/)?.[0];
    // Both spellings the probe quotes differently: under the remote $HOME, and absolute.
    for (const [runbook, dir] of [
      ['debug-stuck-jobs', `~/srv/${value}`],
      ['diagnose-env', `/srv/${value}`],
    ] as const) {
      faultCase(
        {
          group: 'Bad input',
          runbook,
          name: `SPARK_WORKER_DIR ${dir.startsWith('~') ? '~/…' : '/…'} with ${label}`,
          expected: 'quoted: worker-dir-missing, or rejected; no command runs',
        },
        async () => {
          const r = await run(runbook, ['--env-file', envFileWithout(['SPARK_WORKER_DIR'])], {
            env: { SPARK_WORKER_DIR: dir },
          });
          if (value.includes('\n')) expectClear(r, { code: 2, says: /SPARK_WORKER_DIR contains a line break/ });
          else
            expectClear(r, {
              code: 1,
              says: /the worker folder .* does not exist on Spark/,
              finding: 'worker-dir-missing',
            });
          if (m) expect(existsSync(path.join(markDir, m))).toBe(false);
        },
      );
    }
    faultCase(
      {
        group: 'Bad input',
        runbook: 'diagnose-env',
        name: `SPARK_HOST with ${label}`,
        expected: 'rejected, or exit 2 spark-unreachable; no command runs',
      },
      async () => {
        const r = await run('diagnose-env', ['--env-file', envFileWithout(['SPARK_HOST'])], {
          env: { SPARK_HOST: value },
        });
        expectClear(r, { code: 2, says: /SPARK_HOST|cannot resolve|Connect to Spark/ });
        if (m) expect(existsSync(path.join(markDir, m))).toBe(false);
      },
    );
    faultCase(
      {
        group: 'Bad input',
        runbook: 'requeue',
        name: `--error with ${label} (a PostgREST filter value)`,
        expected: 'quoted: matched literally, selects nothing, one ilike on the wire',
      },
      async () => {
        await sb.resetStats();
        const r = await run('requeue', ['--env-file', sb.envFile, '--error', value, ...NO_GATE]);
        expect(r.code, r.stdout + r.stderr).toBe(0);
        expect(r.stdout).toMatch(/0 jobs found/);
        const reads = runbookRequests((await sb.stats()).events).filter((e) => e.path.endsWith('/hd_ingestion_jobs'));
        expect(reads.length).toBeGreaterThan(0);
        for (const e of reads) {
          const q = new URLSearchParams(e.query ?? '');
          // The value is one ilike filter on `error`: no `or`, no extra status, nothing cut at a comma or a paren.
          expect([...q.keys()].sort()).toEqual(['error', 'limit', 'order', 'select', 'status']);
          expect(q.get('status')).toBe('eq.failed');
          expect(q.getAll('error')).toHaveLength(1);
          expect(q.get('error')).toBe(`ilike.%${escapeLike(value)}%`);
        }
        expect(runbookWrites((await sb.stats()).events)).toEqual([]);
        if (m) expect(existsSync(path.join(markDir, m))).toBe(false);
      },
    );
  }

  faultCase(
    {
      group: 'Bad input',
      runbook: 'requeue',
      name: '--error with LIKE wildcards (% _ \\ *)',
      expected: 'matched literally: selects nothing (not every job)',
    },
    async () => {
      for (const value of ['%', '_', '\\', '*', '%%%']) {
        const r = await run('requeue', ['--env-file', sb.envFile, '--error', value, ...NO_GATE]);
        expect(r.code, r.stdout + r.stderr).toBe(0);
        expect(r.stdout).toMatch(/0 jobs found/);
      }
      const r = await run('requeue', ['--env-file', sb.envFile, '--error', 'circular REFERENCE', ...NO_GATE]);
      expect(r.stdout).toMatch(/3 jobs found/);
      observe('the same text in another case matches the 3 jobs');
    },
  );

  faultCase(
    {
      group: 'Bad input',
      runbook: 'requeue',
      name: '--id with 3 real ids and a duplicate, comma-separated',
      expected: 'the ids in one quoted in.(…) list; dry run, nothing written',
    },
    async () => {
      const ids = (
        await sb.sql<{ id: string }>('select id from hd_ingestion_jobs where job_type = $1', [JOB_TYPE])
      ).map((x) => x.id);
      await sb.resetStats();
      const r = await run('requeue', [
        '--env-file',
        sb.envFile,
        '--id',
        `${ids.join(',')},${ids[0].toUpperCase()}`,
        ...NO_GATE,
      ]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/3 jobs found/);
      const plan = r.report?.plan as { writes: Array<{ jobId: string }> };
      expect(plan.writes.map((w) => w.jobId).sort()).toEqual([...ids].sort());
      const byId = runbookRequests((await sb.stats()).events).filter((e) => (e.query ?? '').includes('id=in.'));
      expect(byId.map((e) => new URLSearchParams(e.query).get('id'))).toEqual([
        expect.stringMatching(/^in\.\([0-9a-f-]{36}(,[0-9a-f-]{36}){2}\)$/),
      ]);
      expect(requeueResults(r)).toEqual([]);
    },
  );

  faultCase(
    {
      group: 'Bad input',
      runbook: 'debug-stuck-jobs',
      name: 'a patterns file that is not JSON',
      expected: 'exit 2 · names the file, with a fix',
    },
    async () => {
      const file = path.join(tempDir('patterns'), 'patterns.json');
      writeFileSync(file, '{ "patterns": [ { "id": "x", ');
      const r = await run('debug-stuck-jobs', ['--env-file', sb.envFile, '--patterns', file], { json: false });
      expectClear(r, { code: 2, says: /patterns\.json/ });
    },
  );

  faultCase(
    {
      group: 'Bad input',
      runbook: 'debug-stuck-jobs',
      name: 'a patterns file with an invalid regex',
      expected: 'exit 2 · names the pattern, with a fix',
    },
    async () => {
      const file = path.join(tempDir('patterns'), 'patterns.json');
      writeFileSync(
        file,
        JSON.stringify({
          patterns: [{ id: 'bad-re', title: 't', cause: 'c', fix: 'f', match: { error: ['(unclosed'] } }],
        }),
      );
      const r = await run('debug-stuck-jobs', ['--env-file', sb.envFile, '--patterns', file], { json: false });
      expectClear(r, { code: 2, says: /bad-re|match\.error/ });
    },
  );

  faultCase(
    {
      group: 'Bad input',
      runbook: 'debug-stuck-jobs',
      name: '--json into a folder that cannot exist',
      expected: 'exit 2 · could not write the report, with a fix',
    },
    async () => {
      const r = await run('debug-stuck-jobs', ['--env-file', sb.envFile, '--json', '/proc/version/report.json']);
      expectClear(r, { code: 2, says: /could not write the report/ });
    },
  );
});

describe('the config file is data', () => {
  /** The sandbox's config with a NODE_OPTIONS line that would load a script creating the marker. */
  function poisoned(m: string): string {
    const dir = tempDir('node-options');
    const script = path.join(dir, 'pwn.cjs');
    writeFileSync(script, `require('node:fs').writeFileSync(${JSON.stringify(m)}, 'ran')\n`);
    const file = path.join(dir, '.env');
    writeFileSync(file, `${readFileSync(sb.envFile, 'utf8')}NODE_OPTIONS=--require ${script}\n`);
    return file;
  }

  for (const runbook of RUNBOOKS) {
    faultCase(
      {
        group: 'Bad input',
        runbook,
        name: '--config FILE holding a NODE_OPTIONS=--require line',
        expected: 'the line is a value like any other: nothing it names runs',
      },
      async () => {
        const m = mark();
        const r = await run(runbook, ['--config', poisoned(m)]);
        expect(r.code, r.stderr).not.toBeNull();
        expect(r.stderr).not.toMatch(/no such file/);
        expect(existsSync(m)).toBe(false);
      },
    );
  }

  faultCase(
    {
      group: 'Bad input',
      runbook: 'diagnose-env',
      name: '--env-file FILE holding a NODE_OPTIONS=--require line',
      expected: 'the line is a value like any other: nothing it names runs',
      known:
        'node itself loads --env-file after the script too, and applies its NODE_OPTIONS (nodejs/node#54232): use --config',
    },
    async () => {
      const m = mark();
      await run('diagnose-env', ['--env-file', poisoned(m)]);
      expect(existsSync(m)).toBe(false);
    },
  );
});
