/**
 * The sandbox's Supabase-compatible HTTP API for one project: `/rest/v1/*` answered like PostgREST behind
 * Supabase's gateway, over a real PostgreSQL reached as the `authenticator` role.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import pg from 'pg';
import type { HttpFault, SandboxControls, SandboxStats } from '../stats.ts';
import { type ProjectKeys, resolveRole } from './auth.ts';
import { apiError, fromPgError, isPgServerError } from './errors.ts';
import { gatewayAnswer } from './gateway.ts';
import { bodyTooLarge, type RestLimits, SUPABASE_LIMITS, uriTooLong, urlLimitAnswer } from './limits.ts';
import type { SchemaCache } from './query.ts';
import {
  answerCannotFail,
  errorAnswer,
  estimateTotal,
  type HttpAnswer,
  planRequest,
  respond,
  type StatementRow,
} from './query.ts';
import { loadRoleSettings, type RoleSettings, roleSettingCalls } from './role-settings.ts';
import { loadSchemaCache } from './schema.ts';
import { type RequestTransaction, requestTransaction } from './transaction.ts';
import {
  connectionErrorMessage,
  jwtFailure,
  type PostgrestVersion,
  proxyStatusHeader,
  tableNotFound,
} from './versions.ts';

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
  /** Supabase's limits ({@link SUPABASE_LIMITS}) unless said otherwise; 0 turns one off. */
  limits?: Partial<RestLimits>;
}

/** A running REST API. `url` is the project base URL, what `SUPABASE_URL` would hold. */
export interface RestApi {
  url: string;
  port: number;
  limits: RestLimits;
  /** Applies the controls that are a state rather than a per-request fault (pool-exhausted) now. */
  syncControls(): void;
  close(): Promise<void>;
}

const REST_PREFIX = '/rest/v1';
/** Node refuses a request line and headers above 16 KB by default (431); the gateway's own limits answer first. */
const MAX_HEADER_BYTES = 1024 * 1024;

const CORS_HEADERS: Record<string, string> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers':
    'Content-Encoding, Content-Location, Content-Range, Content-Type, Date, Location, Server, Transfer-Encoding, Range-Unit',
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The answer an injected `status` fault gives: what that status typically carries on Supabase. */
function faultAnswer(status: number, path: string, version: PostgrestVersion): HttpAnswer {
  if (status === 404 && path.startsWith(`${REST_PREFIX}/`)) {
    // What PostgREST answers for a table that is not in its schema (a missing migration, another project).
    const table = decodeURIComponent(path.slice(REST_PREFIX.length + 1).split('/')[0] ?? '');
    return errorAnswer(tableNotFound('public', table, [], version));
  }
  if (status === 401) {
    const { code, message } = jwtFailure({ kind: 'signature' }, version) ?? { code: 'PGRST301', message: '' };
    return errorAnswer(apiError(401, code, message));
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

/** A JSON body cut short, as a proxy dropping the connection mid-response would leave it. */
const MALFORMED_BODY = '[{"id":"5f0c2a8e-1b7d-4c3e-9a6f-2d8b7e4c1a90","status":"queu';

/**
 * Reads the request body: its text, `undefined` when it exceeds `maxBytes` (0: no limit; the rest is drained unread),
 * and its size.
 */
function readBody(req: IncomingMessage, maxBytes: number): Promise<{ text: string | undefined; bytes: number }> {
  const cap = maxBytes > 0 ? maxBytes : Number.POSITIVE_INFINITY;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= cap) chunks.push(chunk);
    });
    req.on('end', () =>
      resolve({ text: size > cap ? undefined : Buffer.concat(chunks).toString('utf8'), bytes: size }),
    );
    req.on('error', reject);
  });
}

/** v13+: PostgREST's error answers carry `Proxy-Status` (the gateway's own refusals have no code, and none). */
function withProxyStatus(answer: HttpAnswer, version: PostgrestVersion): HttpAnswer {
  if (answer.status < 400) return answer;
  let code: unknown;
  try {
    code = (JSON.parse(answer.body) as { code?: unknown }).code;
  } catch {
    return answer;
  }
  if (typeof code !== 'string') return answer;
  return { ...answer, headers: { ...answer.headers, ...proxyStatusHeader(code, version) } };
}

/** The query string for the stats, without a key a client may have put there (`?apikey=`). */
function recordedQuery(url: URL): string {
  return url.search.replace(/([?&]apikey=)[^&]*/gi, '$1[key]');
}

/**
 * The fault that applies to this request, if any; a fault limited to `times` requests is used up here. A size fault
 * applies only to a request over its size; pool-exhausted is a state, not a per-request fault.
 */
