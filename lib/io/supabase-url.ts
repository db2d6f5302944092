/**
 * What a Supabase URL points at: a hosted project (`https://<ref>.supabase.co`), a local Supabase CLI
 * instance (`http://127.0.0.1:54321`), or something else (self-hosted, a custom domain, the sandbox).
 */

/** A URL that cannot be used, with what to do about it. Neither string contains credentials from the URL. */
export interface SupabaseUrlProblem {
  ok: false;
  problem: string;
  fix: string;
}

/** A usable Supabase API base URL. */
export interface SupabaseUrlInfo {
  ok: true;
  url: URL;
  /** `scheme://host[:port]`, default port dropped, no trailing slash: the form to compare and to print. */
  origin: string;
  kind: 'cloud' | 'local' | 'custom';
  /** Only for cloud URLs, where the host carries it. */
  projectRef?: string;
  /** Only for local URLs: why we think this is this machine, in words. */
  localReason?: string;
}

export type SupabaseUrlClassification = SupabaseUrlProblem | SupabaseUrlInfo;

/** The Supabase CLI's API gateway port (`supabase start`). */
const CLI_API_PORT = '54321';

const CLOUD_HOST = /^([a-z0-9][a-z0-9-]*)\.supabase\.(?:co|in)$/;

function fail(problem: string, fix: string): SupabaseUrlProblem {
  return { ok: false, problem, fix };
}

/** Reasons, in words, that a URL is on this machine (or Docker's host); empty when it is not. */
function localReasons(url: URL): string[] {
  const reasons: string[] = [];
  const host = url.hostname.toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) reasons.push(`${host} is this machine`);
  else if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) reasons.push(`${host} is a loopback address (this machine)`);
  else if (host === '[::1]') reasons.push('::1 is the IPv6 loopback address (this machine)');
  else if (host === '0.0.0.0') reasons.push('0.0.0.0 reaches this machine');
  else if (host === 'host.docker.internal') reasons.push('host.docker.internal is the Docker host');
  if (url.port === CLI_API_PORT) reasons.push(`port ${CLI_API_PORT} is the Supabase CLI's API port`);
  return reasons;
}

/**
 * Check a Supabase API base URL and say what it points at. Rejects what the client libraries would mishandle:
 * a non-http(s) scheme, credentials in the URL, a pasted path such as `/rest/v1`, query strings, surrounding
 * whitespace or quotes, and the dashboard or database host pasted instead of the API URL.
 */
export function classifySupabaseUrl(value: string | undefined): SupabaseUrlClassification {
  if (value === undefined || value.trim() === '') {
    return fail('no Supabase URL is set', 'set it to the project URL, e.g. https://<project-ref>.supabase.co');
  }
  if (value !== value.trim()) {
    return fail('has leading or trailing whitespace', 'remove the spaces or newline around the URL');
  }
  if (/^["'`]|["'`]$/.test(value)) {
    return fail(
      'has quote characters that are part of the value',
      'remove the quotes (in .env, quotes around the whole value are fine; nested or one-sided ones are not)',
    );
  }
  if (/^postgres(?:ql)?:\/\//i.test(value)) {
    return fail(
      'is a database connection string, not the API URL',
      'use the project URL from Settings > API, e.g. https://<project-ref>.supabase.co',
    );
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    const guess = /^[a-z0-9]+\.supabase\.(?:co|in)(?:\/|$)/i.test(value) ? 'https://' : 'http:// or https://';
    return fail('has no scheme', `start it with ${guess}`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail('is not a valid URL', 'use the project URL, e.g. https://<project-ref>.supabase.co');
  }
  if (url.hostname.length > 253) {
    // Longer than DNS allows; and every message below would echo it.
    return fail(
      'has a host name longer than DNS allows (253 characters)',
      'use the project URL, e.g. https://<project-ref>.supabase.co',
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return fail(`uses ${url.protocol.slice(0, -1)}:, not http or https`, 'use the https:// project URL');
  }
  const origin = url.origin;
  if (url.username !== '' || url.password !== '') {
    // The password may be a real one: say where it is, never what it is.
    return fail('contains a user name or password before the host', `remove the credentials: use ${origin}`);
  }
  const host = url.hostname.toLowerCase();
  if (host === 'supabase.com' || host.endsWith('.supabase.com')) {
    const ref = /\/project\/([a-z0-9]+)/.exec(url.pathname)?.[1];
    return fail(
      'is a supabase.com address (the dashboard or a pooler), not the project API URL',
      `use https://${ref ?? '<project-ref>'}.supabase.co`,
    );
  }
  const dbHost = /^db\.([a-z0-9]+)\.supabase\.(co|in)$/.exec(host);
  if (dbHost) {
    return fail('is the database host, not the API host', `use https://${dbHost[1]}.supabase.${dbHost[2]}`);
  }
  if (url.pathname !== '/' && url.pathname !== '') {
    return fail(
      `has a path (${url.pathname.length > 60 ? `${url.pathname.slice(0, 60)}…` : url.pathname}) after the host; the client adds /rest/v1 and friends itself`,
      `drop the path: use ${origin}`,
    );
  }
  if (url.search !== '' || url.hash !== '') {
    return fail('has a query string or fragment', `drop it: use ${origin}`);
  }
  const cloud = CLOUD_HOST.exec(host);
  if (cloud) {
    if (url.protocol !== 'https:') {
      return fail('uses http:// for a hosted project, which would send the key in clear text', `use https://${host}`);
    }
    return { ok: true, url, origin, kind: 'cloud', projectRef: cloud[1] };
  }
  const reasons = localReasons(url);
  if (reasons.length > 0) return { ok: true, url, origin, kind: 'local', localReason: reasons.join('; ') };
  return { ok: true, url, origin, kind: 'custom' };
}

function originOf(value: string): string | undefined {
  const trimmed = value.trim().replace(/^(["'])(.*)\1$/, '$2');
  try {
    const url = new URL(trimmed);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether two URLs reach the same Supabase API: same scheme, host and port after normalising case, default ports,
 * trailing slashes and paths. Different spellings of this machine (localhost vs 127.0.0.1) count as different,
 * since they are not guaranteed to be the same server. Anything unparsable is never the same.
 */
export function sameProject(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const oa = originOf(a);
  const ob = originOf(b);
  return oa !== undefined && oa === ob;
}
