/**
 * Corpus incidents end to end: the sandbox with a real Python worker (test/helpers/python-worker/worker.py) in its
 * Spark home instead of the reference worker, each incident played for real (its jobs inserted, the worker claiming
 * and failing them through real Python code paths, its log written by Python's logging), then debug-stuck-jobs
 * `--ci --json -` as CI runs it. The top finding expected is the corpus incident's (test/diagnosis-corpus/incidents).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOGS_DIR, listIncidents, readIncident } from '../diagnosis-corpus/load.ts';
import { PythonWorker } from '../helpers/python-worker/index.ts';
import { runRunbook, type Sandbox, startSandbox } from '../helpers/sandbox.ts';

const JSONL = [
  { id: 'a-001', name: 'chair.glb', kind: 'mesh', tags: ['furniture'] },
  { id: 'a-002', name: 'lamp.glb', kind: 'mesh', tags: ['lighting'] },
]
  .map((o) => JSON.stringify(o))
  .join('\n');
/** A JSONL file with a truncated third line, as an interrupted upload leaves it. */
const BAD_JSONL = `${JSONL}\n{"id": "a-003", "name": "rug.png", "tags": ["wood", }`;

interface Report {
  exitCode: number;
  findings: Array<{ id: string; severity: string; jobIds?: string[] }>;
}

let sb: Sandbox;
let w: PythonWorker;

beforeAll(async () => {
  sb = await startSandbox();
  // The reference worker leaves; the Python one takes its place in the same folder.
  await sb.worker('stop');
  w = new PythonWorker(sb.workerDir);
}, 180_000);

afterAll(async () => {
  await w?.stop();
  await sb?.down();
});

type Db = 'cloud' | 'local';

interface NewJob {
  type?: string;
  status?: string;
  minutesAgo?: number;
  startedMinutesAgo?: number;
  finishedMinutesAgo?: number;
  attempts?: number;
  error?: string;
  payload?: unknown;
}

async function insert(jobs: NewJob[], db: Db = 'cloud'): Promise<string[]> {
  const ids: string[] = [];
  for (const j of jobs) {
    const ago = (m: number | undefined) => (m === undefined ? null : m);
    const [row] = await sb.sql<{ id: string }>(
      `insert into public.hd_ingestion_jobs (account_id, job_type, status, attempts, error, payload, created_at, started_at, finished_at)
       values ('6f1c2a44-2d0e-4c55-9a51-3f6d3b1f0a10', $1, $2, $3, $4, $5, now() - $6::float * interval '1 minute',
               now() - $7::float * interval '1 minute', now() - $8::float * interval '1 minute')
       returning id`,
      [
        j.type ?? 'import_assets_jsonl',
        j.status ?? 'queued',
        j.attempts ?? 0,
        j.error ?? null,
        j.payload ?? { jsonl: JSONL },
        j.minutesAgo ?? 0,
        ago(j.startedMinutesAgo),
        ago(j.finishedMinutesAgo),
      ],
      db,
    );
    ids.push(row.id);
  }
  return ids;
}

async function statusOf(ids: string[]): Promise<string[]> {
  const rows = await sb.sql<{ id: string; status: string }>(
    'select id::text, status from public.hd_ingestion_jobs where id = any($1::uuid[])',
    [ids],
  );
  return ids.map((id) => rows.find((r) => r.id === id)?.status ?? 'missing');
}

const waitStatus = (ids: string[], status: string) =>
  PythonWorker.waitFor(async () => (await statusOf(ids)).every((s) => s === status), `jobs ${status}`);

function writeAppEnv(url: string, anonKey: string): void {
  writeFileSync(
    sb.info.app.envFile,
    `# The app's environment (a Next.js app)\nNEXT_PUBLIC_SUPABASE_URL=${url}\nNEXT_PUBLIC_SUPABASE_ANON_KEY=${anonKey}\n`,
    { mode: 0o600 },
  );
}

/** A fresh incident: the worker stopped, both databases empty, the app and the worker on the project, an empty log. */
async function reset(workerEnv: Record<string, string> = {}): Promise<void> {
  await w.stop();
  for (const db of ['cloud', 'local'] as const)
    await sb.sql('truncate public.hd_assets, public.hd_ingestion_jobs', [], db);
  writeAppEnv(sb.info.cloud.url, sb.info.cloud.anonKey);
  w.writeEnv({
    SUPABASE_URL: sb.info.cloud.url,
    SUPABASE_SERVICE_ROLE_KEY: sb.info.cloud.serviceRoleKey,
    WORKER_POLL_MS: '200',
    ...workerEnv,
  });
  w.truncateLog();
}

