/**
 * The reference worker, run as the child process it is on Spark, against a small in-test stand-in for the
 * PostgREST endpoints it uses (the queue GET, the compare-and-set PATCH, the assets POST).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/run.ts';

const WORKER = fileURLToPath(new URL('../../sandbox/spark/worker.mjs', import.meta.url));
const b64url = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
// Made at run time: key-shaped strings never live in the repository.
const JWT_KEY = `${b64url({ alg: 'HS256' })}.${b64url({ role: 'service_role' })}.${randomBytes(32).toString('base64url')}`;
const SECRET_KEY = `sb_secret_${randomBytes(16).toString('hex')}`;

type Row = Record<string, unknown>;

interface Recorded {
  method: string;
  url: URL;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

/** Just enough PostgREST: eq./in. filters, order by created_at, limit, Prefer return/count. */
class FakePostgrest {
  jobs: Row[] = [];
  assets: Row[] = [];
  requests: Recorded[] = [];
  /** Statuses to answer the next requests with instead of serving them. */
  failNext: Array<{ status: number; message: string }> = [];
  /** Runs between a poll and the claim that follows it, to play a competing worker. */
  beforePatch: ((query: URLSearchParams) => void) | undefined;
  validKeys = new Set([JWT_KEY, SECRET_KEY]);
  private server = http.createServer((req, res) => void this.handle(req, res));
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (!address || typeof address === 'string') throw new Error('no address');
    this.url = `http://127.0.0.1:${address.port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  reset(): void {
    this.jobs = [];
    this.assets = [];
    this.requests = [];
    this.failNext = [];
    this.beforePatch = undefined;
  }

  job(id: string): Row {
    const job = this.jobs.find((j) => j.id === id);
    if (!job) throw new Error(`no job ${id}`);
    return job;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', this.url);
    const body = text ? JSON.parse(text) : undefined;
    this.requests.push({ method: req.method ?? '', url, headers: req.headers, body });

    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
      res.end(payload === undefined ? '' : JSON.stringify(payload));
    };
    const apikey = String(req.headers.apikey ?? '');
    if (!this.validKeys.has(apikey)) return send(401, { message: 'Invalid API key' });
    const auth = req.headers.authorization;
    if (auth !== undefined && auth !== `Bearer ${apikey}`) return send(401, { message: 'JWT mismatch' });
    const fault = this.failNext.shift();
    if (fault) return send(fault.status, { message: fault.message });

    const table = url.pathname.replace(/^\/rest\/v1\//, '');
    const rows = table === 'hd_ingestion_jobs' ? this.jobs : table === 'hd_assets' ? this.assets : undefined;
    if (!rows) return send(404, { message: `relation "public.${table}" does not exist` });
    const prefer = String(req.headers.prefer ?? '');

    if (req.method === 'GET') {
      const matched = rows.filter((r) => matches(r, url.searchParams));
      matched.sort((a, b) => String(a.created_at).localeCompare(String(b.created_at)));
      const limit = Number(url.searchParams.get('limit') ?? matched.length);
      const page = matched.slice(0, limit);
      const range = `${page.length ? `0-${page.length - 1}` : '*'}/${prefer.includes('count=exact') ? matched.length : '*'}`;
      return send(200, structuredClone(page), { 'Content-Range': range });
    }
    if (req.method === 'PATCH') {
      this.beforePatch?.(url.searchParams);
      this.beforePatch = undefined;
      const matched = rows.filter((r) => matches(r, url.searchParams));
      for (const r of matched) Object.assign(r, body);
      return prefer.includes('return=representation') ? send(200, structuredClone(matched)) : send(204, undefined);
    }
    if (req.method === 'POST') {
      const list = (Array.isArray(body) ? body : [body]) as Row[];
      for (const r of list) rows.push({ id: randomUUID(), created_at: new Date().toISOString(), ...r });
      return send(201, prefer.includes('return=representation') ? list : undefined);
    }
    send(405, { message: 'method not allowed' });
  }
}

function matches(row: Row, params: URLSearchParams): boolean {
  for (const [col, filter] of params) {
    if (['select', 'order', 'limit', 'offset'].includes(col)) continue;
    const value = row[col] === null || row[col] === undefined ? 'null' : String(row[col]);
    if (filter.startsWith('eq.')) {
      if (value !== filter.slice(3)) return false;
    } else if (filter.startsWith('in.(') && filter.endsWith(')')) {
      if (!filter.slice(4, -1).split(',').includes(value)) return false;
    } else throw new Error(`fake PostgREST: unsupported filter ${col}=${filter}`);
  }
  return true;
}

const api = new FakePostgrest();
let root: string;
const children = new Set<ChildProcess>();

interface WorkerRun {
  child: ChildProcess;
  dir: string;
  log: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Installs worker.mjs in a fresh Spark-like folder with this .env and starts it there. */
function startWorker(envText: string): WorkerRun {
  const dir = path.join(mkdtempSync(path.join(root, 'home-')), 'srv', 'hd-worker');
  mkdirSync(dir, { recursive: true });
  copyFileSync(WORKER, path.join(dir, 'worker.mjs'));
  writeFileSync(path.join(dir, '.env'), envText, { mode: 0o600 });
  // As on Spark: no node_modules, none of this process's environment.
  const child = spawn(process.execPath, [path.join(dir, 'worker.mjs')], {
    cwd: dir,
    env: { PATH: process.env.PATH, HOME: path.dirname(path.dirname(dir)) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  const logFile = path.join(dir, 'logs', 'worker.log');
  return {
    child,
    dir,
    exited,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '') + output,
  };
}

function envFor(overrides: Record<string, string> = {}): string {
  const vars: Record<string, string> = {
    SUPABASE_URL: api.url,
    SUPABASE_SERVICE_ROLE_KEY: JWT_KEY,
    WORKER_POLL_MS: '100',
    ...overrides,
  };
  return `${Object.entries(vars)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
}

/** Polls `check` until it holds; the default deadline is the hang limit (30 s): a loaded machine is slow, not broken. */
async function waitFor(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function stop(run: WorkerRun): Promise<number | null> {
  run.child.kill('SIGTERM');
  const { code } = await run.exited;
  return code;
}

const JSONL_LINES = [
  { id: 'a-001', name: 'chair.glb', kind: 'mesh', bytes: 182_331, tags: ['furniture'], source: { bucket: 'uploads' } },
  { id: 'a-002', kind: 'texture', description: 'x'.repeat(500), a: 1, b: 2, c: 3, d: 4 },
  { id: 'a-003', name: 'rug.png', nested: { deep: { deeper: true } } },
];

function queueJob(over: Row = {}): string {
  const id = randomUUID();
  api.jobs.push({
    id,
    account_id: '6f1c2a44-2d0e-4c55-9a51-3f6d3b1f0a10',
    job_type: 'import_assets_jsonl',
    status: 'queued',
    attempts: 0,
    error: null,
    debug: { requeue_history: [{ at: '2024-05-01T10:00:00Z', by: 'runbook', from: 'failed' }], note: 'keep me' },
    payload: { jsonl: JSONL_LINES.map((l) => JSON.stringify(l)).join('\n'), source: 'uploads/batch.jsonl' },
    created_at: new Date(Date.now() - api.jobs.length * 1000).toISOString(),
    started_at: null,
    finished_at: null,
    ...over,
  });
  return id;
}

beforeAll(async () => {
  root = tempDir('hd-worker-');
  await api.start();
});

afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
  api.reset();
});

