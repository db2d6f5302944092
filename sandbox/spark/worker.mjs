// The reference hd_ingestion_jobs worker: what runs on Spark in ~/srv/hd-worker/.
// Dependency-free on purpose (only node: builtins, global fetch): it is copied into a folder with no
// node_modules. It behaves like the production (Python) worker where the runbooks can see it: the log
// format, the compare-and-set claim, the error texts written to the job row.
//
//   node /abs/path/srv/hd-worker/worker.mjs        (cwd = that folder; reads ./.env, appends ./logs/worker.log)

import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const CWD = process.cwd();
const LOG_DIR = path.join(CWD, 'logs');
const LOG_FILE = path.join(LOG_DIR, 'worker.log');
const SELECT = 'id,account_id,job_type,status,attempts,payload,debug,created_at';
const HTTP_TIMEOUT_MS = 15_000;
const SOURCE_LINE_MAX_FIELDS = 4;
const SOURCE_LINE_MAX_CHARS = 200;

/**
 * Parses KEY=VALUE text the way the usual .env loaders do: `#` comments, optional `export`,
 * single quotes literal, double quotes with \n \t \" \\ escapes, inline ` #` comments on unquoted values.
 * @param {string} text
 * @returns {Record<string, string>}
 */
function parseEnv(text) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1];
    let value = m[2];
    if (value.startsWith('"')) {
      const end = findClosingQuote(value, '"');
      value = value.slice(1, end === -1 ? undefined : end);
      value = value.replace(/\\([nrt"\\])/g, (_, c) => ({ n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' })[c]);
    } else if (value.startsWith("'")) {
      const end = value.indexOf("'", 1);
      value = value.slice(1, end === -1 ? undefined : end);
    } else {
      const hash = value.search(/\s#/);
      if (hash !== -1) value = value.slice(0, hash);
      value = value.trim();
    }
    out[key] = value;
  }
  return out;
}

/** @param {string} s @param {string} q */
function findClosingQuote(s, q) {
  for (let i = 1; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === q) return i;
  }
  return -1;
}

function loadConfig() {
  const envPath = path.join(CWD, '.env');
  const file = existsSync(envPath) ? parseEnv(readFileSync(envPath, 'utf8')) : {};
  // The .env is the worker's configuration (the runbooks read and fix that file); the process
  // environment only fills gaps, e.g. when a supervisor passes settings directly.
  /** @param {string} name */
  const get = (name) => {
    const v = file[name] ?? process.env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  const url = (get('SUPABASE_URL') ?? '').replace(/\/+$/, '');
  const key = get('SUPABASE_SERVICE_ROLE_KEY') ?? get('SUPABASE_SECRET_KEY') ?? '';
  const pollMs = positiveInt(get('WORKER_POLL_MS'), 1000);
  const maxAttempts = positiveInt(get('WORKER_MAX_ATTEMPTS'), 3);
  const sourceLine = get('WORKER_SOURCE_LINE') === 'full' ? 'full' : 'subset';
  return { url, key, pollMs, maxAttempts, sourceLine };
}

/** @param {string | undefined} v @param {number} fallback */
function positiveInt(v, fallback) {
  const n = Number(v);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

const config = loadConfig();

/** @param {string} text */
function redact(text) {
  return config.key ? text.split(config.key).join('***') : text;
}

/**
 * @param {'INFO' | 'WARN' | 'ERROR'} level
 * @param {string} message
 * @param {string[]} [extraLines] raw lines after the entry (a traceback), as Python's logging writes them
 */
function log(level, message, extraLines = []) {
  const text = [`${new Date().toISOString()} ${level} ${message}`, ...extraLines].join('\n');
  try {
    mkdirSync(LOG_DIR, { recursive: true });
    appendFileSync(LOG_FILE, `${redact(text)}\n`);
  } catch (err) {
    process.stderr.write(`cannot write ${LOG_FILE}: ${err instanceof Error ? err.message : err}\n`);
  }
}

// --- HTTP -----------------------------------------------------------------------------------------

class HttpError extends Error {
  /** @param {number | string} status @param {string} message */
  constructor(status, message) {
    super(`${status} ${message}`);
    this.status = status;
    this.detail = message;
  }
}

/**
 * One PostgREST request. Resolves the parsed body (and the response); throws HttpError on a non-2xx or
 * network failure, so the caller decides whether that fails a job or just a poll.
 * @param {string} method
 * @param {string} pathAndQuery
 * @param {{ body?: string, prefer?: string }} [opts]
 */
async function rest(method, pathAndQuery, opts = {}) {
  /** @type {Record<string, string>} */
  const headers = { apikey: config.key, Accept: 'application/json' };
  // A JWT (legacy service_role key) also goes in Authorization; an sb_secret_ key is not a JWT and only
  // belongs in apikey (the gateway mints the JWT). The runbooks' reach check sends the same headers.
  if (config.key.startsWith('eyJ')) headers.Authorization = `Bearer ${config.key}`;
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  if (opts.prefer) headers.Prefer = opts.prefer;
  let res;
  try {
    res = await fetch(`${config.url}/rest/v1/${pathAndQuery}`, {
      method,
      headers,
      body: opts.body,
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
    const code = cause && typeof cause === 'object' && 'code' in cause ? String(cause.code) : 'network';
    throw new HttpError(code, cause instanceof Error ? cause.message : String(cause));
  }
  const text = await res.text().catch(() => '');
  if (!res.ok) throw new HttpError(res.status, errorMessage(text, res.statusText));
  let data = null;
  if (text.trim() !== '') {
    try {
      data = JSON.parse(text);
    } catch {
      throw new HttpError(res.status, `invalid JSON in response: ${text.slice(0, 120)}`);
    }
  }
  return { data, res };
}

/** PostgREST puts the reason in `message` (Supabase's gateway too); fall back to the raw text. */
function errorMessage(text, statusText) {
  try {
    const body = JSON.parse(text);
    if (body && typeof body === 'object') {
      const msg = body.message ?? body.msg ?? body.error_description ?? body.error;
      if (typeof msg === 'string' && msg !== '') return msg.slice(0, 300);
    }
  } catch {
    // not JSON
  }
  return (text.trim() || statusText || 'no body').replace(/\s+/g, ' ').slice(0, 300);
}

// --- JSON like Python's json.dumps ------------------------------------------------------------------

/**
 * A traceback frame pointing at the line of this file where `jsFunction` is executing, so the traceback
 * leads somewhere real. Python shows each frame as two lines: location, then source.
 * @param {string} jsFunction
 * @param {string} source
 */
function workerFrame(jsFunction, source) {
  const file = process.argv[1] ?? 'worker.mjs';
  const frame = (new Error().stack ?? '').split('\n').find((l) => l.includes(`at ${jsFunction} `)) ?? '';
  const m = /:(\d+):\d+\)?$/.exec(frame);
  return `  File "${file}", line ${m ? m[1] : 0}, in ${jsFunction}\n    ${source}`;
}

class PyError extends Error {
  /** @param {string} type @param {string} message @param {string[]} frames */
  constructor(type, message, frames) {
    super(`${type}: ${message}`);
    this.pyType = type;
    this.frames = frames;
  }
}

/**
 * JSON.stringify, but a cycle fails the way the production worker's json.dumps fails, so the job row
 * and the log carry the text operators search for.
 * @param {unknown} value
 */
function dumps(value) {
  /** @type {Set<object>} */
  const stack = new Set();
  /** @param {unknown} v */
  const walk = (v) => {
    if (v === null || typeof v !== 'object') return;
    if (stack.has(v)) {
      throw new PyError('ValueError', 'Circular reference detected', [
        workerFrame('importAssetsJsonl', 'body = json.dumps(rows)'),
        '  File "/usr/lib/python3.12/json/__init__.py", line 231, in dumps',
        '    return _default_encoder.encode(obj)',
        '  File "/usr/lib/python3.12/json/encoder.py", line 200, in encode',
        '    chunks = self.iterencode(o, _one_shot=True)',
        '  File "/usr/lib/python3.12/json/encoder.py", line 258, in iterencode',
        '    return _iterencode(o, 0)',
      ]);
    }
    stack.add(v);
    for (const child of Object.values(v)) walk(child);
    stack.delete(v);
  };
  walk(value);
  return JSON.stringify(value);
}

// --- jobs -------------------------------------------------------------------------------------------

/** @param {string} s */
function cut(s) {
  return s.length > SOURCE_LINE_MAX_CHARS ? s.slice(0, SOURCE_LINE_MAX_CHARS) : s;
}

/**
 * What the production worker keeps of a source line: a few flat fields, never the whole object.
 * @param {number} lineNo
 * @param {Record<string, unknown>} obj
 */
function sourceLineSubset(lineNo, obj) {
  /** @type {Record<string, string | number | boolean | null>} */
  const out = { line: lineNo };
  /** @param {unknown} v */
  const primitive = (v) => v === null || ['string', 'number', 'boolean'].includes(typeof v);
  /** @param {unknown} v */
  const flat = (v) => (typeof v === 'string' ? cut(v) : /** @type {number | boolean | null} */ (v));
  if (primitive(obj.id)) out.id = flat(obj.id);
  if (primitive(obj.name)) out.name = flat(obj.name);
  let extra = 0;
  for (const [k, v] of Object.entries(obj)) {
    if (extra >= SOURCE_LINE_MAX_FIELDS - 1 || k === 'id' || k === 'name' || k === 'line') continue;
    if (!primitive(v)) continue;
    out[k] = flat(v);
    extra++;
  }
  return out;
}

/** @param {any} job @returns {Promise<number>} assets written */
async function importAssetsJsonl(job) {
  const payload = job.payload && typeof job.payload === 'object' ? job.payload : {};
  const jsonl = typeof payload.jsonl === 'string' ? payload.jsonl : '';
  const rows = [];
  const lines = jsonl.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const text = lines[i].trim();
    if (text === '') continue;
    let obj;
    try {
      obj = JSON.parse(text);
    } catch (err) {
      throw new PyError('json.decoder.JSONDecodeError', `line ${lineNo}: ${err instanceof Error ? err.message : err}`, [
        workerFrame('importAssetsJsonl', 'obj = json.loads(line)'),
      ]);
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) obj = { value: obj };
    const name = obj.name === undefined || obj.name === null ? `line-${lineNo}` : String(obj.name);
    let sourceLine;
    if (config.sourceLine === 'full') {
      // Failure B: the whole object goes into metadata, including a reference back to itself.
      obj.self = obj;
      sourceLine = obj;
    } else {
      sourceLine = sourceLineSubset(lineNo, obj);
    }
    rows.push({ job_id: job.id, account_id: job.account_id ?? null, name, metadata: { source_line: sourceLine } });
  }
  if (rows.length === 0) return 0;
  const body = dumps(rows);
  await rest('POST', 'hd_assets', { body, prefer: 'return=minimal' });
  return rows.length;
}

/** @param {any} job */
async function processJob(job) {
  if (job.job_type === 'import_assets_jsonl') return importAssetsJsonl(job);
  // Other job types have no work in the sandbox; a short pause keeps "running" observable.
  await sleep(50);
  return 0;
}

/**
 * Writes the outcome, only if the job is still ours (status running); every debug key already on the
 * job (requeue_history, notes from runbooks) is kept.
 * @param {any} job the claimed row
 * @param {{ status: 'done' | 'failed', error: string | null, startedAt: string, assets: number }} outcome
 */
async function finishJob(job, outcome) {
  const finishedAt = new Date().toISOString();
  const debug = job.debug && typeof job.debug === 'object' && !Array.isArray(job.debug) ? job.debug : {};
  const body = JSON.stringify({
    status: outcome.status,
    error: outcome.error,
    finished_at: finishedAt,
    debug: {
      ...debug,
      last_run: {
        worker_pid: process.pid,
        started_at: outcome.startedAt,
        finished_at: finishedAt,
        assets: outcome.assets,
      },
    },
  });
  const query = `hd_ingestion_jobs?id=eq.${encodeURIComponent(job.id)}&status=eq.running`;
  for (let attempt = 1; ; attempt++) {
    try {
      const { data } = await rest('PATCH', query, { body, prefer: 'return=representation' });
      if (Array.isArray(data) && data.length === 0) {
        log('WARN', `job ${job.id} was changed by someone else while running; result not written`);
      }
      return;
    } catch (err) {
      if (attempt >= 3) {
        log('ERROR', `job ${job.id} finish failed: ${err instanceof Error ? err.message : err}`);
        return;
      }
      await sleep(200 * attempt);
    }
  }
}

/**
 * @param {any} seen the queued row as the poll saw it
 * @returns {Promise<any | null>} the claimed row, or null when another worker got there first
 */
async function claim(seen) {
  const attempts = Number(seen.attempts) || 0;
  const query =
    `hd_ingestion_jobs?id=eq.${encodeURIComponent(seen.id)}` +
    `&status=eq.${encodeURIComponent(seen.status)}&attempts=eq.${attempts}`;
  const body = JSON.stringify({
    status: 'running',
    started_at: new Date().toISOString(),
    finished_at: null,
    attempts: attempts + 1,
  });
  const { data } = await rest('PATCH', query, { body, prefer: 'return=representation' });
  return Array.isArray(data) && data.length > 0 ? data[0] : null;
}

/** @param {any} seen */
async function failWithoutRunning(seen, error) {
  const query =
    `hd_ingestion_jobs?id=eq.${encodeURIComponent(seen.id)}` +
    `&status=eq.${encodeURIComponent(seen.status)}&attempts=eq.${Number(seen.attempts) || 0}`;
  const debug = seen.debug && typeof seen.debug === 'object' && !Array.isArray(seen.debug) ? seen.debug : {};
  const body = JSON.stringify({ status: 'failed', error, finished_at: new Date().toISOString(), debug });
  await rest('PATCH', query, { body, prefer: 'return=representation' });
  log('ERROR', `job ${seen.id} failed: ${error}`);
}

/** One poll: look at the oldest queued job, claim it, run it, record the result. */
async function pollOnce() {
  let rows;
  let queued;
  try {
    const { data, res } = await rest(
      'GET',
      `hd_ingestion_jobs?select=${SELECT}&status=in.(queued,pending)&order=created_at.asc&limit=1`,
      { prefer: 'count=exact' },
    );
    rows = Array.isArray(data) ? data : [];
    const total = /\/(\d+)\s*$/.exec(res.headers.get('content-range') ?? '');
    queued = total ? Number(total[1]) : rows.length;
  } catch (err) {
    log('ERROR', `poll failed: ${err instanceof Error ? err.message : err}`);
    return;
  }
  log('INFO', `poll queued=${queued}`);
  const seen = rows[0];
  if (!seen || stopping) return;

  const attempts = Number(seen.attempts) || 0;
  if (attempts >= config.maxAttempts) {
    try {
      await failWithoutRunning(seen, `max attempts exceeded (${attempts}/${config.maxAttempts})`);
    } catch (err) {
      log('ERROR', `poll failed: ${err instanceof Error ? err.message : err}`);
    }
    return;
  }

  let job;
  try {
    job = await claim(seen);
  } catch (err) {
    log('ERROR', `poll failed: ${err instanceof Error ? err.message : err}`);
    return;
  }
  if (!job) {
    log('INFO', `job ${seen.id} claimed by another worker; skipping`);
    return;
  }
  log('INFO', `job ${job.id} claimed`);

  const startedAt = job.started_at ?? new Date().toISOString();
  try {
    const assets = await processJob(job);
    await finishJob(job, { status: 'done', error: null, startedAt, assets });
    log('INFO', `job ${job.id} done assets=${assets}`);
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    const traceback = err instanceof PyError ? ['Traceback (most recent call last):', ...err.frames, error] : [];
    log('ERROR', `job ${job.id} failed: ${error}`, traceback);
    await finishJob(job, { status: 'failed', error, startedAt, assets: 0 });
  }
}

// --- main loop --------------------------------------------------------------------------------------

let stopping = false;
/** @type {(() => void) | null} */
let wake = null;

/** @param {number} ms */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A poll-interval sleep that a stop signal cuts short. */
function idle(ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      wake = null;
      resolve(undefined);
    }
    wake = done;
  });
}

/** @param {NodeJS.Signals} signal */
function onSignal(signal) {
  if (!stopping) log('INFO', `worker stopping signal=${signal}`);
  stopping = true;
  wake?.();
}

async function main() {
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  // A bug must not take the worker down silently: log it, keep polling.
  process.on('unhandledRejection', (err) => log('ERROR', `unhandled: ${err instanceof Error ? err.stack : err}`));

  log('INFO', `worker started pid=${process.pid} url=${config.url}`);
  if (!config.url || !config.key) {
    log(
      'ERROR',
      `config: ${!config.url ? 'SUPABASE_URL' : 'SUPABASE_SERVICE_ROLE_KEY'} missing in ${path.join(CWD, '.env')}`,
    );
    process.exitCode = 1;
    return;
  }
  while (!stopping) {
    try {
      await pollOnce();
    } catch (err) {
      log('ERROR', `poll failed: ${err instanceof Error ? err.message : err}`);
    }
    if (!stopping) await idle(config.pollMs);
  }
  log('INFO', `worker stopped pid=${process.pid}`);
  // Idle keep-alive sockets of fetch must not hold the process open after a stop.
  process.exit(0);
}

await main();
