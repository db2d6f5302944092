/**
 * Turns an incident (incidents/*.json) into the `Evidence` the gather layer would build from the same world: the
 * laptop's config through loadConfig, the queue snapshot with the four reads' filters, order and limits
 * (jobs-db.ts), the Spark probe's stdout parsed by parseProbeOutput itself, the worker's and the app's sides as
 * gather.ts reads them. Pure, and fast: no network, no child process.
 */

import { createHash, createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Evidence } from '../../lib/evidence/evidence.ts';
import { appSide, LOG_TAIL_BYTES } from '../../lib/evidence/gather.ts';
import { workerSide } from '../../lib/evidence/probe/worker-env.ts';
import { parseProbeOutput } from '../../lib/evidence/spark-probe.ts';
import { loadConfig, stuckRulesFrom } from '../../lib/io/config.ts';
import { findAppSupabaseUrl, parseEnvText } from '../../lib/io/env-file.ts';
import type { Job, QueueSnapshot } from '../../lib/io/jobs-db.ts';
import { classifySupabaseUrl } from '../../lib/io/supabase-url.ts';
import type { Incident, IncidentProcess, IncidentRow } from './incident.ts';

export const CORPUS_DIR = path.dirname(fileURLToPath(import.meta.url));
export const INCIDENTS_DIR = path.join(CORPUS_DIR, 'incidents');
export const LOGS_DIR = path.join(CORPUS_DIR, 'logs');
const FIXTURES_DIR = path.join(CORPUS_DIR, '..', 'fixtures', 'tracebacks');

/** The corpus's now; render-logs.py writes its log times against the same instant. */
export const CORPUS_NOW = new Date('2026-01-15T12:00:00Z');

export const REF = 'abcdefghijklmnopqrst';
export const OTHER_REF = 'zyxwvutsrqponmlkjihg';
const LAPTOP_DIR = '/home/oncall/hd-worker-runbooks';
const LAPTOP_ENV = `${LAPTOP_DIR}/.env`;
const APP_ENV = '/home/oncall/app/.env.local';
const DEFAULT_WORKER_DIR = '/home/sparkuser/srv/hd-worker';
const MARKER = '@@hd-probe-c0c0c0c0c0c0c0c0@@';

const ago = (minutes: number) => new Date(CORPUS_NOW.getTime() - minutes * 60_000);
/** Timestamps as PostgREST returns timestamptz. */
const pgTime = (minutes: number | undefined) =>
  minutes === undefined ? null : ago(minutes).toISOString().replace('Z', '+00:00');

// --- keys ---------------------------------------------------------------------------------------------------------

const b64url = (v: string | Buffer) => Buffer.from(v).toString('base64url');

/** A JWT as Supabase mints them (HS256, iss/ref/role/iat/exp), signed with a fixed corpus secret. */
function jwt(claims: Record<string, string>, expMinutesFromNow = 10 * 365 * 24 * 60): string {
  const exp = Math.floor(CORPUS_NOW.getTime() / 1000) + expMinutesFromNow * 60;
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ ...claims, iat: exp - 10 * 365 * 24 * 3600, exp }));
  const sig = createHmac('sha256', 'corpus-jwt-secret').update(`${head}.${body}`).digest();
  return `${head}.${body}.${b64url(sig)}`;
}

const opaque = (kind: 'secret' | 'publishable') =>
  `sb_${kind}_${createHash('sha256').update(kind).digest('hex').slice(0, 31)}`;

/** `$NAME` values in incidents: URLs and keys, so that no incident holds a key's text. */
export const TOKENS: Record<string, string> = {
  $CLOUD: `https://${REF}.supabase.co`,
  $OTHER_CLOUD: `https://${OTHER_REF}.supabase.co`,
  $SERVICE: jwt({ iss: 'supabase', ref: REF, role: 'service_role' }),
  $ANON: jwt({ iss: 'supabase', ref: REF, role: 'anon' }),
  $SERVICE_OTHER: jwt({ iss: 'supabase', ref: OTHER_REF, role: 'service_role' }),
  $ANON_OTHER: jwt({ iss: 'supabase', ref: OTHER_REF, role: 'anon' }),
  $SERVICE_EXPIRED: jwt({ iss: 'supabase', ref: REF, role: 'service_role' }, -24 * 60),
  // The Supabase CLI's local instance and a self-hosted one: no ref in the key.
  $SERVICE_LOCAL: jwt({ iss: 'supabase-demo', role: 'service_role' }),
  $ANON_LOCAL: jwt({ iss: 'supabase-demo', role: 'anon' }),
  $SERVICE_SELFHOSTED: jwt({ iss: 'supabase', role: 'service_role' }),
  $ANON_SELFHOSTED: jwt({ iss: 'supabase', role: 'anon' }),
  $SECRET: opaque('secret'),
  $PUBLISHABLE: opaque('publishable'),
};

