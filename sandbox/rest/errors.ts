/**
 * Error bodies and HTTP statuses as PostgREST (as hosted by Supabase) produces them.
 * Sources: PostgREST docs "Errors" (status table, PGRST codes) and its Error module.
 */

/** The JSON body of every error the REST API answers: always these four keys. */
export interface PgrstErrorBody {
  code: string;
  message: string;
  details: string | null;
  hint: string | null;
}

/** The API gateway's own error body (no API key, unknown API key): Supabase sends only these two keys. */
export interface GatewayErrorBody {
  message: string;
  hint: string;
}

/** An error answer: status, body and any extra response headers. */
export interface ApiError {
  status: number;
  body: PgrstErrorBody | GatewayErrorBody;
  headers?: Record<string, string>;
}

/** An error answer with PostgREST's four-key body (everything but the gateway's own refusals). */
export interface PgrstApiError extends ApiError {
  body: PgrstErrorBody;
}

/** Builds an {@link ApiError}; `details` and `hint` default to null as PostgREST sends them. */
export function apiError(
  status: number,
  code: string,
  message: string,
  details: string | null = null,
  hint: string | null = null,
  headers?: Record<string, string>,
): PgrstApiError {
  return headers
    ? { status, body: { code, message, details, hint }, headers }
    : { status, body: { code, message, details, hint } };
}

/** Thrown inside the planner so deep parsers can bail out; `planRequest` turns it back into a value. */
export class ApiErrorException extends Error {
  readonly apiError: PgrstApiError;
  constructor(error: PgrstApiError) {
    super(error.body.message);
    this.apiError = error;
  }
}

/** Shape of the fields node-postgres puts on a server error. */
export interface PgServerError {
  code?: string;
  message: string;
  detail?: string;
  hint?: string;
}

/**
 * HTTP status for a PostgreSQL SQLSTATE, per PostgREST's documented table.
 * `authed` is false for the anonymous role: 42501 is then 401, else 403.
 */
export function statusForSqlState(code: string, message: string, authed: boolean): number {
  const exact: Record<string, number> = {
    '23503': 409,
    '23505': 409,
    '25006': 405,
    '53400': 500,
    '57P01': 503,
    P0001: 400,
    '42P01': 404,
    '42P17': 500,
  };
  if (code in exact) return exact[code];
  if (code === '42501') return authed ? 403 : 401;
  if (code === '42883') return message.startsWith('function xmlagg(') ? 406 : 404;
  // pg-safeupdate's "requires a WHERE clause" is a client error; other cardinality violations are not.
  if (code === '21000') return message.endsWith('requires a WHERE clause') ? 400 : 500;
  if (code === '22023') return message.startsWith('role') && message.endsWith('does not exist') ? 401 : 400;
  if (code.startsWith('PT')) {
    const n = Number(code.slice(2));
    return Number.isInteger(n) && n >= 100 && n <= 599 ? n : 500;
  }
  const byClass: Record<string, number> = {
    '08': 503,
    '09': 500,
    '0L': 403,
    '0P': 403,
    '25': 500,
    '28': 403,
    '2D': 500,
    '38': 500,
    '39': 500,
    '3B': 500,
    '40': 500,
    '53': 503,
    '54': 500,
    '55': 500,
    '57': 500,
    '58': 500,
    F0: 500,
    HV: 500,
    P0: 500,
    XX: 500,
  };
  return byClass[code.slice(0, 2)] ?? 400;
}

/** Maps an error raised by PostgreSQL during a request to the answer PostgREST would give. */
export function fromPgError(err: PgServerError, role: string): PgrstApiError {
  const code = err.code ?? 'PGRSTX00';
  const status = statusForSqlState(code, err.message, role !== 'anon');
  const headers = status === 401 ? { 'WWW-Authenticate': 'Bearer' } : undefined;
  return apiError(status, code, err.message, err.detail ?? null, err.hint ?? null, headers);
}

/** True when `e` looks like an error sent by the PostgreSQL server (it carries a SQLSTATE). */
export function isPgServerError(e: unknown): e is PgServerError {
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof (e as { code?: unknown }).code === 'string' &&
    /^[0-9A-Z]{5}$/.test((e as { code: string }).code)
  );
}
