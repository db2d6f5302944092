/**
 * Secret scan: every runbook in every mode (CI, --json, --markdown and the step summary, --verbose, errors with
 * --verbose, interactive in a real pseudo-terminal with scripted answers, the requeue audit file), with the
 * sandbox's keys (random per sandbox) and the Spark SSH key. No output and no file the run leaves may contain a key,
 * nor its base64, base64url or URL-encoded form.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { sandboxDbUrl } from '../helpers/external.ts';
import { type Sandbox, startSandbox } from '../helpers/sandbox.ts';
import {
  envVariant,
  faultCase,
  inPty,
  insertFailed,
  NO_GATE,
  observe,
  RUNBOOKS,
  type RunbookName,
  run,
  tempDir,
  withControls,
} from './harness.ts';

let sb: Sandbox;

beforeAll(async () => {
  sb = await startSandbox({ scenario: 'demo' });
});

afterAll(async () => {
  await sb?.down();
});

/** Every key the sandbox holds, by name. */
function secrets(): Array<[name: string, value: string]> {
  const { cloud, local, spark } = sb.info;
  return [
    ['cloud service-role key', cloud.serviceRoleKey],
    ['cloud secret key', cloud.secretKey],
    ['cloud anon key', cloud.anonKey],
    ['cloud publishable key', cloud.publishableKey],
    ['local service-role key', local.serviceRoleKey],
    ['local anon key', local.anonKey],
    ['Spark SSH private key', readFileSync(spark.keyPath, 'utf8')],
    [
      "the database's password (SUPABASE_DB_URL)",
      readFileSync(path.join(sb.dir, 'pg', 'admin-password'), 'utf8').trim(),
    ],
  ];
}

/** The forms a key takes on its way through other tools. */
function forms(name: string, value: string): Array<[label: string, needle: string]> {
  const out: Array<[string, string]> = [];
  const add = (label: string, needle: string) => {
    if (needle.length >= 16 && !out.some(([, n]) => n === needle)) out.push([`${name} (${label})`, needle]);
  };
  for (const v of new Set([value, value.trim()])) {
    add('as is', v);
    add('base64', Buffer.from(v).toString('base64'));
    add('base64 unpadded', Buffer.from(v).toString('base64').replace(/=+$/, ''));
    add('base64url', Buffer.from(v).toString('base64url'));
    add('URL-encoded', encodeURIComponent(v));
  }
  const jwt = /^[\w-]+\.[\w-]+\.([\w-]+)$/.exec(value.trim());
  if (jwt) add('JWT signature', jwt[1]);
  if (value.includes('-----BEGIN')) {
    // A PEM body line by line: the first line is the same for every unencrypted OpenSSH key, so it says nothing.
    const body = value
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('-----'));
    for (const line of body.slice(1)) add('a PEM line', line.trim());
  }
  return out;
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => path.join(dir, f))
    .filter((f) => statSync(f).isFile());
}

/** Scans texts (name → content) for every form of every key; returns what leaked where. */
function leaks(texts: Record<string, string>): string[] {
  const found: string[] = [];
  const needles = secrets().flatMap(([name, value]) => forms(name, value));
  for (const [where, text] of Object.entries(texts)) {
    for (const [label, needle] of needles) if (text.includes(needle)) found.push(`${label} in ${where}`);
  }
  return found;
}

function expectNoLeak(texts: Record<string, string>): void {
  const found = leaks(texts);
  expect(found, found.join('\n')).toEqual([]);
  const bytes = Object.values(texts).reduce((n, t) => n + t.length, 0);
  observe(`${Object.keys(texts).length} outputs/files, ${Math.round(bytes / 1024)} kB scanned`);
}

/** Runs a runbook in `dir` as HOME (files it leaves are scanned), returning every text to scan. */
async function scanRun(
  runbook: RunbookName,
  args: string[],
  opts: { env?: Record<string, string>; envFile?: string } = {},
): Promise<{ texts: Record<string, string>; code: number | null }> {
  const dir = tempDir('secrets');
  const summary = path.join(dir, 'step-summary.md');
  const r = await run(runbook, ['--env-file', opts.envFile ?? sb.envFile, ...args], {
    env: { HOME: dir, XDG_STATE_HOME: path.join(dir, 'state'), GITHUB_STEP_SUMMARY: summary, ...opts.env },
    json: false,
  });
  const texts: Record<string, string> = { stdout: r.stdout, stderr: r.stderr };
  for (const f of filesUnder(dir)) texts[path.relative(dir, f)] = readFileSync(f, 'utf8');
  return { texts, code: r.code };
}

