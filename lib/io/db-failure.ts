/**
 * What a failed Supabase request means to an operator: a kind, one line saying what failed, one saying what to do.
 * Pure: the status and the error body supabase-js returned, never the key.
 */
import { clip } from '../core/text.ts';
import { TRANSPORT_ERROR_PATTERN } from './http.ts';

export const JOBS_TABLE = 'hd_ingestion_jobs';

export type DbFailureKind =
  | 'unauthorized'
  | 'forbidden'
  | 'missing-table'
  | 'bad-request'
  | 'server'
  | 'timeout'
  | 'unreachable'
  | 'malformed';

export interface DbFailure {
  kind: DbFailureKind;
  status: number;
  /** One line: what failed (never a key). */
  message: string;
  /** One line: what to do. */
  fix: string;
}

export interface PgError {
  message?: string;
  code?: string;
  details?: string;
  hint?: string | null;
}

/** Maps what supabase-js returned to a failure an operator can act on. */
export function classifyDbError(status: number, error: PgError, url: string): DbFailure {
  const host = (() => {
    try {
      return new URL(url).host;
    } catch {
      return url;
    }
  })();
  const text = clip([error.message, error.hint].filter(Boolean).join(' — '), 300);
  const transport = TRANSPORT_ERROR_PATTERN.exec(error.message ?? '');
  if (status === 0 && transport) {
    const [, kind, message] = transport;
    if (kind === 'timeout') {
      return {
        kind: 'timeout',
        status,
        message,
        fix: `check the network to ${host} and Supabase's status page; raise --timeout if the link is just slow`,
      };
    }
    return {
      kind: 'unreachable',
      status,
      message,
      fix:
        kind === 'dns'
          ? 'check SUPABASE_URL for a typo (the project ref) and your DNS'
          : `check SUPABASE_URL (${host}) and that the API is up`,
    };
  }
  if (status === 0) return { kind: 'unreachable', status, message: text || 'no answer', fix: 'check SUPABASE_URL' };
  if (status === 200 || status === 201 || status === 206) {
    return {
      kind: 'malformed',
      status,
      message: `the API answered ${status} with a body that is not JSON`,
      fix: `check that SUPABASE_URL (${host}) is the project's API URL, not a proxy or dashboard page`,
    };
  }
  if (status === 401) {
    return {
      kind: 'unauthorized',
      status,
      message: `the key was rejected (401${error.code ? ` ${error.code}` : ''}: ${text})`,
      fix: "set SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_SECRET_KEY) to this project's key from Project Settings → API",
    };
  }
  if (status === 403) {
    return {
      kind: 'forbidden',
      status,
      message: `permission denied (403: ${text})`,
      fix: 'use the service-role or secret key: the key in use may read but not write the jobs table',
    };
  }
  if (status === 404 || error.code === 'PGRST205' || error.code === '42P01') {
    return {
      kind: 'missing-table',
      status,
      message: `table ${JOBS_TABLE} not found (${status}${error.code ? ` ${error.code}` : ''})`,
      fix: 'check SUPABASE_URL names the right project, or apply sandbox/migrations/001_hd_ingestion_jobs.sql',
    };
  }
  if (status >= 500) {
    return {
      kind: 'server',
      status,
      message: `the API failed (${status}${text ? `: ${text}` : ''})`,
      fix: "retry in a minute; if it persists check Supabase's status page and the project's API logs",
    };
  }
  return {
    kind: 'bad-request',
    status,
    message: `the API refused the request (${status}${error.code ? ` ${error.code}` : ''}: ${text})`,
    fix: 'this is likely a bug in the runbook or a schema difference; run with --verbose and report it',
  };
}
