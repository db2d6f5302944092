/**
 * What a failed Supabase request means to an operator: a kind, one line saying what failed, one saying what to do.
 * Pure: the status and the error body supabase-js returned, never the key. A body that is an HTML page (the
 * gateway's error page: Cloudflare's 52x, an nginx 502) is shown as its status and its <title>, one inert line,
 * never the markup (supabase-js puts the whole page in `error.message`).
 */
import { htmlSummary as pageTitle } from '../core/html.ts';
import { clip } from '../core/text.ts';
import { READ_INDEXES_MIGRATION } from '../core/thresholds.ts';
import { GATEWAY_STATUSES, TRANSPORT_ERROR_PATTERN } from './http.ts';
import { inert } from './inert.ts';

export const JOBS_TABLE = 'hd_ingestion_jobs';

export type DbFailureKind =
  | 'unauthorized'
  | 'forbidden'
  | 'missing-table'
  | 'bad-request'
  | 'server'
  | 'timeout'
  | 'unreachable'
  | 'malformed'
  /** 540: the project is paused; nothing answers until its owner restores it. */
  | 'paused'
  /** 520/521/522/523/524 (Cloudflare could not get an answer from the project) or 544 (Supabase's gateway timeout). */
  | 'gateway'
  /** 504 PGRST003: PostgREST timed out waiting for a database connection; the request never ran. */
  | 'pool-exhausted';

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

/**
 * What the gateway's own statuses mean, for a page without a title (and a HEAD request, which has no body).
 * Cloudflare's names: developers.cloudflare.com/support/troubleshooting/http-status-codes/cloudflare-5xx-errors/;
 * Supabase's: supabase.com/docs/guides/platform/http-status-codes.
 */
export const GATEWAY_STATUS_NAMES: Readonly<Record<number, string>> = {
  520: 'Web server is returning an unknown error',
  521: 'Web server is down',
  522: 'Connection timed out',
  523: 'Origin is unreachable',
  524: 'A timeout occurred',
  540: 'project paused',
  544: 'project API gateway timeout',
};

/**
 * The one line an HTML body stands for, inert and clipped: its <title> (else its first heading; empty when it has
 * neither), or undefined when the body is not an HTML page. Never the markup.
 */
export function htmlSummary(body: string | undefined): string | undefined {
  const title = pageTitle(body);
  return title === undefined ? undefined : clip(inert(title), 160);
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** The gateway's own answers, named: the project paused, the gateway unable to reach it, the pool saturated. */
function gatewayFailure(status: number, error: PgError, page: string | undefined, host: string): DbFailure | undefined {
  const said = page === undefined ? clip(inert((error.message ?? '').replace(/\s+/g, ' ').trim()), 120) : page;
  const seen = said || GATEWAY_STATUS_NAMES[status] || '';
  if (status === 540) {
    return {
      kind: 'paused',
      status,
      message: `the Supabase project at ${host} is paused (540${seen ? `: ${seen}` : ''})`,
      fix: 'restore it in the Supabase dashboard (Project → Restore), then run this again; retrying does not help',
    };
  }
  if (GATEWAY_STATUSES.has(status)) {
    const supabase = status === 544;
    return {
      kind: 'gateway',
      status,
      message: `${supabase ? "Supabase's API gateway" : 'the gateway in front of Supabase (Cloudflare)'} answered ${status}: ${seen || 'no body'}`,
      fix: supabase
        ? "the request ran past the gateway's time limit: check the project's API logs and slow queries, then run this again"
        : `the gateway could not get an answer from the project at ${host}: check status.supabase.com and the project's health in the dashboard, then run this again`,
    };
  }
  if (status === 504 && error.code === 'PGRST003') {
    return {
      kind: 'pool-exhausted',
      status,
      message: `the database pool was saturated (504 PGRST003: ${clip(inert(error.message ?? ''), 120)})`,
      fix: "other clients (the worker, the app, a requeue) hold every connection of the project's pool: wait a minute or raise the pool size (Database settings), then run this again",
    };
  }
  return undefined;
}

/** A failure of the transport itself (no HTTP answer): a timeout, a refused connection, DNS. */
function transportFailure(status: number, error: PgError, host: string): DbFailure | undefined {
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
  return undefined;
}

/** 413 and 414: a proxy or the gateway refused the request's size before the API saw it (nothing ran). */
function sizeFailure(status: number, page: string | undefined): DbFailure | undefined {
  const shown = page ? `: ${page}` : '';
  if (status === 413) {
    return {
      kind: 'bad-request',
      status,
      message: `a proxy or the gateway refused the request's body as too large (413${shown})`,
      fix: 'send smaller requests: lower --rpc-batch (e.g. --rpc-batch 100) or use --rpc off; nothing was written by it',
    };
  }
  if (status === 414) {
    return {
      kind: 'bad-request',
      status,
      message: `a proxy or the gateway refused the request's URL as too long (414${shown})`,
      fix: "a proxy between here and Supabase takes shorter URLs than Supabase's 16 KB: run with --verbose and report it",
    };
  }
  return undefined;
}

/** Maps what supabase-js returned to a failure an operator can act on. */
export function classifyDbError(status: number, error: PgError, url: string): DbFailure {
  const host = hostOf(url);
  const page = htmlSummary(error.message);
  const gateway = gatewayFailure(status, error, page, host);
  if (gateway) return gateway;
  // An HTML page stands for its title; any other text is clipped and made inert.
  const text =
    page !== undefined
      ? `an HTML page${page ? `: ${page}` : ''}`
      : clip(inert([error.message, error.hint].filter(Boolean).join(' — ').replace(/\s+/g, ' ')), 300);
  const transport = transportFailure(status, error, host);
  if (transport) return transport;
  if (status === 0) return { kind: 'unreachable', status, message: text || 'no answer', fix: 'check SUPABASE_URL' };
  if (status === 200 || status === 201 || status === 206) {
    return {
      kind: 'malformed',
      status,
      message: `the API answered ${status} with a body that is not JSON${page !== undefined ? ` (${text})` : ''}`,
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
  const tooLarge = sizeFailure(status, page);
  if (tooLarge) return tooLarge;
  if (error.code === '57014') {
    // PostgreSQL cancelled the statement: on Supabase the role's statement_timeout (service_role 8 s, anon 3 s).
    return {
      kind: 'server',
      status,
      message: `the database cancelled the query at its statement timeout (${status} 57014: ${text})`,
      fix: `the table outgrew the reads' indexes: apply ${READ_INDEXES_MIGRATION} with psql "$SUPABASE_DB_URL" -f, then run diagnose-env`,
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