const MODES: Array<{ name: string; args: (dir: string) => string[] }> = [
  { name: 'CI, text', args: () => [] },
  { name: 'CI, --json -', args: () => ['--json', '-'] },
  {
    name: 'CI, --json FILE, --markdown FILE, GitHub step summary',
    args: (dir) => ['--json', path.join(dir, 'r.json'), '--markdown', path.join(dir, 'r.md')],
  },
  { name: '--verbose', args: () => ['--verbose'] },
];

describe('no key in any output or file', () => {
  faultCase(
    {
      group: 'Secrets',
      runbook: '(the scan itself)',
      name: 'a key planted in each form is found',
      expected: 'the scan reports every planted form',
    },
    async () => {
      const planted: Record<string, string> = {};
      for (const [name, value] of secrets()) {
        for (const [label, needle] of forms(name, value)) planted[label] = `some text ${needle} more text`;
      }
      const found = leaks(planted);
      for (const label of Object.keys(planted)) expect(found).toContain(`${label} in ${label}`);
      expect(leaks({ clean: `masked: ${sb.info.cloud.serviceRoleKey.slice(0, 3)}…` })).toEqual([]);
      observe(`${found.length} planted forms found`);
    },
  );

  for (const runbook of RUNBOOKS) {
    for (const mode of MODES) {
      faultCase(
        { group: 'Secrets', runbook, name: mode.name, expected: 'no key, in any form, in output or files' },
        async () => {
          const dir = tempDir('reports');
          const { texts } = await scanRun(runbook, mode.args(dir));
          for (const f of filesUnder(dir)) texts[path.basename(f)] = readFileSync(f, 'utf8');
          expectNoLeak(texts);
        },
      );
    }

    faultCase(
      {
        group: 'Secrets',
        runbook,
        name: 'error: Supabase rejects the key (401), --verbose',
        expected: 'no key in the error, the stack or the reports',
      },
      async () => {
        const dir = tempDir('reports');
        const { texts, code } = await withControls(
          sb,
          { httpFault: { api: 'cloud', kind: 'status', status: 401 } },
          () => scanRun(runbook, ['--verbose', '--markdown', path.join(dir, 'r.md')]),
        );
        expect(code).toBe(2);
        for (const f of filesUnder(dir)) texts[path.basename(f)] = readFileSync(f, 'utf8');
        expectNoLeak(texts);
      },
    );

    faultCase(
      {
        group: 'Secrets',
        runbook,
        name: 'error: SSH authentication fails, key given inline (SPARK_SSH_KEY), --verbose',
        expected: 'no key (Supabase or SSH) in any output',
      },
      async () => {
        const envFile = envVariant(sb, { SPARK_SSH_KEY_PATH: undefined });
        const { texts } = await withControls(sb, { sshFault: { kind: 'auth-fail' } }, () =>
          scanRun(runbook, ['--verbose', '--json', '-'], {
            envFile,
            env: { SPARK_SSH_KEY: readFileSync(sb.info.spark.keyPath, 'utf8') },
          }),
        );
        expectNoLeak(texts);
      },
    );

    faultCase(
      {
        group: 'Secrets',
        runbook,
        name: 'the secret key (sb_secret_) and the SSH key inline, --verbose --json -',
        expected: 'no key in any output',
      },
      async () => {
        const envFile = envVariant(sb, {
          SUPABASE_SERVICE_ROLE_KEY: undefined,
          SUPABASE_SECRET_KEY: sb.info.cloud.secretKey,
          SPARK_SSH_KEY_PATH: undefined,
        });
        const { texts } = await scanRun(runbook, ['--verbose', '--json', '-'], {
          envFile,
          env: { SPARK_SSH_KEY: readFileSync(sb.info.spark.keyPath, 'utf8') },
        });
        expectNoLeak(texts);
      },
    );
  }

  faultCase(
    {
      group: 'Secrets',
      runbook: 'diagnose-env',
      name: 'config errors: a key pasted into SUPABASE_URL, the SSH key into SPARK_SSH_KEY_PATH',
      expected: 'rejected (exit 2) without echoing the key',
    },
    async () => {
      const key = sb.info.cloud.serviceRoleKey;
      const texts: Record<string, string> = {};
      for (const [label, changes] of [
        ['key in the URL query', { SUPABASE_URL: `${sb.info.cloud.url}/rest/v1/?apikey=${key}` }],
        [
          'key as the URL password',
          { SUPABASE_URL: `https://user:${encodeURIComponent(key)}@${sb.info.cloud.ref}.supabase.co` },
        ],
        ['SSH key as a path', { SPARK_SSH_KEY_PATH: JSON.stringify(readFileSync(sb.info.spark.keyPath, 'utf8')) }],
      ] as const) {
        const r = await scanRun('diagnose-env', ['--verbose'], { envFile: envVariant(sb, changes) });
        expect(r.code).toBe(2);
        expect(r.texts.stderr).toMatch(/^error: .*\n {2}fix: /);
        for (const [k, v] of Object.entries(r.texts)) texts[`${label}: ${k}`] = v;
      }
      expectNoLeak(texts);
    },
  );

  faultCase(
    {
      group: 'Secrets',
      runbook: 'diagnose-env',
      name: 'SUPABASE_DB_URL: the catalog read, and a refused login, --verbose, --json -, --markdown',
      expected: 'neither password in any output or report',
    },
    async () => {
      const wrong = randomBytes(18).toString('base64url');
      const texts: Record<string, string> = {};
      for (const [label, dbUrl] of [
        ['right password', sandboxDbUrl(sb)],
        ['wrong password', sandboxDbUrl(sb, wrong)],
      ] as const) {
        const dir = tempDir('reports');
        const r = await scanRun('diagnose-env', ['--verbose', '--json', '-', '--markdown', path.join(dir, 'r.md')], {
          envFile: envVariant(sb, { SUPABASE_DB_URL: dbUrl }),
        });
        expect(r.texts.stdout).toContain(label === 'right password' ? '"catalog"' : 'catalog-unreadable');
        for (const f of filesUnder(dir)) r.texts[path.basename(f)] = readFileSync(f, 'utf8');
        for (const [k, v] of Object.entries(r.texts)) texts[`${label}: ${k}`] = v;
      }
      expectNoLeak(texts);
      for (const [k, v] of Object.entries(texts)) expect(v, k).not.toContain(wrong);
    },
  );

  faultCase(
    {
      group: 'Secrets',
      runbook: 'requeue',
      name: '--apply --yes: the audit file, the reports, --verbose',
      expected: 'no key in the audit file or any output',
    },
    async () => {
      const jobType = 'secret_scan';
      await insertFailed(sb, 3, jobType);
      const dir = tempDir('reports');
      const { texts, code } = await scanRun('requeue', [
        '--job-type',
        jobType,
        '--apply',
        '--yes',
        '--reason',
        'secret scan',
        '--verbose',
        '--json',
        path.join(dir, 'r.json'),
        '--markdown',
        path.join(dir, 'r.md'),
      ]);
      expect(code, JSON.stringify(texts.stderr)).not.toBe(2);
      expect(Object.keys(texts).some((k) => k.endsWith('requeue-audit.jsonl'))).toBe(true);
      for (const f of filesUnder(dir)) texts[path.basename(f)] = readFileSync(f, 'utf8');
      expectNoLeak(texts);
    },
  );
});

