/**
 * API keys of a sandbox project and the role a request runs as, decided the way Supabase's gateway and
 * PostgREST decide it: the `apikey` header (or `?apikey=`) must be one of the project's keys; a Bearer JWT in
 * `Authorization`, when present, sets the role; new-style `sb_` keys stand for their role.
 */
import { randomBytes } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import { type ApiError, apiError } from './errors.ts';
import type { HeaderBag } from './query.ts';
import {
  DEFAULT_POSTGREST_VERSION,
  type JwtFailure,
  jwtFailure,
  missingRoleStatus,
  type PostgrestVersion,
} from './versions.ts';

/** The four keys a Supabase project hands out. */
export interface ProjectKeys {
  /** Legacy anon JWT (HS256, role anon). */
  anonKey: string;
  /** Legacy service-role JWT (HS256, role service_role). */
  serviceRoleKey: string;
  /** New-style secret key `sb_secret_...`: acts as service_role. */
  secretKey: string;
  /** New-style publishable key `sb_publishable_...`: acts as anon. */
  publishableKey: string;
}

/** The database roles a request may run as. */
export type ApiRole = 'anon' | 'authenticated' | 'service_role';

const ALLOWED_ROLES: readonly string[] = ['anon', 'authenticated', 'service_role'];

/** Roles every Supabase cluster has but the API's authenticator may not switch to. */
const PRIVILEGED_ROLES = new Set([
  'postgres',
  'authenticator',
  'supabase_admin',
  'supabase_auth_admin',
  'supabase_storage_admin',
  'dashboard_user',
  'pgbouncer',
]);

const TEN_YEARS_S = 10 * 365 * 24 * 3600;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Random base62 text; rejection sampling keeps every character equally likely. */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && out.length < length) out += BASE62[byte % 62];
    }
  }
  return out;
}

function secretBytes(jwtSecret: string): Uint8Array {
  return new TextEncoder().encode(jwtSecret);
}

async function signRoleKey(jwtSecret: string, ref: string, role: ApiRole, iat: number): Promise<string> {
  // Claim order as in a Supabase project's keys: iss, ref, role, iat, exp.
  return new SignJWT({ iss: 'supabase', ref, role, iat, exp: iat + TEN_YEARS_S })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(secretBytes(jwtSecret));
}

/**
 * Mints a project's keys: HS256 JWTs `{ iss: 'supabase', ref, role, iat, exp: iat + 10 years }` for anon and
 * service_role, and random `sb_secret_` / `sb_publishable_` keys.
 */
export async function makeProjectKeys(options: { jwtSecret: string; ref: string; now?: Date }): Promise<ProjectKeys> {
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  return {
    anonKey: await signRoleKey(options.jwtSecret, options.ref, 'anon', iat),
    serviceRoleKey: await signRoleKey(options.jwtSecret, options.ref, 'service_role', iat),
    secretKey: `sb_secret_${randomBase62(32)}`,
    publishableKey: `sb_publishable_${randomBase62(32)}`,
  };
}

/** What {@link resolveRole} needs to know about the project. */
export interface AuthConfig {
  jwtSecret: string;
  keys: ProjectKeys;
  ref?: string;
  /** Whose error texts and codes to give (default 13). */
  version?: PostgrestVersion;
}

/** Outcome of {@link resolveRole}: the role and JWT claims to run with, or the 401/403 answer. */
export type RoleResolution =
  | { ok: true; role: ApiRole; claims: Record<string, unknown> }
  | { ok: false; error: ApiError };

