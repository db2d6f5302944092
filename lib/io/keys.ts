/**
 * What a Supabase API key is — kind, role, project, expiry — and a form of it that is safe to print.
 *
 * Supabase has two key families:
 * - legacy keys: HS256 JWTs whose payload carries `iss` ("supabase", or "supabase-demo" for the CLI's local
 *   defaults), `ref` (the project ref), `role` ("anon" or "service_role"), `iat` and `exp`;
 * - new keys: opaque `sb_publishable_...` (low privilege) and `sb_secret_...` (bypasses RLS) strings.
 *
 * Nothing here verifies a signature: the runbooks only need to recognise a key, not trust it.
 */
import { createHash } from 'node:crypto';

/** The broad family a key belongs to. */
export type KeyKind = 'missing' | 'jwt' | 'secret' | 'publishable' | 'malformed';

/** Everything we can tell about a key without contacting Supabase. Contains no key material. */
export interface KeyInfo {
  kind: KeyKind;
  /** The JWT `role` claim: `anon`, `authenticated`, `service_role` or whatever else the token says. */
  role?: string;
  /** The project ref, from the JWT `ref` claim (or from a `https://<ref>.supabase.co/...` issuer). */
  ref?: string;
  /** The JWT `iss` claim. */
  issuer?: string;
  /** From the JWT `exp` claim. */
  expiresAt?: Date;
  /** True for keys that bypass Row Level Security: a `service_role` JWT or an `sb_secret_` key. */
  privileged: boolean;
  /** True when the key is one of the Supabase CLI's fixed local-development keys. */
  localDefault?: boolean;
  /** Safe to print: see {@link maskKey}. */
  masked: string;
  /** One sentence each, never containing the key itself. Empty when the key looks usable. */
  problems: string[];
}

const SECRET_PREFIX = 'sb_secret_';
const PUBLISHABLE_PREFIX = 'sb_publishable_';

/** The issuer of the JWTs `supabase start` hands out; they are the same on every machine. */
const LOCAL_DEMO_ISSUER = 'supabase-demo';

/**
 * SHA-256 of the CLI's fixed local opaque keys (printed by `supabase status`: one publishable, one secret).
 * They are public, but no key-shaped literal lives in this repository; recognising them catches a laptop pointed
 * at production with a local key.
 */
const LOCAL_DEFAULT_OPAQUE_KEY_HASHES: ReadonlySet<string> = new Set([
  '9705102db0d5f99ee08daa19a73e510d9877a2a9add9369da247cbbe6c2a0140',
  'c85debb55f2f204d868cc1552c42faa143b4c675f61363ab040dd50b5b5304cd',
]);

/** base64url signature lengths per algorithm; a shorter one means the paste was cut. RSA varies with the key size. */
const SIGNATURE_LENGTHS: Readonly<Record<string, number>> = {
  HS256: 43,
  HS384: 64,
  HS512: 86,
  ES256: 86,
  ES384: 128,
  ES512: 176,
  EdDSA: 86,
  Ed25519: 86,
};

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * One part of a compact JWT (header or payload) decoded to its JSON object, or undefined when it is not one: empty,
 * not base64url (the caller checked the alphabet; a length of 4n+1 cannot be base64), not UTF-8, not JSON, or JSON
 * that is not a plain object. The same rules as jose's decodeProtectedHeader and decodeJwt, without loading a JOSE
 * library to read two JSON objects.
 */
export function decodeJwtPart(part: string): Record<string, unknown> | undefined {
  if (part === '' || !BASE64URL.test(part) || part.length % 4 === 1) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(STRICT_UTF8.decode(Buffer.from(part, 'base64url')));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return value as Record<string, unknown>;
}
const OPAQUE_SUFFIX = /^[A-Za-z0-9_-]+$/;
/** Shorter suffixes cannot be real keys; the documented ones are about 31 characters. */
const MIN_OPAQUE_SUFFIX = 16;

interface Cleaned {
  key: string;
  problems: string[];
}

/**
 * Peel off what copy-paste adds around a key (whitespace, quotes, a `Bearer ` prefix, `NAME=`), reporting each,
 * so the key underneath can still be identified and the operator told exactly what to remove.
 */