describe('keys the runbook reads in evidence (a job error, the worker log) are scrubbed', () => {
  /**
   * A job error and log lines that carry the laptop's key (the sb_secret_ one: short enough to be shown whole)
   * as is, base64 and URL-encoded, as a careless worker might log them. Returns the laptop config that uses it.
   */
  async function plant(): Promise<string> {
    await sb.scenario('demo');
    // Stopped, so the planted lines stay the log's last ones.
    await sb.worker('stop');
    const key = sb.info.cloud.secretKey;
    const b64 = Buffer.from(key).toString('base64');
    const [job] = await sb.sql<{ id: string }>(
      "select id from public.hd_ingestion_jobs where status = 'failed' order by finished_at desc limit 1",
    );
    await sb.sql('update public.hd_ingestion_jobs set error = $2 || error where id = $1', [
      job.id,
      `401 apikey=${key} basic=${b64}: `,
    ]);
    const log = path.join(sb.info.spark.workerDir, 'logs', 'worker.log');
    const at = new Date().toISOString();
    writeFileSync(
      log,
      `${readFileSync(log, 'utf8')}${at} ERROR job ${job.id} failed: 401 for apikey=${key}\n` +
        `${at} ERROR GET /rest/v1/hd_ingestion_jobs?apikey=${encodeURIComponent(key)}\n` +
        `${at} ERROR Authorization: Basic ${b64}\n`,
    );
    return envVariant(sb, { SUPABASE_SERVICE_ROLE_KEY: undefined, SUPABASE_SECRET_KEY: key });
  }

  for (const [runbook, args] of [
    ['debug-stuck-jobs', []],
    ['debug-stuck-jobs', ['--json', '-', '--verbose']],
    ['diagnose-env', ['--verbose']],
    ['requeue', ['--verbose']],
  ] as Array<[RunbookName, string[]]>) {
    faultCase(
      {
        group: 'Secrets',
        runbook,
        name: `the laptop's key in a job's error and the worker log${args.length ? `, ${args.join(' ')}` : ''}`,
        expected: 'shown scrubbed: no key in any form in output or files',
      },
      async () => {
        const envFile = await plant();
        try {
          const dir = tempDir('reports');
          const { texts } = await scanRun(runbook, [...args, '--markdown', path.join(dir, 'r.md')], { envFile });
          for (const f of filesUnder(dir)) texts[path.basename(f)] = readFileSync(f, 'utf8');
          expectNoLeak(texts);
          // The evidence was shown, scrubbed: the scan looked at text that did carry the key.
          expect(Object.values(texts).join('\n')).toContain('[redacted]');
        } finally {
          await sb.worker('start');
        }
      },
    );
  }
});