afterAll(async () => {
  await api.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('reference worker', () => {
  it('claims a queued import with a compare-and-set PATCH, posts flat assets, finishes the job', async () => {
    const id = queueJob();
    const run = startWorker(envFor());
    await waitFor(() => api.job(id).status === 'done', 'the job to be done');

    const claim = api.requests.find((r) => r.method === 'PATCH' && (r.body as Row).status === 'running');
    expect(claim).toBeDefined();
    expect(claim!.url.searchParams.get('id')).toBe(`eq.${id}`);
    expect(claim!.url.searchParams.get('status')).toBe('eq.queued');
    expect(claim!.url.searchParams.get('attempts')).toBe('eq.0');
    expect(claim!.headers.prefer).toContain('return=representation');
    expect(claim!.headers.apikey).toBe(JWT_KEY);
    expect(claim!.headers.authorization).toBe(`Bearer ${JWT_KEY}`);
    expect(claim!.body).toMatchObject({ status: 'running', finished_at: null, attempts: 1 });
    expect(typeof (claim!.body as Row).started_at).toBe('string');

    const poll = api.requests.find((r) => r.method === 'GET')!;
    expect(poll.url.searchParams.get('status')).toBe('in.(queued,pending)');
    expect(poll.url.searchParams.get('order')).toBe('created_at.asc');
    expect(poll.url.searchParams.get('limit')).toBe('1');

    const posts = api.requests.filter((r) => r.method === 'POST');
    expect(posts).toHaveLength(1);
    expect(posts[0].url.pathname).toBe('/rest/v1/hd_assets');
    expect(api.assets.map((a) => a.name)).toEqual(['chair.glb', 'line-2', 'rug.png']);
    for (const asset of api.assets) {
      expect(asset.job_id).toBe(id);
      expect(asset.account_id).toBe('6f1c2a44-2d0e-4c55-9a51-3f6d3b1f0a10');
      const sourceLine = (asset.metadata as { source_line: Row }).source_line;
      expect(Object.keys(sourceLine).length).toBeLessThanOrEqual(6);
      for (const v of Object.values(sourceLine)) {
        expect(v === null || ['string', 'number', 'boolean'].includes(typeof v)).toBe(true);
        if (typeof v === 'string') expect(v.length).toBeLessThanOrEqual(200);
      }
    }
    const sl = api.assets.map((a) => (a.metadata as { source_line: Row }).source_line);
    expect(sl[0]).toMatchObject({ line: 1, id: 'a-001', name: 'chair.glb' });
    expect(sl[1]).toMatchObject({ line: 2, id: 'a-002' });
    expect(sl[1].description).toBe('x'.repeat(200));
    expect(sl[2]).toEqual({ line: 3, id: 'a-003', name: 'rug.png' });

    const job = api.job(id);
    expect(job).toMatchObject({ status: 'done', error: null, attempts: 1 });
    expect(typeof job.finished_at).toBe('string');
    const debug = job.debug as Row;
    expect(debug.requeue_history).toEqual([{ at: '2024-05-01T10:00:00Z', by: 'runbook', from: 'failed' }]);
    expect(debug.note).toBe('keep me');
    expect(debug.last_run).toMatchObject({ worker_pid: run.child.pid, assets: 3 });
    expect((debug.last_run as Row).finished_at).toBe(job.finished_at);

    const finish = api.requests.find((r) => r.method === 'PATCH' && (r.body as Row).status === 'done')!;
    expect(finish.url.searchParams.get('status')).toBe('eq.running');

    await waitFor(() => / INFO poll queued=0$/m.test(run.log()), 'a poll after the job');
    expect(await stop(run)).toBe(0);
    const log = run.log();
    expect(log).toMatch(
      new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z INFO worker started pid=${run.child.pid} url=${api.url}$`, 'm'),
    );
    expect(log).toMatch(/ INFO poll queued=1$/m);
    expect(log).toMatch(new RegExp(` INFO job ${id} claimed$`, 'm'));
    expect(log).toMatch(new RegExp(` INFO job ${id} done assets=3$`, 'm'));
    expect(log).not.toContain(JWT_KEY);
  });

  it('WORKER_SOURCE_LINE=full fails the job with the Python cycle error and logs a traceback', async () => {
    const id = queueJob();
    const run = startWorker(envFor({ WORKER_SOURCE_LINE: 'full' }));
    await waitFor(() => api.job(id).status === 'failed', 'the job to fail');

    const job = api.job(id);
    expect(job.error).toBe('ValueError: Circular reference detected');
    expect((job.debug as Row).requeue_history).toHaveLength(1);
    expect((job.debug as Row).note).toBe('keep me');
    expect((job.debug as Row).last_run).toMatchObject({ worker_pid: run.child.pid, assets: 0 });
    expect(api.assets).toHaveLength(0);
    expect(api.requests.filter((r) => r.method === 'POST')).toHaveLength(0);

    expect(await stop(run)).toBe(0);
    const lines = run.log().split('\n');
    const at = lines.findIndex((l) => l.endsWith(`ERROR job ${id} failed: ValueError: Circular reference detected`));
    expect(at).toBeGreaterThanOrEqual(0);
    expect(lines[at + 1]).toBe('Traceback (most recent call last):');
    expect(lines[at + 2]).toMatch(/^ {2}File ".*worker\.mjs", line \d+, in importAssetsJsonl$/);
    const end = lines.findIndex((l, i) => i > at && l === 'ValueError: Circular reference detected');
    expect(end).toBeGreaterThan(at + 2);
    expect(lines.slice(at + 1, end).every((l) => l.startsWith('Traceback') || l.startsWith('  '))).toBe(true);
    expect(run.log()).not.toContain(JWT_KEY);
  });

  it('reads a .env with comments and quotes, and an sb_secret_ key goes only in apikey', async () => {
    const id = queueJob({ job_type: 'thumbnail' });
    const env = [
      '# hd-worker configuration',
      '',
      `export SUPABASE_URL="${api.url}" # the cloud project`,
      `SUPABASE_SECRET_KEY='${SECRET_KEY}'`,
      'WORKER_POLL_MS=100   # fast for tests',
      'WORKER_MAX_ATTEMPTS=3',
      '',
    ].join('\n');
    const run = startWorker(env);
    await waitFor(() => api.job(id).status === 'done', 'the no-op job to be done');
    expect(api.job(id).debug).toMatchObject({ last_run: { assets: 0 } });
    expect(api.requests.every((r) => r.headers.apikey === SECRET_KEY && r.headers.authorization === undefined)).toBe(
      true,
    );
    expect(await stop(run)).toBe(0);
    expect(run.log()).toMatch(new RegExp(` INFO job ${id} done assets=0$`, 'm'));
    expect(run.log()).not.toContain(SECRET_KEY);
  });

  it('logs HTTP errors and keeps polling, never logging the key', async () => {
    api.failNext.push({ status: 503, message: 'upstream unavailable' });
    const run = startWorker(envFor({ SUPABASE_SERVICE_ROLE_KEY: `${JWT_KEY}-wrong` }));
    await waitFor(() => /ERROR poll failed: 401 Invalid API key$/m.test(run.log()), 'a 401 in the log');
    // The key is fixed in the file, but the worker reads .env only at start: it keeps failing, and running.
    await waitFor(() => (run.log().match(/poll failed: 401/g) ?? []).length >= 3, 'repeated polls');
    expect(run.child.exitCode).toBeNull();
    expect(await stop(run)).toBe(0);
    expect(run.log()).not.toContain(JWT_KEY);

    api.failNext.push({ status: 503, message: 'upstream unavailable' });
    const id = queueJob();
    const healthy = startWorker(envFor());
    await waitFor(() => api.job(id).status === 'done', 'the job after a 503');
    expect(healthy.log()).toMatch(/ERROR poll failed: 503 upstream unavailable$/m);
    expect(await stop(healthy)).toBe(0);
  });

  it('survives an unreachable API', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as { port: number };
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const run = startWorker(envFor({ SUPABASE_URL: `http://127.0.0.1:${port}` }));
    await waitFor(() => (run.log().match(/ERROR poll failed: /g) ?? []).length >= 2, 'two failed polls');
    expect(run.log()).toMatch(/ERROR poll failed: ECONNREFUSED /);
    expect(await stop(run)).toBe(0);
  });

  it('backs off when another worker wins the claim', async () => {
    const id = queueJob();
    api.beforePatch = () => {
      const job = api.job(id);
      job.status = 'running';
      job.attempts = 1;
    };
    const run = startWorker(envFor());
    await waitFor(() => run.log().includes(`job ${id} claimed by another worker`), 'the lost race in the log');
    expect(api.job(id).status).toBe('running');
    expect(api.assets).toHaveLength(0);
    expect(run.log()).not.toMatch(new RegExp(`INFO job ${id} claimed$`, 'm'));
    expect(await stop(run)).toBe(0);
  });

  it('fails a job that has used up WORKER_MAX_ATTEMPTS without running it', async () => {
    const id = queueJob({ attempts: 2 });
    const run = startWorker(envFor({ WORKER_MAX_ATTEMPTS: '2' }));
    await waitFor(() => api.job(id).status === 'failed', 'the job to fail');
    expect(api.job(id)).toMatchObject({ attempts: 2, error: 'max attempts exceeded (2/2)' });
    expect((api.job(id).debug as Row).requeue_history).toHaveLength(1);
    expect(api.assets).toHaveLength(0);
    expect(await stop(run)).toBe(0);
  });

  it('exits 0 on SIGTERM in the middle of polling and on SIGINT', async () => {
    const run = startWorker(envFor({ WORKER_POLL_MS: '60000' }));
    await waitFor(() => run.log().includes('poll queued=0'), 'the first poll');
    expect(await stop(run)).toBe(0);
    // The signal cut the 60 s sleep short: the next poll never happened, and the worker says why it stopped.
    expect(run.log().match(/ INFO poll queued=/g)).toHaveLength(1);
    expect(run.log()).toMatch(/INFO worker stopping signal=SIGTERM$/m);
    expect(run.log()).toMatch(/INFO worker stopped pid=\d+$/m);

    const second = startWorker(envFor());
    await waitFor(() => second.log().includes('poll queued='), 'the first poll');
    second.child.kill('SIGINT');
    expect((await second.exited).code).toBe(0);
  });

  it('reports a missing configuration and exits non-zero', async () => {
    const run = startWorker('WORKER_POLL_MS=100\n');
    const { code } = await run.exited;
    expect(code).toBe(1);
    expect(run.log()).toMatch(/ERROR config: SUPABASE_URL missing/);
  });
});
