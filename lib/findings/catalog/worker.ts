/**
 * What GPU ingestion workers die of besides failure B. Each regex is the wording of the real library (torch, json,
 * requests, httpx, PostgREST, Supabase Storage, the kernel, Node); test/unit/catalog-genuine.test.ts tests each with genuine output and cites where each was seen.
 */
import type { ErrorPattern } from './pattern.ts';

const GPU_OOM: readonly RegExp[] = [
  // torch ≥ 2.5 "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate …", 1.13–2.4 torch.cuda.…, older
  // "RuntimeError: CUDA out of memory. Tried to allocate …".
  /CUDA out of memory/i,
  /torch(?:\.cuda)?\.OutOfMemoryError\b/,
];

const DISK_FULL: readonly RegExp[] = [/No space left on device/i, /\[Errno 28\]/, /\bENOSPC\b/];

const IMPORT_ERROR: readonly RegExp[] = [
  // ModuleNotFoundError / ImportError, with or without the class name (a job row often holds str(e) only).
  /\bNo module named '/,
  /\bcannot import name '/,
  // Node: require() "Cannot find module 'x'", import "Cannot find package 'x' imported from …".
  /Cannot find (?:module|package) '[^'\n]+'/,
  /\bERR_MODULE_NOT_FOUND\b/,
];

const AUTH_REJECTED: readonly RegExp[] = [
  // PostgREST's JWT errors: PGRST301 (expired, malformed), PGRST302, PGRST303 (issued in the future).
  /\bPGRST30[0-3]\b/,
  /\bJWT expired\b/i,
  /Expected 3 parts in JWT/i,
  /\bJWSError\b/,
  // requests "401 Client Error: Unauthorized for url", httpx "Client error '401 Unauthorized' for url".
  /\b401\b[^\n]{0,30}Unauthorized/i,
];

const STORAGE_UNAVAILABLE: readonly RegExp[] = [
  // requests "404 Client Error: Not Found for url: …/storage/v1/object/…", httpx "'404 Not Found' for url '…'".
  /\b40[034]\b[^\n]*\/storage\/v1\/object\//i,
  // Supabase Storage's answers, as its clients repeat them.
  /\bObject not found\b/,
  /\bBucket not found\b/,
];

const NETWORK: readonly RegExp[] = [
  /requests\.exceptions\.(?:ConnectionError|ConnectTimeout|ReadTimeout|Timeout)\b/,
  /httpx\.(?:ConnectError|ConnectTimeout|ReadTimeout|WriteTimeout|PoolTimeout|ReadError|RemoteProtocolError)\b/,
  /HTTPS?ConnectionPool\([^)\n]*\): (?:Max retries exceeded|Read timed out)/,
  /Failed to establish a new connection/,
  // httpx.ConnectError's str(): the socket's own errno text.
  /\[Errno 111\] Connection refused/,
  // Node: net/http "connect ECONNREFUSED 127.0.0.1:443", "read ECONNRESET", "connect ETIMEDOUT".
  /\b(?:connect|read|write) (?:ECONNREFUSED|ECONNRESET|ETIMEDOUT)\b/,
];

const DECODE: readonly RegExp[] = [
  // json.decoder / simplejson.errors / orjson / ujson .JSONDecodeError; requests' own is excluded below.
  /\bJSONDecodeError\b/,
  // The decoders' str(): "Expecting value: line 1 column 49 (char 48)", orjson "unexpected character: line … (char …)".
  /\bline \d+ column \d+ \(char \d+\)/,
  /'[\w-]+' codec can't decode byte/,
  // ujson's decoder.
  /\bExpected object or value\b/,
];

/** A JSONDecodeError raised on an HTTP response body (requests/httpx `.json()`) is a server's answer, not the JSONL. */
const RESPONSE_BODY: readonly RegExp[] = [
  /requests\.exceptions\.JSONDecodeError/,
  /[\\/]requests[\\/]models\.py", line \d+, in json/,
  /[\\/]httpx[\\/]_models\.py", line \d+, in json/,
];