describe('interactive runs in a pseudo-terminal, answers scripted', () => {
  faultCase(
    {
      group: 'Secrets',
      runbook: 'debug-stuck-jobs',
      name: 'interactive: hand over to requeue, confirm, verify',
      expected: 'no key on the screen, in the audit file or the reports',
    },
    async () => {
      await sb.scenario('demo');
      await sb.worker('fix');
      const dir = tempDir('pty');
      const r = await inPty(
        'debug-stuck-jobs',
        ['--env-file', sb.envFile, '--markdown', path.join(dir, 'r.md'), '--timeout', '5'],
        [
          { when: /over to requeue \(preview first\)\?/, send: 'y' },
          { when: /Requeue 2 jobs in project/, send: 'y' },
        ],
        { HOME: dir, XDG_STATE_HOME: path.join(dir, 'state') },
      );
      expect(r.unanswered, r.screen).toBe(0);
      expect(r.screen).toMatch(/requeued 2 of 2 jobs/);
      const texts: Record<string, string> = { screen: r.screen };
      for (const f of filesUnder(dir)) texts[path.relative(dir, f)] = readFileSync(f, 'utf8');
      expect(Object.keys(texts).some((k) => k.endsWith('requeue-audit.jsonl'))).toBe(true);
      expectNoLeak(texts);
    },
  );

  faultCase(
    {
      group: 'Secrets',
      runbook: 'requeue',
      name: 'interactive: preview, confirm, write',
      expected: 'no key on the screen or in the audit file',
    },
    async () => {
      const [id] = await insertFailed(sb, 1, 'secret_scan_pty');
      const dir = tempDir('pty');
      const r = await inPty(
        'requeue',
        ['--env-file', sb.envFile, '--id', id, '--apply', '--verify', '1', ...NO_GATE],
        [{ when: /Requeue 1 job in project/, send: 'y' }],
        { HOME: dir, XDG_STATE_HOME: path.join(dir, 'state') },
      );
      expect(r.unanswered, r.screen).toBe(0);
      expect(r.screen).toMatch(/requeued 1 of 1 job/);
      const texts: Record<string, string> = { screen: r.screen };
      for (const f of filesUnder(dir)) texts[path.relative(dir, f)] = readFileSync(f, 'utf8');
      expectNoLeak(texts);
    },
  );

  faultCase(
    {
      group: 'Secrets',
      runbook: 'diagnose-env',
      name: 'interactive: an unknown host key, trusted for the run',
      expected: 'no key on the screen',
    },
    async () => {
      const dir = tempDir('pty');
      const knownHosts = path.join(dir, 'known_hosts');
      writeFileSync(knownHosts, '');
      const r = await inPty(
        'diagnose-env',
        ['--env-file', envVariant(sb, { SPARK_KNOWN_HOSTS: knownHosts }), '--verbose'],
        [{ when: /Trust SHA256:\S+ for this run\?/, send: 'y' }],
        { HOME: dir, XDG_STATE_HOME: path.join(dir, 'state') },
      );
      expect(r.unanswered, r.screen).toBe(0);
      expect(r.screen).toMatch(/Read the worker's \.env/);
      expectNoLeak({ screen: r.screen });
    },
  );
});

describe('secrets the tool was never told about (in a job error, the worker log and the worker .env)', () => {
  // Made at run time, random per run: no key-shaped literal in the repository, and nothing a pattern could know.
  const rnd = (n: number) => randomBytes(n).toString('base64url').replace(/[-_]/g, 'x');
  const planted = {
    'an sb_secret_ key of another project': `sb_secret_${rnd(24)}`,
    'a Redis password': rnd(18),
    'a Slack webhook path': `T${rnd(6).toUpperCase()}/B${rnd(6).toUpperCase()}/${rnd(18)}`,
    'a GitHub token': `ghp_${rnd(27)}`,
    'a random token in the worker .env': rnd(24),
  };
  const forms = (v: string) => [v, Buffer.from(v).toString('base64').replace(/=+$/, ''), encodeURIComponent(v)];

  async function plantUnknown(): Promise<void> {
    await sb.scenario('demo');
    await sb.worker('stop');
    const p = planted;
    await sb.sql(
      `insert into public.hd_ingestion_jobs (job_type, status, attempts, error, created_at, started_at, finished_at)
       values ('unknown_secrets', 'failed', 1, $1, now() - interval '9 min', now() - interval '5 min', now() - interval '4 min')`,
      [`401 with ${p['an sb_secret_ key of another project']} while posting to ${p['a GitHub token']}`],
    );
    const dir = sb.info.spark.workerDir;
    appendFileSync(path.join(dir, '.env'), `\nWEBHOOK_SIGNING=${p['a random token in the worker .env']}\n`);
    const at = new Date().toISOString();
    appendFileSync(
      path.join(dir, 'logs', 'worker.log'),
      `${at} ERROR cache: redis://:${p['a Redis password']}@cache:6379/0 refused\n` +
        `${at} ERROR notify: POST https://hooks.slack.com/services/${p['a Slack webhook path']} failed\n` +
        `${at} ERROR signing with ${p['a random token in the worker .env']} failed\n` +
        `${at} ERROR job failed: 401 with ${p['an sb_secret_ key of another project']}\n`,
    );
  }

  for (const [runbook, args] of [
    ['debug-stuck-jobs', ['--verbose']],
    ['debug-stuck-jobs', ['--json', '-', '--verbose']],
    ['diagnose-env', ['--verbose']],
    ['requeue', ['--job-type', 'unknown_secrets', '--apply', '--yes', '--reason', 'scan', '--verbose']],
  ] as Array<[RunbookName, string[]]>) {
    faultCase(
      {
        group: 'Secrets',
        runbook,
        name: `unknown secrets by shape and entropy: ${Object.keys(planted).join(', ')}${args.length ? `, ${args.join(' ')}` : ''}`,
        expected: 'none in any form in output, reports or the audit file',
      },
      async () => {
        await plantUnknown();
        try {
          const dir = tempDir('reports');
          const { texts } = await scanRun(runbook, [...args, '--markdown', path.join(dir, 'r.md')]);
          for (const f of filesUnder(dir)) texts[path.basename(f)] = readFileSync(f, 'utf8');
          const found: string[] = [];
          for (const [what, value] of Object.entries(planted))
            for (const form of forms(value))
              for (const [where, text] of Object.entries(texts))
                if (text.includes(form)) found.push(`${what} in ${where}`);
          expect(found).toEqual([]);
          if (runbook === 'requeue')
            expect(Object.keys(texts).some((k) => k.endsWith('requeue-audit.jsonl'))).toBe(true);
          expect(Object.values(texts).join('\n')).toContain('[redacted]');
          expectNoLeak(texts);
        } finally {
          await sb.worker('start');
        }
      },
    );
  }
});