function resolve(value: string): string {
  if (!value.startsWith('$')) return value;
  const v = TOKENS[value];
  if (v === undefined) throw new Error(`unknown token ${value}`);
  return v;
}

/** Defaults merged with an incident's overrides (`null` removes a default); tokens resolved. */
function envText(defaults: Record<string, string>, over: Record<string, string | null> = {}): string {
  const merged: Record<string, string | null> = { ...defaults, ...over };
  return Object.entries(merged)
    .filter((e): e is [string, string] => e[1] !== null)
    .map(([k, v]) => `${k}=${resolve(v)}`)
    .join('\n')
    .concat('\n');
}

const LAPTOP_DEFAULTS = {
  SUPABASE_URL: '$CLOUD',
  SUPABASE_SERVICE_ROLE_KEY: '$SERVICE',
  SPARK_HOST: '100.101.102.103',
  SPARK_USER: 'sparkuser',
  SPARK_WORKER_DIR: '~/srv/hd-worker',
  APP_ENV_FILE: APP_ENV,
};
const WORKER_DEFAULTS = { SUPABASE_URL: '$CLOUD', SUPABASE_SERVICE_ROLE_KEY: '$SERVICE', WORKER_POLL_MS: '2000' };
const APP_DEFAULTS = { NEXT_PUBLIC_SUPABASE_URL: '$CLOUD', NEXT_PUBLIC_SUPABASE_ANON_KEY: '$ANON' };

// --- files --------------------------------------------------------------------------------------------------------