export const WORKER_PATTERNS: readonly ErrorPattern[] = [
  {
    id: 'job-auth-rejected',
    title: "Supabase rejects the worker's key while it works on jobs (401, JWT expired or malformed)",
    severity: 'critical',
    cause:
      "the worker's SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_SECRET_KEY) expired, was rotated, is for another project, or is not a JWT where one is expected",
    fix: "put the project's current service-role key in the worker's .env, restart the worker, then requeue the failed jobs",
    requeueSafe: true,
    error: [...AUTH_REJECTED],
    log: [...AUTH_REJECTED],
  },
  {
    id: 'gpu-out-of-memory',
    title: 'the GPU ran out of memory (CUDA out of memory)',
    severity: 'critical',
    cause:
      'a batch (or an input) needs more GPU memory than is free: the batch size is too large for the card, an input is unusually large, or another process holds the GPU',
    fix: "check nvidia-smi on Spark for other processes on the GPU; lower the worker's batch size in its .env (or cap the input size), restart the worker, then requeue",
    requeueSafe: true,
    error: [...GPU_OOM],
    log: [...GPU_OOM],
  },
  {
    id: 'disk-full',
    title: "the worker's disk is full (No space left on device)",
    severity: 'critical',
    cause:
      'a write on Spark failed because the file system is full: downloads, model caches, temporary files or logs filled it',
    fix: 'free space on Spark (df -h; clear old temporary files, caches and rotated logs), restart the worker, then requeue',
    requeueSafe: true,
    error: [...DISK_FULL],
    log: [...DISK_FULL],
  },
  {
    id: 'worker-import-error',
    title: 'the worker cannot import its code (a module or name missing after a deploy)',
    severity: 'critical',
    cause:
      "the deployed worker code needs a module or a name its environment does not have: a dependency not installed in the worker's virtualenv, a file left out of the deploy, or code and dependencies from different versions; the worker usually crash-loops",
    fix: "install the worker's dependencies in its virtualenv (or roll the deploy back), restart the worker and watch logs/worker.log for a clean start, then requeue",
    requeueSafe: true,
    error: [...IMPORT_ERROR],
    log: [...IMPORT_ERROR],
  },
  {
    id: 'storage-object-unavailable',
    title: "a job's file in Supabase Storage is missing or denied (404/403)",
    severity: 'warning',
    cause:
      'the object the job points at is not in the bucket (never uploaded, deleted, wrong path or bucket) or the worker may not read it (a storage policy)',
    fix: "check the job's file path against the bucket; upload the file or fix the storage policy, then requeue these jobs by id",
    requeueSafe: false,
    error: [...STORAGE_UNAVAILABLE],
    log: [...STORAGE_UNAVAILABLE],
  },
  {
    id: 'input-unreadable',
    title: "a job's input cannot be parsed (a bad JSON line or encoding in the JSONL)",
    severity: 'warning',
    cause:
      'the input file holds a line that is not valid JSON (truncated, a trailing comma, an empty line) or is not UTF-8; the same job will fail the same way every time',
    fix: 'find the line from the error (line, column, char), fix or drop it in the source file and upload it again; requeueing the same input fails again',
    requeueSafe: false,
    error: [...DECODE],
    log: [/\bJSONDecodeError\b/, /UnicodeDecodeError: '[\w-]+' codec can't decode byte/],
    unless: [...RESPONSE_BODY],
  },
  {
    id: 'worker-network-error',
    title: 'the worker could not reach a service in time (connection refused, reset or timed out)',
    severity: 'warning',
    cause:
      'a request from the worker to Supabase (or another service it calls) failed to connect or timed out: a network blip, DNS, a restart of the service, or a timeout shorter than a slow query',
    fix: "transient: check that Spark reaches the project (the diagnose-env checks), raise the worker's HTTP timeout if the same queries keep timing out, then requeue",
    requeueSafe: true,
    error: [...NETWORK],
    log: [...NETWORK],
  },
];
