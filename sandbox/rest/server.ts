/**
 * The sandbox's Supabase-compatible HTTP API for one project: `/rest/v1/*` answered like PostgREST behind
 * Supabase's gateway, over a real PostgreSQL reached as the `authenticator` role.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import pg from 'pg';
import type { HttpFault, SandboxControls, SandboxStats } from '../stats.ts';
import { type ProjectKeys, resolveRole } from './auth.ts';
import { apiError, fromPgError, isPgServerError } from './errors.ts';
import type { SchemaCache } from './query.ts';
import { errorAnswer, type HttpAnswer, planRequest, respond, type StatementRow } from './query.ts';
import { loadSchemaCache } from './schema.ts';

/** Errors that may only mean the cached catalog is older than the database. */
const STALE_CACHE_CODES = new Set(['PGRST205', 'PGRST202', 'PGRST204', '42703']);

/** Options of {@link startRestApi}. */
export interface RestApiOptions {
  /** Name of this API in stats and fault targeting, e.g. `cloud` or `local`. */
  name: string;
  /** Connection string of the `authenticator` role for the project's database. */
  connectionString: string;
  jwtSecret: string;
  ref: string;
  keys: ProjectKeys;
  /** Port on 127.0.0.1; 0 or omitted picks a free one. */
  port?: number;
  stats: SandboxStats;
  controls: SandboxControls;
}