/** The incidents' names (their file names without .json), sorted. */
export function listIncidents(): string[] {
  return readdirSync(INCIDENTS_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

export function readIncident(name: string): Incident {
  return JSON.parse(readFileSync(path.join(INCIDENTS_DIR, `${name}.json`), 'utf8')) as Incident;
}

/** The log render-logs.py wrote for the incident (bytes as Python wrote them: CRLF and escapes kept). */
export function renderedLog(name: string): Buffer | undefined {
  try {
    return readFileSync(path.join(LOGS_DIR, `${name}.log`));
  } catch {
    return undefined;
  }
}

/** The spec's hash as render-logs.py computes it (sorted keys, no spaces): a changed spec needs a new render. */
export function specHash(spec: unknown): string {
  const canonical = (v: unknown): string => {
    if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      return `{${Object.keys(o)
        .sort()
        .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
        .join(',')}}`;
    }
    return JSON.stringify(v);
  };
  return createHash('sha256').update(canonical(spec)).digest('hex');
}

interface FixtureCase {
  type: string;
  message: string;
}
let fixtureIndex: Record<string, FixtureCase> | undefined;

/** A row's error as the worker wrote it; genuine messages come from the traceback fixtures. */
function rowError(e: IncidentRow['error']): string | null {
  if (e === undefined || e === null) return null;
  if (typeof e === 'string') return e;
  fixtureIndex ??= (
    JSON.parse(readFileSync(path.join(FIXTURES_DIR, 'index.json'), 'utf8')) as {
      cases: Record<string, FixtureCase>;
    }
  ).cases;
  const c = fixtureIndex[e.fixture];
  if (!c) throw new Error(`no traceback fixture ${e.fixture}`);
  if (e.form === 'traceback') return readFileSync(path.join(FIXTURES_DIR, `${e.fixture}.txt`), 'utf8').trimEnd();
  return e.form === 'typed' ? `${c.type}: ${c.message}` : c.message;
}

function toJob(r: IncidentRow): Job {
  return {
    id: r.id,
    account_id: r.account_id === undefined ? '6f1c2a44-2d0e-4c55-9a51-3f6d3b1f0a10' : r.account_id,
    job_type: r.job_type ?? 'import_assets_jsonl',
    status: r.status,
    attempts: r.attempts ?? (r.status === 'queued' || r.status === 'pending' ? 0 : 1),
    error: rowError(r.error),
    debug: r.debug === undefined ? {} : r.debug,
    created_at: pgTime(r.createdMinutesAgo)!,
    started_at: pgTime(r.startedMinutesAgo),
    finished_at: pgTime(r.finishedMinutesAgo),
  };
}

// --- the queue, as jobs-db.ts reads it ----------------------------------------------------------------------------

const LIST_LIMIT = 50;
const t = (s: string | null) => (s === null ? Number.NEGATIVE_INFINITY : Date.parse(s));

/** The four reads of queueSnapshot: filters, order and limits as PostgREST applies them (failedSince: now − 24 h). */
export function queueSnapshot(jobs: readonly Job[], now: Date): QueueSnapshot {
  const since = new Date(now.getTime() - 24 * 3_600_000);
  const queued = jobs.filter((j) => j.status === 'queued' || j.status === 'pending');
  queued.sort((a, b) => t(a.created_at) - t(b.created_at));
  const running = jobs.filter((j) => j.status === 'running');
  // order started_at asc, nulls first
  running.sort((a, b) => t(a.started_at) - t(b.started_at));
  const failed = jobs.filter((j) => j.status === 'failed' && j.finished_at && t(j.finished_at) >= since.getTime());
  failed.sort((a, b) => t(b.finished_at) - t(a.finished_at));
  const done = jobs.filter((j) => j.status === 'done');
  // order finished_at desc, nulls last
  done.sort((a, b) => (b.finished_at ? t(b.finished_at) : -1e15) - (a.finished_at ? t(a.finished_at) : -1e15));
  return {
    queued: { count: queued.length, oldest: queued.slice(0, LIST_LIMIT) },
    running: { count: running.length, jobs: running.slice(0, LIST_LIMIT) },
    failed: { count: failed.length, recent: failed.slice(0, LIST_LIMIT), since: since.toISOString() },
    done: { count: done.length, latest: done[0] ?? null },
  };
}

// --- Spark: the probe's stdout, parsed by the probe's own parser --------------------------------------------------

/** Records of a log spec with repeats expanded (as render-logs.py does), for the time of the last one. */
function flatten(records: readonly unknown[], offset = 0): Array<{ at: number }> {
  return records.flatMap((r) => {
    const rec = r as { at?: number; repeat?: number; every?: number; records?: unknown[] };
    if (rec.repeat !== undefined)
      return Array.from({ length: rec.repeat }, (_, i) =>
        flatten(rec.records ?? [], offset + i * (rec.every ?? 1)),
      ).flat();
    return [{ at: (rec.at ?? 0) + offset }];
  });
}

const DEFAULT_PROCESS: IncidentProcess = {
  pid: 4242,
  ppid: 1,
  startedMinutesAgo: 2 * 24 * 60,
  args: `${DEFAULT_WORKER_DIR}/.venv/bin/python ${DEFAULT_WORKER_DIR}/worker.py`,
  comm: 'python',
};

/** What `bash -s` of buildProbeScript prints on Spark for this incident. */
function probeStdout(name: string, inc: Incident, sparkNow: Date): string {
  const w = inc.worker ?? {};
  const dir = w.dir ?? DEFAULT_WORKER_DIR;
  const sections: [string, string][] = [];
  const nowNs = `${BigInt(sparkNow.getTime()) * 1_000_000n}`;
  sections.push(['now', `${nowNs}\n`], ['tools', '']);
  const exists = w.dirExists ?? true;
  sections.push(['dir', exists ? `${dir}\n` : '-\n']);
  const env = w.env;
  sections.push([
    'env',
    !exists || env === 'missing'
      ? 'missing\n'
      : env === 'unreadable'
        ? 'unreadable\n'
        : `${Buffer.from(envText(WORKER_DEFAULTS, env)).toString('base64')}\n`,
  ]);
  const procs = exists ? (w.processes ?? [DEFAULT_PROCESS]) : [];
  const uptime = 3_000_000;
  sections.push([
    'process',
    procs
      .map(
        (p) =>
          `${String(p.pid).padStart(7)} ${String(p.ppid ?? 1).padStart(7)} ${String(Math.round(p.startedMinutesAgo * 60)).padStart(9)} ${(p.user ?? 'sparkuser').padEnd(32)} ${p.args}\n`,
      )
      .join(''),
  ]);
  sections.push([
    'procstart',
    procs.length
      ? `100\n${uptime}.00\n${nowNs}\n${procs
          .map(
            (p) =>
              `${p.pid} ${Math.round((uptime - p.startedMinutesAgo * 60) * 100)} ${p.comm ?? p.args.split(/\s+/)[0].split('/').pop()}\n`,
          )
          .join('')}`
      : '',
  ]);
  // What keeps each process running, as the supervisor section prints it: a worker under systemd, as on Spark.
  sections.push(['supervisor', procs.map((p) => `${p.pid}\thd-worker.service\t0\t-\tsystemd\n`).join('')]);
  const log = renderedLog(name);
  if (inc.log && !log) throw new Error(`${name}: logs/${name}.log is missing; run render-logs.py`);
  if (!exists || w.logMissing || !log) sections.push(['logstat', 'missing\n'], ['logtail', '']);
  else {
    const last = Math.min(...flatten(inc.log?.records ?? []).map((r) => r.at));
    const mtime = ago(w.logModifiedMinutesAgo ?? (Number.isFinite(last) ? last : 0.5));
    sections.push(['logstat', `${log.length} ${Math.floor(mtime.getTime() / 1000)}\n`]);
    // tail -c: the last LOG_TAIL_BYTES bytes, whatever they cut.
    sections.push(['logtail', log.subarray(Math.max(0, log.length - LOG_TAIL_BYTES)).toString('utf8')]);
  }
  const disk = w.disk ?? { availableKb: 1_200_000_000, usedPercent: 38 };
  const size = 1_921_802_520;
  sections.push([
    'disk',
    `/dev/nvme0n1p2 ${size} ${size - disk.availableKb} ${disk.availableKb} ${disk.usedPercent}% /\n`,
  ]);
  const reach = w.reach ?? { http: 200, seconds: 0.084 };
  sections.push([
    'reach',
    'curlError' in reach
      ? `curl: ${reach.curlError}\nhttp 000 0.002\n`
      : `http ${reach.http} ${reach.seconds ?? 0.084}\n`,
  ]);
  sections.push(['end', '']);
  return sections.map(([n, body]) => `\n${MARKER} ${n}\n${body}`).join('');
}

/** gather.ts appStep: the app's env file, and the other instance's queued count when it is not the laptop's. */
function appOfIncident(inc: Incident, laptopOrigin: string | undefined): Evidence['app'] {
  const vars = parseEnvText(envText(APP_DEFAULTS, inc.app?.env));
  const found = findAppSupabaseUrl(vars);
  if (!found) return undefined;
  const url = classifySupabaseUrl(found.url);
  const app = appSide(found, APP_ENV);
  if (!url.ok || url.origin === laptopOrigin) return app;
  // The gather step queries that instance with the CLI's default key (local) or the app's own key.
  if (url.kind !== 'local' && !found.key) return app;
  const instance = inc.app?.instance;
  if (!instance) throw new Error(`the app points at ${url.origin}, not the laptop's: say what that instance answers`);
  if ('error' in instance) app.other = { ok: false, message: instance.error };
  else {
    const q = queueSnapshot(instance.rows.map(toJob), CORPUS_NOW).queued;
    app.other = { ok: true, queued: q.count, oldest: q.oldest[0] ?? null };
  }
  return app;
}

/** The evidence debug-stuck-jobs would gather from the incident's world. */
export function loadEvidence(name: string, inc: Incident = readIncident(name)): Evidence {
  const laptopOver = { ...(inc.laptop ?? {}), ...(inc.app === null ? { APP_ENV_FILE: null } : {}) };
  const text = envText(LAPTOP_DEFAULTS, laptopOver);
  const config = loadConfig({
    envFileFlag: LAPTOP_ENV,
    cwd: LAPTOP_DIR,
    env: {},
    readFile: (f) => (f === LAPTOP_ENV ? text : undefined),
  });
  const now = CORPUS_NOW;
  const evidence: Evidence = {
    now,
    rules: stuckRulesFrom(config.values, {}),
    laptop: { ...config.laptop, envFile: config.envFile, issues: config.issues },
  };
  const jobs = inc.rows.map(toJob);
  evidence.supabase = { ok: true, ms: 84 };
  evidence.queue = queueSnapshot(jobs, now);
  if (config.values.SPARK_HOST) {
    const sparkNow = new Date(now.getTime() + (inc.worker?.clockSkewSeconds ?? 0.3) * 1000);
    const probe = parseProbeOutput(probeStdout(name, inc, sparkNow), MARKER, {
      workerDir: config.values.SPARK_WORKER_DIR ?? '~/srv/hd-worker',
      laptopMidpoint: now,
      logTailBytes: LOG_TAIL_BYTES,
    });
    evidence.spark = {
      ok: true,
      target: {
        host: config.values.SPARK_HOST,
        port: Number(config.values.SPARK_PORT ?? 2222),
        user: config.values.SPARK_USER ?? 'sparkuser',
        source: `SPARK_HOST in ${LAPTOP_ENV}`,
      },
      fingerprint: 'SHA256:corpus0spark0host0key0fingerprint0000000000',
      probe,
      connectMs: 120,
    };
    if (probe.workerDir.exists && probe.env.status === 'ok')
      evidence.worker = workerSide(probe.env.vars, probe.workerDir.path);
  }
  if (config.values.APP_ENV_FILE || config.values.APP_SUPABASE_URL) {
    evidence.app = appOfIncident(inc, config.laptop.url?.origin);
  }
  return evidence;
}