function clean(raw: string): Cleaned {
  const problems: string[] = [];
  let key = raw;
  if (key !== key.trim()) {
    problems.push('has leading or trailing whitespace (often a newline from copy-paste); remove it');
    key = key.trim();
  }
  const assignment = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*/.exec(key);
  if (assignment) {
    problems.push(`includes a variable name (${assignment[1]}=); keep only the value`);
    key = key.slice(assignment[0].length);
  }
  const first = key[0];
  const last = key[key.length - 1];
  if (key.length >= 2 && (first === '"' || first === "'" || first === '`') && last === first) {
    problems.push('is wrapped in quotes that are part of the value; remove them');
    key = key.slice(1, -1).trim();
  } else if (first === '"' || first === "'" || last === '"' || last === "'") {
    problems.push('has a stray quote character at one end; remove it');
    key = key.replace(/^["'`]+|["'`]+$/g, '').trim();
  }
  const bearer = /^bearer\s+/i.exec(key);
  if (bearer) {
    problems.push('starts with "Bearer ", which belongs in the Authorization header, not in the key; remove it');
    key = key.slice(bearer[0].length);
  }
  return { key, problems };
}

interface MaskParts {
  head: string;
  tail: string;
  length: number;
  jwt: boolean;
}

function maskParts(key: string): MaskParts {
  const length = key.length;
  for (const prefix of [SECRET_PREFIX, PUBLISHABLE_PREFIX]) {
    if (key.startsWith(prefix)) {
      // The prefix is public; the tail only identifies the key when the rest is long enough to stay hidden.
      const rest = key.length - prefix.length;
      return { head: prefix, tail: rest >= 12 ? key.slice(-4) : '', length, jwt: false };
    }
  }
  if (key.startsWith('eyJ')) {
    // "eyJ" is the base64 of `{"` and is shared by every JWT, so it reveals nothing.
    return { head: 'eyJ', tail: length >= 16 ? key.slice(-4) : '', length, jwt: key.split('.').length === 3 };
  }
  return { head: '', tail: length >= 16 ? key.slice(-4) : '', length, jwt: false };
}

function formatMask(parts: MaskParts): string {
  return `${parts.head}…${parts.tail} (${parts.jwt ? 'JWT, ' : ''}${parts.length} chars)`;
}

/**
 * A printable stand-in for a key: the public prefix (`sb_secret_`, `sb_publishable_`, or the `eyJ` every JWT starts
 * with), the last 4 characters and the length, e.g. `sb_secret_…k3Xz (41 chars)` or `eyJ…Q2wx (JWT, 219 chars)`.
 * Enough to tell two keys apart, never enough to use one. Short values show only their length.
 */
export function maskKey(value: string | undefined): string {
  if (value === undefined || value.trim() === '') return '(not set)';
  const { key } = clean(value);
  if (key === '') return '(empty after removing quotes)';
  return formatMask(maskParts(key));
}

function inspectJwt(key: string, info: KeyInfo): void {
  const parts = key.split('.');
  if (parts.length === 5) {
    info.kind = 'malformed';
    info.problems.push('is an encrypted token (JWE), not a Supabase API key');
    return;
  }
  if (parts.length !== 3) {
    info.kind = 'malformed';
    info.problems.push(
      `looks like a JWT cut short: it has ${parts.length} of 3 dot-separated parts; copy the whole key again`,
    );
    return;
  }
  if (!parts.every((p) => BASE64URL.test(p))) {
    info.kind = 'malformed';
    info.problems.push('contains characters that cannot appear in a JWT; copy the whole key again');
    return;
  }
  const header = decodeJwtPart(parts[0]);
  if (header === undefined) {
    info.kind = 'malformed';
    info.problems.push('has a JWT header that does not decode; copy the whole key again');
    return;
  }
  const alg = typeof header.alg === 'string' ? header.alg : undefined;
  const payload = decodeJwtPart(parts[1]);
  if (payload === undefined) {
    info.kind = 'malformed';
    info.problems.push('has a JWT payload that does not decode (probably cut short); copy the whole key again');
    return;
  }
  info.kind = 'jwt';
  if (typeof payload.role === 'string') info.role = payload.role;
  if (typeof payload.iss === 'string') info.issuer = payload.iss;
  if (typeof payload.ref === 'string') info.ref = payload.ref;
  else if (info.issuer) {
    // Session tokens name the project only through their issuer, https://<ref>.supabase.co/auth/v1.
    const m = /^https:\/\/([a-z0-9]+)\.supabase\.(?:co|in)\//.exec(info.issuer);
    if (m) info.ref = m[1];
  }
  if (typeof payload.exp === 'number' && Number.isFinite(payload.exp)) info.expiresAt = new Date(payload.exp * 1000);
  info.privileged = info.role === 'service_role';
  info.localDefault = info.issuer === LOCAL_DEMO_ISSUER;

  const signature = parts[2];
  const expected = alg ? SIGNATURE_LENGTHS[alg] : undefined;
  if (signature === '') {
    info.problems.push('has no signature part; the end of the key is missing, copy the whole key again');
  } else if (expected !== undefined && signature.length < expected) {
    info.problems.push(
      `has a ${signature.length}-character signature where ${alg} needs ${expected}: the key looks cut short`,
    );
  } else if (expected !== undefined && signature.length > expected) {
    info.problems.push(`has a signature longer than ${alg} produces: something was pasted onto the end`);
  }
  if (info.role === undefined) {
    info.problems.push('is a JWT without a role claim, so it is not a Supabase API key');
  } else if (info.role === 'authenticated') {
    info.problems.push(
      "is a signed-in user's session token (role authenticated), which expires within hours; use a project API key",
    );
  }
}

function inspectOpaque(key: string, prefix: string, info: KeyInfo): void {
  const suffix = key.slice(prefix.length);
  if (!OPAQUE_SUFFIX.test(suffix)) {
    info.kind = 'malformed';
    info.problems.push(
      suffix === ''
        ? `is only the ${prefix} prefix; copy the whole key`
        : `has characters after ${prefix} that cannot appear in a Supabase key; copy it again`,
    );
    return;
  }
  if (suffix.length < MIN_OPAQUE_SUFFIX) {
    info.kind = 'malformed';
    info.problems.push(`is too short for a ${prefix} key (looks cut short); copy the whole key`);
    return;
  }
  info.kind = prefix === SECRET_PREFIX ? 'secret' : 'publishable';
  info.privileged = info.kind === 'secret';
  info.localDefault = LOCAL_DEFAULT_OPAQUE_KEY_HASHES.has(createHash('sha256').update(key).digest('hex'));
}

function describeUnknown(key: string): string {
  if (/^postgres(?:ql)?:\/\//i.test(key)) return 'is a database connection string, not an API key';
  if (/^https?:\/\//i.test(key)) return 'is a URL, not an API key';
  if (key.startsWith('sb_')) return 'starts with sb_ but is neither an sb_secret_ nor an sb_publishable_ key';
  if (/^-----BEGIN /.test(key)) return 'is a PEM key or certificate, not a Supabase API key';
  return 'is not a Supabase key: expected a JWT (eyJ...), an sb_secret_... or an sb_publishable_... key';
}

/**
 * Classify a Supabase API key and list what is wrong with it. Decodes JWT payloads without verifying them.
 * Copy-paste damage (whitespace, quotes, `Bearer `) is reported in `problems`, and the key underneath is still
 * classified, so the report can say both what the key is and what to fix.
 */
export function inspectKey(value: string | undefined): KeyInfo {
  if (value === undefined || value === '') {
    return { kind: 'missing', privileged: false, masked: maskKey(value), problems: [] };
  }
  if (value.trim() === '') {
    return { kind: 'missing', privileged: false, masked: maskKey(value), problems: ['contains only whitespace'] };
  }
  const { key, problems } = clean(value);
  const info: KeyInfo = { kind: 'malformed', privileged: false, masked: maskKey(value), problems };
  if (key === '') {
    info.kind = 'missing';
    return info;
  }
  if (/\s/.test(key)) {
    info.problems.push('has whitespace or a line break inside it (a wrapped copy?); put it back on one line');
    return info;
  }
  if (key.startsWith(SECRET_PREFIX)) inspectOpaque(key, SECRET_PREFIX, info);
  else if (key.startsWith(PUBLISHABLE_PREFIX)) inspectOpaque(key, PUBLISHABLE_PREFIX, info);
  else if (key.startsWith('eyJ')) inspectJwt(key, info);
  else info.problems.push(describeUnknown(key));
  return info;
}

/** True when the key is a JWT whose `exp` is at or before `now`. Opaque keys do not expire by date. */
export function isExpired(info: KeyInfo, now: Date): boolean {
  return info.expiresAt !== undefined && info.expiresAt.getTime() <= now.getTime();
}

function isoDate(d: Date): string {
  return Number.isNaN(d.getTime()) ? 'an invalid date' : d.toISOString().slice(0, 10);
}

/** `(sb_secret_…k3Xz, 41 chars)`: the masked form without nested parentheses, for use inside a sentence. */
function maskInline(masked: string): string {
  const m = /^(.*) \((?:JWT, )?(\d+ chars)\)$/.exec(masked);
  return m ? `(${m[1]}, ${m[2]})` : `(${masked})`;
}

/**
 * One line for a report, e.g. `service_role JWT for project abcdefghijklmnopqrst, expires 2035-01-01 (eyJ…Q2wx,
 * 219 chars)` or `secret key (sb_secret_…k3Xz, 41 chars)`. An expired JWT says EXPIRED. Never contains the key.
 */
export function describeKey(info: KeyInfo, now: Date): string {
  const local = info.localDefault ? ', Supabase CLI local default' : '';
  switch (info.kind) {
    case 'missing':
      return 'no key set';
    case 'secret':
      return `secret key${local} ${maskInline(info.masked)}`;
    case 'publishable':
      return `publishable key${local} ${maskInline(info.masked)}`;
    case 'malformed':
      return `malformed key ${maskInline(info.masked)}${info.problems.length > 0 ? `: ${info.problems.at(-1)}` : ''}`;
    case 'jwt': {
      let project = '';
      if (info.ref) project = ` for project ${info.ref}`;
      else if (!info.localDefault) project = info.issuer ? ` without a project ref (issuer ${info.issuer})` : '';
      let expiry = ', no expiry';
      if (info.expiresAt) {
        expiry = isExpired(info, now) ? `, EXPIRED ${isoDate(info.expiresAt)}` : `, expires ${isoDate(info.expiresAt)}`;
      }
      return `${info.role ?? 'role-less'} JWT${project}${local}${expiry} ${maskInline(info.masked)}`;
    }
  }
}