/** A running REST API. `url` is the project base URL, what `SUPABASE_URL` would hold. */
export interface RestApi {
  url: string;
  port: number;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 10 * 1024 * 1024;
const REST_PREFIX = '/rest/v1';

const CORS_HEADERS: Record<string, string> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers':
    'Content-Encoding, Content-Location, Content-Range, Content-Type, Date, Location, Server, Transfer-Encoding, Range-Unit',
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The answer an injected `status` fault gives: what that status typically carries on Supabase. */
function faultAnswer(status: number, path: string): HttpAnswer {
  if (status === 404 && path.startsWith(`${REST_PREFIX}/`)) {
    // What PostgREST 12+ answers for a table that is not in its schema cache (a missing migration, another project).
    const table = decodeURIComponent(path.slice(REST_PREFIX.length + 1).split('/')[0] ?? '');
    return errorAnswer(
      apiError(404, 'PGRST205', `Could not find the table 'public.${table}' in the schema cache`, null, null),
    );
  }
  const bodies: Record<number, [string, string]> = {
    500: ['PGRSTX00', 'Internal server error (injected by the sandbox)'],
    502: ['PGRST001', 'Database client error. Retrying the connection.'],
    503: ['PGRST002', 'Could not query the database for the schema cache. Retrying.'],
    504: ['PGRST003', 'Timed out acquiring connection from connection pool.'],
    401: ['PGRST301', 'JWSError JWSInvalidSignature'],
    403: ['42501', 'permission denied (injected by the sandbox)'],
    429: ['PGRST429', 'Too many requests (injected by the sandbox)'],
  };
  const [code, message] = bodies[status] ?? [`PGRST${status}`, `HTTP ${status} (injected by the sandbox)`];
  return errorAnswer(apiError(status, code, message));
}

/** Where Cloudflare's captured pages live (their sources: test/fixtures/gateway/README.md). */
const GATEWAY_FIXTURES = new URL('../../test/fixtures/gateway/', import.meta.url);
/** The Cloudflare data centre each captured page names (Newark, Singapore), for its CF-RAY header. */
const GATEWAY_COLO: Record<number, string> = { 520: 'EWR', 522: 'EWR', 524: 'SIN' };

/**
 * What Supabase's gateway answers instead of the API: for 520/522/524 the genuine Cloudflare page with Cloudflare's
 * error-page headers and its Ray ID; for 540/544, whose bodies were never found captured, the status and the same
 * headers with an empty body (nothing invented: see test/fixtures/gateway/README.md).
 */
export function gatewayAnswer(status: number): HttpAnswer {
  const headers = JSON.parse(readFileSync(new URL('headers.json', GATEWAY_FIXTURES), 'utf8')) as Record<string, string>;
  let body = '';
  let ray = randomBytes(8).toString('hex');
  if (status in GATEWAY_COLO) {
    body = readFileSync(new URL(`cloudflare-${status}.html`, GATEWAY_FIXTURES), 'utf8');
    ray = /Ray ID: <strong[^>]*>([0-9a-f]+)</.exec(body)?.[1] ?? ray;
  }
  return {
    status,
    headers: { ...headers, 'cf-ray': `${ray}-${GATEWAY_COLO[status] ?? 'EWR'}` },
    body,
    rollback: false,
  };
}

/** A JSON body cut short, as a proxy dropping the connection mid-response would leave it. */
const MALFORMED_BODY = '[{"id":"5f0c2a8e-1b7d-4c3e-9a6f-2d8b7e4c1a90","status":"queu';

/** Reads the request body; `undefined` when it exceeds {@link MAX_BODY_BYTES} (the rest is drained unread). */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The query string for the stats, without a key a client may have put there (`?apikey=`). */
function recordedQuery(url: URL): string {
  return url.search.replace(/([?&]apikey=)[^&]*/gi, '$1[key]');
}

/** The fault that applies to this request, if any; a fault limited to `times` requests is used up here. */
function activeFault(controls: SandboxControls, name: string, method: string, path: string): HttpFault | undefined {
  const f = controls.httpFault;
  if (!f || (f.api !== undefined && f.api !== name)) return undefined;
  if (f.method !== undefined && f.method.toUpperCase() !== method) return undefined;
  if (f.path !== undefined && !path.includes(f.path)) return undefined;
  if (f.skip !== undefined && f.skip > 0) {
    f.skip -= 1;
    return undefined;
  }
  if (f.times !== undefined) {
    if (f.times <= 0) return undefined;
    f.times -= 1;
  }
  return f;
}

function clientOf(req: IncomingMessage): string {
  return String(req.headers['x-client-info'] ?? req.headers['user-agent'] ?? '').slice(0, 80);
}

/** Starts the API for one project. */
export async function startRestApi(options: RestApiOptions): Promise<RestApi> {
  const { name, stats, controls } = options;
  // PostgREST's default db-pool is 10.
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 10, idleTimeoutMillis: 10_000 });
  let schemaCache: SchemaCache | undefined;
  // An idle client losing its server (sandbox shutting down) must not crash the process.
  pool.on('error', () => {});
  const authConfig = { jwtSecret: options.jwtSecret, keys: options.keys, ref: options.ref };
  const sockets = new Set<Socket>();

  async function execute(
    role: string,
    claims: Record<string, unknown>,
    method: string,
    path: string,
    headers: IncomingMessage['headers'],
    run: (client: pg.PoolClient) => Promise<HttpAnswer>,
    readOnly: boolean,
  ): Promise<HttpAnswer> {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (e) {
      return errorAnswer(
        apiError(503, 'PGRST000', 'Database connection error. Retrying the connection.', String((e as Error).message)),
      );
    }
    let broken = false;
    try {
      await client.query(readOnly ? 'BEGIN READ ONLY' : 'BEGIN');
      await client.query(
        `SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true),
                set_config('request.method', $3, true), set_config('request.path', $4, true),
                set_config('request.headers', $5, true)`,
        [role, JSON.stringify(claims), method, path, JSON.stringify(headers)],
      );
      const answer = await run(client);
      await client.query(answer.rollback || answer.status >= 400 ? 'ROLLBACK' : 'COMMIT');
      return answer;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      if (isPgServerError(e)) return errorAnswer(fromPgError(e, role));
      broken = true;
      return errorAnswer(
        apiError(503, 'PGRST001', 'Database client error. Retrying the connection.', String((e as Error).message)),
      );
    } finally {
      client.release(broken);
    }
  }

  async function answerRest(
    req: IncomingMessage,
    url: URL,
    body: string,
  ): Promise<{ answer: HttpAnswer; role: string }> {
    const resolution = await resolveRole(req.headers, authConfig, url.searchParams.get('apikey'));
    if (!resolution.ok) return { answer: errorAnswer(resolution.error), role: 'none' };
    const { role, claims } = resolution;
    const method = (req.method ?? 'GET').toUpperCase();
    const restPath = url.pathname.slice(REST_PREFIX.length) || '/';
    const answer = await execute(
      role,
      claims,
      method,
      url.pathname,
      req.headers,
      async (client) => {
        const request = { method, path: restPath, query: url.searchParams, headers: req.headers, body };
        if (!schemaCache) schemaCache = await loadSchemaCache(client);
        let schema = schemaCache;
        let planned = planRequest(request, schema);
        // Like PostgREST, the catalog is cached; unlike it, there is no NOTIFY to reload on. A name the cache does
        // not know may be new (a function a test just created): reload once and plan again before saying 404/400.
        if (!planned.ok && STALE_CACHE_CODES.has(String(planned.error.body.code))) {
          schemaCache = await loadSchemaCache(client);
          schema = schemaCache;
          planned = planRequest(request, schema);
        }
        if (!planned.ok) return errorAnswer(planned.error);
        const plan = planned.plan;
        if (plan.kind === 'root') return rootAnswer(schema.tables.keys(), plan.headOnly);
        const { rows } = await client.query<StatementRow>(plan.statement.text, plan.statement.values);
        const pk = plan.kind === 'create' ? (schema.tables.get(plan.table)?.primaryKey ?? []) : [];
        return respond(plan, rows[0], pk);
      },
      method === 'GET' || method === 'HEAD',
    );
    return { answer, role };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const startedAt = Date.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://sandbox.invalid');
    let role = 'none';
    /** One stats event per request; status 0 when the connection was dropped on purpose (a fault). */
    const record = (status: number, bytesOut: number) =>
      stats.recordHttp({
        api: name,
        method,
        role,
        path: url.pathname,
        query: recordedQuery(url),
        client: clientOf(req),
        status,
        startedAt,
        endedAt: Date.now(),
        bytesOut,
      });
    let answer: HttpAnswer;
    const fault = activeFault(controls, name, method, url.pathname);

    let body: string | undefined;
    try {
      body = await readBody(req);
    } catch {
      res.destroy();
      return;
    }

    if (fault?.kind === 'reset') {
      const r = await resolveRole(req.headers, authConfig, url.searchParams.get('apikey'));
      if (r.ok) role = r.role;
      if (controls.latencyMs > 0) await sleep(controls.latencyMs);
      req.socket.destroy();
      record(0, 0);
      return;
    }

    if (method === 'OPTIONS') {
      answer = {
        status: 200,
        headers: {
          'Access-Control-Allow-Methods': 'GET, HEAD, POST, PATCH, DELETE, OPTIONS',
          'Access-Control-Allow-Headers': String(
            req.headers['access-control-request-headers'] ??
              'authorization, apikey, content-type, prefer, accept-profile, content-profile, range, x-client-info',
          ),
          'Access-Control-Max-Age': '86400',
        },
        body: '',
        rollback: false,
      };
    } else if (fault?.kind === 'gateway') {
      // The gateway answers in the API's place: no role is resolved, nothing reaches the database.
      answer = gatewayAnswer(fault.status);
    } else if (fault?.kind === 'status' || fault?.kind === 'malformed-json') {
      const r = await resolveRole(req.headers, authConfig, url.searchParams.get('apikey'));
      if (r.ok) role = r.role;
      // The request never reaches the database: a fault stands for an outage in front of it.
      answer =
        fault.kind === 'status'
          ? faultAnswer(fault.status, url.pathname)
          : {
              status: 200,
              headers: { 'Content-Type': 'application/json; charset=utf-8' },
              body: MALFORMED_BODY,
              rollback: false,
            };
    } else if (body === undefined) {
      answer = {
        status: 413,
        headers: { 'Content-Type': 'application/json; charset=utf-8', Connection: 'close' },
        body: JSON.stringify({ message: 'Request Entity Too Large' }),
        rollback: false,
      };
    } else {
      if (fault?.kind === 'slow') await sleep(fault.delayMs);
      if (url.pathname === REST_PREFIX || url.pathname.startsWith(`${REST_PREFIX}/`)) {
        try {
          ({ answer, role } = await answerRest(req, url, body));
        } catch (e) {
          answer = errorAnswer(apiError(500, 'PGRSTX00', 'Internal server error', String((e as Error).message)));
        }
      } else {
        // Supabase's gateway (Kong) answers unknown routes itself, in its own format.
        answer = {
          status: 404,
          headers: { 'Content-Type': 'application/json; charset=utf-8' },
          body: JSON.stringify({ message: 'no Route matched with those values' }),
          rollback: false,
        };
      }
    }

    if (controls.latencyMs > 0) await sleep(controls.latencyMs);
    if (fault?.kind === 'reset-after') {
      // Done (committed, for a write), but the client never hears so.
      req.socket.destroy();
      record(0, 0);
      return;
    }
    const payload = method === 'HEAD' ? '' : answer.body;
    const bytesOut = Buffer.byteLength(payload);
    const headers: Record<string, string | number> = { ...CORS_HEADERS, ...answer.headers };
    if (answer.status !== 204 && answer.status !== 304) headers['Content-Length'] = Buffer.byteLength(answer.body);
    res.writeHead(answer.status, headers);
    res.end(payload);
    record(answer.status, bytesOut);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(apiError(500, 'PGRSTX00', 'Internal server error').body));
      } else {
        res.destroy();
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async close(): Promise<void> {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
      await pool.end().catch(() => {});
    },
  };
}

/** `GET /rest/v1/`: a minimal OpenAPI description listing the exposed tables. */
function rootAnswer(tables: Iterable<string>, headOnly: boolean): HttpAnswer {
  const paths: Record<string, object> = { '/': {} };
  for (const t of tables) paths[`/${t}`] = {};
  const doc = {
    swagger: '2.0',
    info: { title: 'sandbox PostgREST replica', description: 'Supabase REST API sandbox', version: '13' },
    host: 'sandbox',
    basePath: '/',
    schemes: ['http'],
    consumes: ['application/json'],
    produces: ['application/json'],
    paths,
    definitions: {},
  };
  return {
    status: 200,
    headers: { 'Content-Type': 'application/openapi+json; charset=utf-8' },
    body: headOnly ? '' : JSON.stringify(doc),
    rollback: false,
  };
}
