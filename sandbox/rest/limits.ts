/**
 * The limits a Supabase project's API holds a client to, on by default in the sandbox (`npm run sandbox -- up`
 * flags turn each off), and the answers given past them.
 */

import { gatewayAnswer } from './gateway.ts';
import type { HttpAnswer } from './query.ts';
import { DEFAULT_POSTGREST_VERSION, type PostgrestVersion } from './versions.ts';

/** The limits of one sandbox API. 0 turns a limit off. */
export interface RestLimits {
  /** PostgREST's db-max-rows; Supabase's default is 1,000 rows ("Max rows" in the project's API settings). */
  maxRows: number;
  /** PostgREST's db-pool: connections to the database (default 10). */
  pool: number;
  /** PostgREST's db-pool-acquisition-timeout, 10 s: then 504 PGRST003. 0 waits without limit. */
  poolTimeoutMs: number;
  /** The PostgREST version whose error shapes the API gives. */
  postgrest: PostgrestVersion;
  /**
   * The longest URL the gateway takes. Supabase: "Cloudflare 520 errors most often occur when 16+KB worth of data is
   * present in the headers/URL of your requests" (docs, "Fixing 520 Errors in the Database REST API"); above 32 KB
   * Cloudflare itself answers 414 (Cloudflare docs, "Error 414": "if the URI length exceeds 32KB").
   */
  maxUrlBytes: number;
  /** The largest request body: Cloudflare's 100 MB upload limit on the Free and Pro plans (Cloudflare docs, "Error 413"). */
  maxBodyBytes: number;
}

/** What a hosted Supabase project enforces (statement timeouts are on the database roles: sandbox/postgres.ts). */
export const SUPABASE_LIMITS: RestLimits = {
  maxRows: 1000,
  pool: 10,
  poolTimeoutMs: 10_000,
  postgrest: DEFAULT_POSTGREST_VERSION,
  maxUrlBytes: 16 * 1024,
  maxBodyBytes: 100 * 1024 * 1024,
};

/** Above this, Cloudflare answers 414 itself rather than passing the request on (and getting the 520). */
export const CLOUDFLARE_URL_BYTES = 32 * 1024;

/**
 * Cloudflare's own 4xx pages are nginx-style (`<center>cloudflare</center>` where nginx names itself), e.g. the 414
 * a client test of the Cloudflare edge pins: "<html><head><title>414 Request-URI Too Large</title></head><body>
 * <center><h1>414 Request-URI Too Large</h1></center><hr><center>cloudflare</center></body></html>".
 */
function cloudflareStatusPage(status: number, reason: string): HttpAnswer {
  return {
    status,
    headers: { 'Content-Type': 'text/html', Server: 'cloudflare', Connection: 'close' },
    body: `<html>\r\n<head><title>${status} ${reason}</title></head>\r\n<body>\r\n<center><h1>${status} ${reason}</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n`,
    rollback: false,
  };
}

/** The 413 Cloudflare gives a body over the plan's upload limit. */
export function bodyTooLarge(): HttpAnswer {
  return cloudflareStatusPage(413, 'Request Entity Too Large');
}

/** The 414 Cloudflare gives a URL over its limit (and the `url-too-long` fault gives any URL over its size). */
export function uriTooLong(): HttpAnswer {
  return cloudflareStatusPage(414, 'Request-URI Too Large');
}

/**
 * The gateway's answer to a URL of `bytes` bytes, or undefined when it passes: 520 above `maxUrlBytes` (Supabase's
 * documented failure), 414 above Cloudflare's own 32 KB.
 */
export function urlLimitAnswer(bytes: number, maxUrlBytes: number): HttpAnswer | undefined {
  if (maxUrlBytes <= 0) return undefined;
  if (bytes > Math.max(CLOUDFLARE_URL_BYTES, maxUrlBytes)) return uriTooLong();
  if (bytes > maxUrlBytes) return gatewayAnswer(520);
  return undefined;
}

/** The `up` flags of the limits (sandbox/cli.mts parses and checks them, sandbox/supervisor.mts applies them). */
export const LIMIT_OPTIONS = {
  'max-rows': { type: 'string' },
  'statement-timeout-ms': { type: 'string' },
  pool: { type: 'string' },
  'pool-timeout-ms': { type: 'string' },
  postgrest: { type: 'string' },
  'max-url-bytes': { type: 'string' },
  'max-body-bytes': { type: 'string' },
} as const;
