/**
 * diagnose-env with SUPABASE_DB_URL against the sandbox's own PostgreSQL, as an operator runs it: the catalog of a
 * migrated project is healthy; an index and the requeue function taken away, and a timeout set on service_role,
 * are named with the migration that restores them; a refused login is a warning; the string is never printed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { sandboxDbUrl } from '../helpers/external.ts';
import { tempDir } from '../helpers/run.ts';
import { type RunResult, runRunbook, type Sandbox, startSandbox } from '../helpers/sandbox.ts';

interface Report {
  findings: Array<{ id: string; severity: string; title: string; evidence: string[]; cause: string; fix: string }>;
  checks: Array<{ id: string; status: string; summary: string; details?: string[] }>;
}

let sb: Sandbox;
let password: string;

beforeAll(async () => {
  sb = await startSandbox();
  password = readFileSync(path.join(sb.dir, 'pg', 'admin-password'), 'utf8').trim();
});

/** diagnose-env with the sandbox's .env plus SUPABASE_DB_URL; the report file and everything printed. */
async function diagnose(
  dbUrl: string,
  from: 'source' | 'bundle' = 'source',
): Promise<{ r: RunResult; report: Report; written: string }> {
  const dir = tempDir('hd-catalog-');
  const env = path.join(dir, '.env');
  writeFileSync(env, `${readFileSync(sb.envFile, 'utf8')}SUPABASE_DB_URL=${dbUrl}\n`, { mode: 0o600 });
  const file = path.join(dir, 'report.json');
  const r = await runRunbook('diagnose-env', ['--config', env, '--ci', '--json', file], { from });
  const written = readFileSync(file, 'utf8');
  return { r, report: JSON.parse(written) as Report, written };
}

function neverPrinted(run: { r: RunResult; written: string }, secret: string): void {
  for (const text of [run.r.stdout, run.r.stderr, run.written]) {
    expect(text).not.toContain(secret);
    expect(text).not.toContain(encodeURIComponent(secret));
  }
}

describe('diagnose-env reads the catalog over SUPABASE_DB_URL', () => {
  it('finds every index and function of the migrations in a migrated project: healthy, exit 0', async () => {
    const run = await diagnose(sandboxDbUrl(sb));
    expect(run.r.code, run.r.stdout + run.r.stderr).toBe(0);
    const line = run.report.checks.find((c) => c.id === 'catalog')!;
    expect(line.status).toBe('ok');
    expect(line.summary).toMatch(
      /^PostgreSQL \d+\.\d+; (\d+) of \1 indexes of the migrations on hd_ingestion_jobs; hd_requeue_jobs installed/,
    );
    expect(run.report.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(run.r.stdout).toContain('Read the database catalog');
    neverPrinted(run, password);
  });

  it('the bundled runbook (test/setup/bundle.ts) finds the migrations too', async () => {
    const [source, bundle] = await Promise.all([diagnose(sandboxDbUrl(sb)), diagnose(sandboxDbUrl(sb), 'bundle')]);
    const line = (run: typeof source) =>
      run.report.checks.find((c) => c.id === 'catalog')?.summary.replace(/ \(\d+ ms\)$/, '');
    expect(line(bundle)).toBe(line(source));
    expect(bundle.r.code).toBe(0);
  });

  it('names a dropped index and a missing requeue function with the migration that restores them, and the timeout reads run into', async () => {
    await sb.sql('drop index public.hd_ingestion_jobs_created_at');
    await sb.sql('alter function public.hd_requeue_jobs(jsonb, jsonb, boolean) rename to hd_requeue_jobs_away');
    await sb.sql("alter role service_role set statement_timeout = '5s'");
    try {
      const run = await diagnose(sandboxDbUrl(sb));
      expect(run.r.code).toBe(1);
      const byId = new Map(run.report.findings.map((f) => [f.id, f]));
      expect(byId.get('index-missing')).toMatchObject({
        title: 'hd_ingestion_jobs lacks 1 index of the migrations',
        evidence: expect.arrayContaining([
          'no index hd_ingestion_jobs_created_at on (created_at desc), created by 001_hd_ingestion_jobs.sql',
        ]),
        fix: expect.stringContaining('psql "$SUPABASE_DB_URL" -f sandbox/migrations/001_hd_ingestion_jobs.sql'),
      });
      expect(byId.get('index-missing')!.cause).toContain('past 5s (statement_timeout of service_role)');
      expect(byId.get('requeue-function-missing')).toMatchObject({
        severity: 'info',
        fix: expect.stringContaining(
          '002_requeue_rpc.sql && psql "$SUPABASE_DB_URL" -f sandbox/migrations/003_requeue_again.sql',
        ),
      });
      const line = run.report.checks.find((c) => c.id === 'catalog')!;
      expect(line.details).toContain(
        // The others as the sandbox sets them by default, as Supabase does (sandbox/postgres.ts).
        'statement_timeout: service_role 5s, authenticator 8s, authenticated 8s, anon 3s',
      );
      neverPrinted(run, password);
    } finally {
      await sb.sql(
        'create index if not exists hd_ingestion_jobs_created_at on public.hd_ingestion_jobs (created_at desc)',
      );
      await sb.sql('alter function public.hd_requeue_jobs_away(jsonb, jsonb, boolean) rename to hd_requeue_jobs');
      await sb.sql('alter role service_role reset statement_timeout');
    }
  });

  it('a refused login is catalog-unreadable (a warning, exit 1), and neither password is printed', async () => {
    const wrong = 'not-the-Pa55word-at-all';
    const run = await diagnose(sandboxDbUrl(sb, wrong));
    expect(run.r.code).toBe(1);
    const f = run.report.findings.find((x) => x.id === 'catalog-unreadable');
    expect(f?.evidence[0]).toMatch(
      /^the database refused the login to 127\.0\.0\.1:\d+ as postgres: password authentication failed for user "postgres"$/,
    );
    neverPrinted(run, wrong);
    neverPrinted(run, password);
  });
});