function activeFault(
  controls: SandboxControls,
  name: string,
  method: string,
  path: string,
  sizes: { urlBytes: number; bodyBytes: number },
  client: string,
): HttpFault | undefined {
  const f = controls.httpFault;
  if (!f || (f.api !== undefined && f.api !== name)) return undefined;
  if (f.kind === 'pool-exhausted') return undefined;
  if (f.kind === 'url-too-long' && sizes.urlBytes <= f.bytes) return undefined;
  if (f.kind === 'body-too-large' && sizes.bodyBytes <= f.bytes) return undefined;
  if (f.method !== undefined && f.method.toUpperCase() !== method) return undefined;
  if (f.path !== undefined && !path.includes(f.path)) return undefined;
  if (f.client !== undefined && !client.startsWith(f.client)) return undefined;
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
  const limits: RestLimits = { ...SUPABASE_LIMITS, ...options.limits };
  const version = limits.postgrest;
  // PostgREST's db-pool (10) and db-pool-acquisition-timeout (10 s); pg-pool's wait for a client is that timeout.
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: limits.pool,
    idleTimeoutMillis: 10_000,
    connectionTimeoutMillis: limits.poolTimeoutMs,
  });
  let schemaCache: SchemaCache | undefined;
  let roleSettings: RoleSettings | undefined;
  // An idle client losing its server (sandbox shutting down) must not crash the process.
  pool.on('error', () => {});
  const authConfig = { jwtSecret: options.jwtSecret, keys: options.keys, ref: options.ref, version };
  const planOptions = { maxRows: limits.maxRows > 0 ? limits.maxRows : null, version };
  const sockets = new Set<Socket>();

  // The pool-exhausted fault: every connection of the pool checked out and held, so requests wait for one and, after
  // the acquisition timeout, get 504 PGRST003 as from a saturated PostgREST.
  const held: pg.PoolClient[] = [];
  let holdingPool = false;
  const grab = (): void => {
    pool
      .connect()
      .then((c) => (holdingPool ? held.push(c) : c.release()))
      .catch(() => {
        if (holdingPool) setTimeout(grab, 50);
      });
  };
  function syncControls(): void {
    const f = controls.httpFault;
    const on = f?.kind === 'pool-exhausted' && (f.api === undefined || f.api === name);
    if (on && !holdingPool) {
      holdingPool = true;
      for (let i = 0; i < limits.pool; i++) grab();
    } else if (!on && holdingPool) {
      holdingPool = false;
      for (const c of held.splice(0)) c.release();
    }
  }

  async function execute(
    role: string,
    claims: Record<string, unknown>,
    method: string,
    path: string,
    headers: IncomingMessage['headers'],
    run: (tx: RequestTransaction) => Promise<HttpAnswer>,
    readOnly: boolean,
  ): Promise<HttpAnswer> {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (e) {
      const why = String((e as Error).message);
      // pg-pool's words for "no client within connectionTimeoutMillis": PostgREST's AcquisitionTimeoutUsageError.
      if (why.includes('timeout exceeded when trying to connect')) {
        return errorAnswer(apiError(504, 'PGRST003', 'Timed out acquiring connection from connection pool.'));
      }
      return errorAnswer(apiError(503, 'PGRST000', connectionErrorMessage(version), why));
    }
    let broken = false;
    try {
      // As PostgREST: the impersonated role's settings (statement_timeout) are read once, applied per transaction.
      roleSettings ??= await loadRoleSettings(client);
      const settings = roleSettingCalls(roleSettings, role, 6);
      // BEGIN and these settings go with the request's first statement (transaction.ts).
      const tx = requestTransaction(client, readOnly ? 'BEGIN READ ONLY' : 'BEGIN', {
        text: `SELECT ${[...settings.sql, ''].join(', ')}set_config('role', $1, true), set_config('request.jwt.claims', $2, true),
                set_config('request.method', $3, true), set_config('request.path', $4, true),
                set_config('request.headers', $5, true)`,
        values: [role, JSON.stringify(claims), method, path, JSON.stringify(headers), ...settings.values],
      });
      const answer = await run(tx);
      // A request answered without a statement (a planning error) still runs its settings, and their error wins.
      await tx.flush();
      await tx.end(!(answer.rollback || answer.status >= 400));
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
    if (!resolution.ok) return { answer: withProxyStatus(errorAnswer(resolution.error), version), role: 'none' };
    const { role, claims } = resolution;
    const method = (req.method ?? 'GET').toUpperCase();
    const restPath = url.pathname.slice(REST_PREFIX.length) || '/';
    const answer = await execute(
      role,
      claims,
      method,
      url.pathname,
      req.headers,
      async (tx) => {
        const request = { method, path: restPath, query: url.searchParams, headers: req.headers, body };
        if (!schemaCache) schemaCache = await loadSchemaCache(tx);
        let schema = schemaCache;
        let planned = planRequest(request, schema, planOptions);
        // Like PostgREST, the catalog is cached; unlike it, there is no NOTIFY to reload on. A name the cache does
        // not know may be new (a function a test just created): reload once and plan again before saying 404/400.
        if (!planned.ok && STALE_CACHE_CODES.has(String(planned.error.body.code))) {
          schemaCache = await loadSchemaCache(tx);
          schema = schemaCache;
          planned = planRequest(request, schema, planOptions);
        }
        if (!planned.ok) return errorAnswer(planned.error);
        const plan = planned.plan;
        if (plan.kind === 'root') return rootAnswer(schema.tables.keys(), plan.headOnly);
        const { rows } = await tx.query<StatementRow>(plan.statement.text, plan.statement.values, {
          commit: answerCannotFail(plan),
        });
        let row = rows[0];
        const estimated =
          plan.kind === 'read' ? estimateTotal(plan, row.total === null ? null : Number(row.total)) : undefined;
        if (plan.kind === 'read' && plan.estimate && estimated) {
          const explained = await tx.query<{ 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] }>(
            plan.estimate.statement.text,
            plan.estimate.statement.values,
          );
          row = { ...row, total: estimated(Number(explained.rows[0]['QUERY PLAN'][0].Plan['Plan Rows'])) };
        }
        const pk = plan.kind === 'create' ? (schema.tables.get(plan.table)?.primaryKey ?? []) : [];
        return respond(plan, row, pk);
      },
      method === 'GET' || method === 'HEAD',
    );
    return { answer: withProxyStatus(answer, version), role };
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
    syncControls();
    let body: string | undefined;
    let bodyBytes: number;
    try {
      ({ text: body, bytes: bodyBytes } = await readBody(req, limits.maxBodyBytes));
    } catch {
      res.destroy();
      return;
    }
    const urlBytes = Buffer.byteLength(req.url ?? '');
    const fault = activeFault(controls, name, method, url.pathname, { urlBytes, bodyBytes }, clientOf(req));
    // The gateway in front of everything: Cloudflare's URL and body limits, then the size faults.
    const gateway =
      urlLimitAnswer(urlBytes, limits.maxUrlBytes) ??
      (body === undefined ? bodyTooLarge() : undefined) ??
      (fault?.kind === 'url-too-long' ? uriTooLong() : fault?.kind === 'body-too-large' ? bodyTooLarge() : undefined);

    if (gateway) {
      answer = gateway;
    } else if (fault?.kind === 'reset') {
      const r = await resolveRole(req.headers, authConfig, url.searchParams.get('apikey'));
      if (r.ok) role = r.role;
      if (controls.latencyMs > 0) await sleep(controls.latencyMs);
      req.socket.destroy();
      record(0, 0);
      return;
    } else if (method === 'OPTIONS') {
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
          ? faultAnswer(fault.status, url.pathname, version)
          : {
              status: 200,
              headers: { 'Content-Type': 'application/json; charset=utf-8' },
              body: MALFORMED_BODY,
              rollback: false,
            };
    } else {
      if (fault?.kind === 'slow') await sleep(fault.delayMs);
      if (url.pathname === REST_PREFIX || url.pathname.startsWith(`${REST_PREFIX}/`)) {
        try {
          ({ answer, role } = await answerRest(req, url, body ?? ''));
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
    if (!gateway && fault?.kind === 'reset-after') {
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

  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(apiError(500, 'PGRSTX00', 'Internal server error').body));
      } else {
        res.destroy();
      }
    });
  });
  // Node's server ends a connection idle for 5 s, before a watch's next refresh (every 5 s) could reuse it. Supabase's
  // edge is Cloudflare, which keeps an idle HTTP/1.1 client connection 400 s (developers.cloudflare.com,
  // fundamentals/reference/connection-limits: "Connection Keep-Alive HTTP/1.1: 400"); the sandbox does the same.
  server.keepAliveTimeout = 400_000;
  server.on('connection', (s) => {
    stats.recordHttpConnection(name);
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
    limits,
    syncControls,
    async close(): Promise<void> {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
      holdingPool = false;
      for (const c of held.splice(0)) c.release();
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