function headerValue(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function decodePayload(jwt: string): Record<string, unknown> {
  try {
    return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

function roleOfKey(key: string, config: AuthConfig): { role: ApiRole; claims: Record<string, unknown> } | undefined {
  const { keys } = config;
  if (key === keys.anonKey) return { role: 'anon', claims: decodePayload(key) };
  if (key === keys.serviceRoleKey) return { role: 'service_role', claims: decodePayload(key) };
  // The gateway swaps an sb_ key for a short-lived JWT of its role; these are the claims that JWT carries.
  const minted = (role: ApiRole) => ({ role, claims: { iss: 'supabase', ref: config.ref, role } });
  if (key === keys.secretKey) return minted('service_role');
  if (key === keys.publishableKey) return minted('anon');
  return undefined;
}

function jwtError(code: string, message: string, details: string | null = null): { ok: false; error: ApiError } {
  return {
    ok: false,
    error: apiError(401, code, message, details, null, {
      'WWW-Authenticate': `Bearer error="invalid_token", error_description=${JSON.stringify(message)}`,
    }),
  };
}

const INVALID_API_KEY: ApiError = {
  status: 401,
  body: { message: 'Invalid API key', hint: 'Double check your Supabase `anon` or `service_role` API key.' },
};

/** What jose's error says went wrong with a token. */
function failureOf(e: unknown): JwtFailure {
  const code = (e as { code?: string }).code;
  if (code === 'ERR_JWT_EXPIRED') return { kind: 'expired' };
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
    return (e as { claim?: string }).claim === 'nbf' ? { kind: 'not-yet-valid' } : { kind: 'claims' };
  }
  if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') return { kind: 'signature' };
  if (code === 'ERR_JOSE_ALG_NOT_ALLOWED') return { kind: 'algorithm' };
  return { kind: 'undecodable' };
}

async function verifyJwt(token: string, config: AuthConfig): Promise<RoleResolution> {
  const version = config.version ?? DEFAULT_POSTGREST_VERSION;
  const refuse = (f: JwtFailure): RoleResolution | undefined => {
    const answer = jwtFailure(f, version);
    return answer ? jwtError(answer.code, answer.message, answer.details) : undefined;
  };
  // v12 takes an empty Bearer as no token: the anonymous role.
  if (token === '') return refuse({ kind: 'empty' }) ?? { ok: true, role: 'anon', claims: {} };
  const parts = token.split('.').length;
  if (parts !== 3) return refuse({ kind: 'parts', parts }) as RoleResolution;
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, secretBytes(config.jwtSecret), { algorithms: ['HS256'] }));
  } catch (e) {
    return refuse(failureOf(e)) as RoleResolution;
  }
  const role = payload.role === undefined ? 'anon' : payload.role;
  if (typeof role !== 'string' || !ALLOWED_ROLES.includes(role)) {
    const name = String(role);
    // What PostgreSQL answers when the authenticator tries to switch to that role.
    if (PRIVILEGED_ROLES.has(name) || name.startsWith('pg_')) {
      return { ok: false, error: apiError(403, '42501', `permission denied to set role "${name}"`) };
    }
    const status = missingRoleStatus(version);
    const headers = status === 401 ? { 'WWW-Authenticate': 'Bearer' } : undefined;
    return { ok: false, error: apiError(status, '22023', `role "${name}" does not exist`, null, null, headers) };
  }
  return { ok: true, role: role as ApiRole, claims: payload };
}

/**
 * Decides the role of a request. `urlApikey` is the `apikey` query parameter, which Supabase accepts too.
 * Missing key: 401 "No API key found in request"; a key that is not the project's: 401 "Invalid API key";
 * a Bearer JWT that fails verification: 401 PGRST301/PGRST303; a JWT role outside anon/authenticated/
 * service_role: 401 (no such role) or 403 (a role the API may not assume).
 */
export async function resolveRole(
  headers: HeaderBag,
  config: AuthConfig,
  urlApikey?: string | null,
): Promise<RoleResolution> {
  const apikey = headerValue(headers, 'apikey') ?? urlApikey ?? undefined;
  if (apikey === undefined || apikey === '') {
    return {
      ok: false,
      error: {
        status: 401,
        body: { message: 'No API key found in request', hint: 'No `apikey` request header or url param was found.' },
      },
    };
  }
  const keyRole = roleOfKey(apikey, config);
  if (!keyRole) return { ok: false, error: INVALID_API_KEY };

  const authorization = headerValue(headers, 'authorization');
  const bearer = authorization === undefined ? undefined : /^Bearer(?:\s+(.*))?$/i.exec(authorization.trim());
  if (!bearer) return { ok: true, role: keyRole.role, claims: keyRole.claims };
  const token = (bearer[1] ?? '').trim();
  // The gateway swaps an sb_ key in Authorization for its role's JWT only when it is the apikey itself (what
  // supabase-js sends). Any other sb_ key reaches PostgREST as it is, and PostgREST refuses a token that is not a
  // JWT: 401 PGRST301 "Expected 3 parts in JWT; got 1" (supabase/supabase-py#1228 quotes that answer for a Bearer
  // sb_secret_; Supabase's API-keys guide: a secret key cannot go in the Authorization header). So an
  // sb_publishable_ apikey with a different sb_secret_ Bearer is refused, and never runs as service_role.
  if (token === apikey) return { ok: true, role: keyRole.role, claims: keyRole.claims };
  return verifyJwt(token, config);
}
