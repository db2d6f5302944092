import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSandboxInfo } from '../../sandbox/layout.ts';
import { tempDir } from '../helpers/run.ts';
import { cleanEnv, ROOT, type Sandbox, startSandbox } from '../helpers/sandbox.ts';

const run = promisify(execFile);
const TSX = import.meta.resolve('tsx');

function cli(args: string[]) {
  return run(process.execPath, ['--import', TSX, path.join(ROOT, 'sandbox/cli.mts'), ...args], {
    cwd: ROOT,
    env: cleanEnv(),
    timeout: 120_000,
  }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

/** Processes whose command line names the folder: PostgreSQL (-D DIR/pg), the worker, the supervisor. */
async function processesIn(dir: string): Promise<string[]> {
  const { stdout } = await run('ps', ['-eo', 'pid=,args=']);
  return stdout
    .split('\n')
    .filter((l) => l.includes(dir) && !l.includes(' ps -eo'))
    .map((l) => l.trim());
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe('the sandbox', () => {
  let sb: Sandbox;

  beforeAll(async () => {
    sb = await startSandbox();
  });

  afterAll(async () => {
    await sb?.down();
  });

  it('writes the laptop .env, the app env and sandbox.json with every part', () => {
    const { info } = sb;
    expect(info.cloud.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(info.local.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(info.local.url).not.toBe(info.cloud.url);
    for (const k of ['anonKey', 'serviceRoleKey', 'secretKey', 'publishableKey'] as const)
      expect(info.cloud[k]).toBeTruthy();
    expect(info.cloud.secretKey).toMatch(/^sb_secret_/);
    expect(info.cloud.publishableKey).toMatch(/^sb_publishable_/);
    expect(info.spark.workerDir).toBe(path.join(info.spark.home, 'srv', 'hd-worker'));
    expect(info.worker.pid).toBeGreaterThan(0);
    expect(alive(info.worker.pid!)).toBe(true);
  });

  it('refuses a second up on the same folder with a clear message', async () => {
    const r = await cli(['up', '--dir', sb.dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`a sandbox is already running in ${sb.dir}`);
    expect(r.stderr).toContain('npm run sandbox -- down --dir');
  });

  it('rejects an unknown scenario before starting anything', async () => {
    const dir = tempDir('hd-sandbox-bad-');
    const r = await cli(['up', '--dir', dir, '--scenario', 'nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown scenario "nope"');
    expect(await processesIn(dir)).toEqual([]);
  });

  it('as root, names the folder PostgreSQL cannot enter when --dir is inside a private one, and leaves nothing running', async (ctx) => {
    if (process.getuid?.() !== 0) return ctx.skip('only as root does PostgreSQL run as another user');
    const closed = tempDir('hd-private-'); // mkdtemp: 0700, as under /root or a private mktemp -d
    const dir = path.join(closed, 'sandbox');
    const r = await cli(['up', '--dir', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`the postgres user (the sandbox runs as root), which cannot enter ${closed} (mode 700)`);
    expect(r.stderr).toContain(`chmod o+x ${closed}`);
    expect(await processesIn(closed)).toEqual([]);
  });

  it('gives each sandbox its own superuser password, in a file only its owner reads', () => {
    const file = path.join(sb.dir, 'pg', 'admin-password');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const password = readFileSync(file, 'utf8').trim();
    expect(password).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(password).not.toBe('sandbox-postgres');
  });

  it('has a worker that drains queued jobs', async () => {
    const [job] = await sb.sql<{ id: string }>(
      "insert into hd_ingestion_jobs (job_type, payload) values ('import_assets_jsonl', $1) returning id",
      [{ jsonl: '{"id":"x1","name":"a.glb"}\n{"id":"x2","name":"b.glb"}' }],
    );
    const done = await waitUntil(async () => {
      const [row] = await sb.sql<{ status: string }>('select status from hd_ingestion_jobs where id = $1', [job.id]);
      return row.status === 'done';
    });
    expect(done).toBe(true);
    const [row] = await sb.sql<{ attempts: number; started_at: string; finished_at: string; error: string | null }>(
      'select attempts, started_at, finished_at, error from hd_ingestion_jobs where id = $1',
      [job.id],
    );
    expect(row).toMatchObject({ attempts: 1, error: null });
    expect(row.started_at).toBeTruthy();
    expect(row.finished_at).toBeTruthy();
    const assets = await sb.sql<{ metadata: { source_line: Record<string, unknown> } }>(
      'select metadata from hd_assets where job_id = $1',
      [job.id],
    );
    expect(assets).toHaveLength(2);
    for (const a of assets) {
      for (const v of Object.values(a.metadata.source_line)) expect(typeof v === 'object' && v !== null).toBe(false);
    }
  });

  it('reproduces failure B: circular-metadata fails import_assets_jsonl with "Circular reference detected"', async () => {
    await sb.scenario('circular-metadata');
    const failed = await sb.sql<{ error: string }>(
      "select error from hd_ingestion_jobs where status = 'failed' and job_type = 'import_assets_jsonl'",
    );
    expect(failed.length).toBeGreaterThan(0);
    for (const f of failed) expect(f.error).toContain('Circular reference detected');
  });

  it('stops the worker in worker-down, and healthy brings it back', async () => {
    await sb.scenario('healthy');
    const pidBefore = readSandboxInfo(sb.dir).worker.pid!;
    expect(alive(pidBefore)).toBe(true);
    await sb.scenario('worker-down');
    expect(await waitUntil(async () => !alive(pidBefore))).toBe(true);
    expect(readSandboxInfo(sb.dir).worker.pid).toBeNull();
    await sb.scenario('healthy');
    expect(alive(readSandboxInfo(sb.dir).worker.pid!)).toBe(true);
  });

  it('counts HTTP requests per API, method and role', async () => {
    await sb.resetStats();
    const anon = await fetch(`${sb.info.cloud.url}/rest/v1/hd_ingestion_jobs?select=id`, {
      headers: { apikey: sb.info.cloud.anonKey },
    });
    expect(await anon.json()).toEqual([]);
    const stats = await sb.stats();
    expect(stats.http.cloud.GET.anon).toBe(1);
    expect(stats.httpTotal).toBeGreaterThanOrEqual(1);
  });
});

describe('two sandboxes and a clean down', () => {
  it('down after the supervisor was killed (kill -9) stops PostgreSQL and the worker all the same', async () => {
    const victim = await startSandbox();
    try {
      expect((await processesIn(victim.dir)).length).toBeGreaterThanOrEqual(3);
      process.kill(victim.info.supervisorPid, 'SIGKILL');
      while (alive(victim.info.supervisorPid)) await new Promise((r) => setTimeout(r, 50));
      // PostgreSQL and the worker (holding the service key) run on without it.
      expect((await processesIn(victim.dir)).length).toBeGreaterThanOrEqual(2);
      const r = await cli(['down', '--dir', victim.dir]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/stopped \(\d+ process(es)? without a supervisor stopped too\)/);
      expect(await processesIn(victim.dir)).toEqual([]);
    } finally {
      await victim.down();
    }
  });

  it('runs two sandboxes at once and leaves no process behind after down', async () => {
    // allSettled: if one start fails, the other must still be stopped, not leaked past the test.
    const started = await Promise.allSettled([startSandbox(), startSandbox()]);
    const ok = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (ok.length < 2) {
      await Promise.all(ok.map((sb) => sb.down()));
      throw (started.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason;
    }
    const [a, b] = ok;
    try {
      expect(a.info.cloud.url).not.toBe(b.info.cloud.url);
      expect(a.info.spark.port).not.toBe(b.info.spark.port);
      for (const sb of [a, b]) {
        const r = await fetch(`${sb.info.cloud.url}/rest/v1/hd_ingestion_jobs?select=id&limit=1`, {
          headers: { apikey: sb.info.cloud.serviceRoleKey },
        });
        expect(r.status).toBe(200);
      }
      expect((await processesIn(a.dir)).length).toBeGreaterThanOrEqual(3);
    } finally {
      await Promise.all([a.down(), b.down()]);
    }
    for (const sb of [a, b]) {
      expect(alive(sb.info.supervisorPid)).toBe(false);
      expect(await processesIn(sb.dir)).toEqual([]);
    }
  });
});