/** Healthy history: jobs the worker finishes. */
async function drain(n = 2): Promise<void> {
  const ids = await insert(Array.from({ length: n }, () => ({})));
  await waitStatus(ids, 'done');
}

async function debugStuckJobs(): Promise<{ top: string | null; code: number | null; report: Report }> {
  const r = await runRunbook('debug-stuck-jobs', ['--config', sb.envFile, '--ci', '--json', '-']);
  let report: Report;
  try {
    report = JSON.parse(r.stdout) as Report;
  } catch {
    throw new Error(`not JSON on stdout (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { top: report.findings.find((f) => f.severity !== 'info')?.id ?? null, code: r.code, report };
}

/** The log so far, for a failing assertion's message. */
const logText = () => readFileSync(w.logFile, 'utf8').slice(-4000);

interface Case {
  /** The corpus incident this one plays: its expected top finding and exit code are the expectation. */
  incident: string;
  what: string;
  play: () => Promise<void>;
}

const CASES: Case[] = [
  {
    incident: '01-b-json-circular',
    what: 'import_assets_jsonl keeps the whole parsed line as source_line: json.dumps raises ValueError',
    async play() {
      await reset({ WORKER_SOURCE_LINE: 'full' });
      w.start();
      const ok = await insert([{ type: 'generate_thumbnails' }]);
      await waitStatus(ok, 'done');
      await waitStatus(await insert([{}, {}]), 'failed');
    },
  },
  {
    incident: '10-b-other-job-type',
    what: 'generate_thumbnails keeps the parent in each variant: json.dumps raises in another job type',
    async play() {
      await reset({ WORKER_THUMBNAIL_DEBUG: 'full' });
      w.start();
      await drain();
      await waitStatus(await insert([{ type: 'generate_thumbnails', payload: { asset: 'a-001' } }]), 'failed');
    },
  },
  {
    incident: '12-a-app-on-local-cli',
    what: "the app's env points at the local instance, where three jobs wait",
    async play() {
      await reset();
      w.start();
      await drain();
      writeAppEnv(sb.info.local.url, sb.info.local.anonKey);
      await insert([{ minutesAgo: 42 }, { minutesAgo: 31 }, { minutesAgo: 20 }], 'local');
    },
  },
  {
    incident: '16-a-sandbox-worker-wrong',
    what: "the worker's .env points at the local instance; the app and the laptop use the project, where jobs wait",
    async play() {
      await reset({ SUPABASE_URL: sb.info.local.url, SUPABASE_SERVICE_ROLE_KEY: sb.info.local.serviceRoleKey });
      await insert([{ status: 'done', minutesAgo: 131, startedMinutesAgo: 130.5, finishedMinutesAgo: 130 }]);
      await insert([{ minutesAgo: 33 }, { minutesAgo: 21 }]);
      w.start();
      await PythonWorker.waitFor(() => /poll queued=0/.test(logText()), 'the worker polling its (empty) instance');
    },
  },
  {
    incident: '23-input-json-decode',
    what: 'a JSONL line cut short: json.loads raises JSONDecodeError',
    async play() {
      await reset();
      w.start();
      await drain();
      await waitStatus(await insert([{ payload: { jsonl: BAD_JSONL } }]), 'failed');
    },
  },
  {
    incident: '26-storage-object-404',
    what: "the job's file is not in Storage: requests' raise_for_status on the 404",
    async play() {
      await reset();
      w.start();
      await drain();
      await waitStatus(await insert([{ payload: { source: 'imports/6f1c2a44/batch-0115.jsonl' } }]), 'failed');
    },
  },
  {
    incident: '28-network-httpx-read-timeout',
    what: 'the embeddings service refuses the connection: urllib URLError [Errno 111]',
    async play() {
      await reset({ EMBEDDINGS_URL: 'http://127.0.0.1:9/v1/embeddings' });
      w.start();
      await drain();
      await waitStatus(await insert([{ type: 'embed_assets', payload: { batches: 1 } }]), 'failed');
    },
  },
  {
    incident: '35-disk-full-old-history',
    what: 'the model cache is written to a full device: OSError [Errno 28]',
    async play() {
      await reset({ WORKER_CACHE_FILE: '/dev/full' });
      w.start();
      await drain();
      await waitStatus(await insert([{ type: 'cache_model', payload: {} }]), 'failed');
    },
  },
  {
    incident: '31-worker-key-rejected',
    what: "the worker's key no longer verifies: every poll answers 401",
    async play() {
      const key = sb.info.cloud.serviceRoleKey;
      const revoked = `${key.slice(0, -6)}${key.slice(-6).split('').reverse().join('')}`;
      await reset({ SUPABASE_SERVICE_ROLE_KEY: revoked === key ? `${key.slice(0, -1)}x` : revoked });
      await insert([{ status: 'done', minutesAgo: 51, startedMinutesAgo: 50.5, finishedMinutesAgo: 50 }]);
      await insert([{ minutesAgo: 35 }, { minutesAgo: 22 }, { minutesAgo: 9 }]);
      w.start();
      await PythonWorker.waitFor(() => /poll failed: HTTP Error 401/.test(logText()), 'a rejected poll');
    },
  },
  {
    incident: '32-crash-loop-import-error',
    what: 'a deploy without its dependency: ModuleNotFoundError at start, restarted again and again',
    async play() {
      await reset({ WORKER_PLUGINS: 'hd_gpu_kernels' });
      await insert([{ status: 'done', minutesAgo: 36, startedMinutesAgo: 35.5, finishedMinutesAgo: 35 }]);
      await insert([{ minutesAgo: 28 }, { minutesAgo: 19 }, { minutesAgo: 6 }]);
      const before = w.starts;
      w.start({ restartOnExit: true });
      await PythonWorker.waitFor(() => w.starts >= before + 4, 'four starts');
      expect(logText()).toContain("ModuleNotFoundError: No module named 'hd_gpu_kernels'");
    },
  },
  {
    incident: '36-worker-down-ansi',
    what: 'the worker stopped (SIGTERM) after a job, logging in colour; jobs wait',
    async play() {
      await reset({ WORKER_LOG_LAYOUT: 'ansi' });
      w.start();
      await drain(1);
      await w.stop();
      await insert([{ minutesAgo: 40 }, { minutesAgo: 25 }, { minutesAgo: 3 }]);
    },
  },
  {
    incident: '37-killed-mid-job',
    what: 'SIGKILL in the middle of a long embed_assets job, then the worker restarted',
    async play() {
      await reset();
      w.start();
      await drain(1);
      const [id] = await insert([{ type: 'embed_assets', payload: { batches: 500, seconds_per_batch: 0.2 } }]);
      await waitStatus([id], 'running');
      await PythonWorker.waitFor(() => logText().includes(`job ${id} embedding batch 3/`), 'the job under way');
      await w.kill('SIGKILL');
      // As if it had run for 14 minutes before the OOM killer came.
      await sb.sql(
        "update public.hd_ingestion_jobs set created_at = now() - interval '15 minutes', started_at = now() - interval '14 minutes' where id = $1",
        [id],
      );
      w.start();
      await PythonWorker.waitFor(() => (logText().match(/worker starting/g) ?? []).length >= 2, 'the restart');
      expect(await statusOf([id])).toEqual(['running']);
    },
  },
  {
    incident: '39-healthy-old-history-iso',
    what: "healthy now, with yesterday's failures in the table (outside the window) and their tracebacks in the log",
    async play() {
      await reset();
      // Yesterday's log (the corpus incident's own render), then today's worker appends to it.
      writeFileSync(w.logFile, readFileSync(path.join(LOGS_DIR, '39-healthy-old-history-iso.log')));
      await insert([
        {
          status: 'failed',
          attempts: 1,
          error: 'ValueError: Circular reference detected',
          minutesAgo: 1701,
          startedMinutesAgo: 1700.5,
          finishedMinutesAgo: 1700,
        },
        {
          status: 'failed',
          attempts: 1,
          type: 'embed_assets',
          error: 'RuntimeError: CUDA out of memory. Tried to allocate 1006.00 MiB',
          minutesAgo: 1651,
          startedMinutesAgo: 1650.5,
          finishedMinutesAgo: 1650,
        },
      ]);
      w.start();
      await drain(3);
    },
  },
];

describe('corpus incidents with a real Python worker on Spark', () => {
  it('plays at least ten incidents, every corpus incident tagged e2e among them', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(10);
    const e2e = listIncidents().filter((n) => readIncident(n).tags.includes('e2e'));
    expect(CASES.map((c) => c.incident)).toEqual(expect.arrayContaining(e2e));
  });

  it.each(CASES)(
    '$incident: $what',
    async (c) => {
      const expected = readIncident(c.incident).expect;
      await c.play();
      const { top, code, report } = await debugStuckJobs();
      const seen = report.findings.map((f) => `${f.severity} ${f.id}`).join(', ');
      expect({ top, code }, `findings: ${seen}\nworker log:\n${logText()}`).toEqual({
        top: expected.top,
        code: expected.exit,
      });
    },
    120_000,
  );
});
