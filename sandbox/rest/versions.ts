/**
 * The answers that differ between the PostgREST versions Supabase projects run (12, 13, 14), chosen by
 * `npm run sandbox -- up --postgrest 12|13|14` (default 13). Each shape names where it comes from: PostgREST's
 * `src/PostgREST/Error.hs` and `Auth.hs` at the tags v12.2.12, v13.0.8 and v14.17, its spec tests
 * (`test/spec/Feature/...`) and CHANGELOG.md.
 */
import { apiError, type PgrstApiError } from './errors.ts';

/** A PostgREST major version as Supabase runs it. */
export type PostgrestVersion = 12 | 13 | 14;

export const POSTGREST_VERSIONS: readonly PostgrestVersion[] = [12, 13, 14];

/** Supabase's current default for new projects. */
export const DEFAULT_POSTGREST_VERSION: PostgrestVersion = 13;

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

function bigrams(s: string): Set<string> {
  const padded = `-${s}-`;
  const out = new Set<string>();
  for (let i = 0; i < padded.length - 1; i++) out.add(padded.slice(i, i + 2));
  return out;
}

/**
 * The closest name, as PostgREST's fuzzy hints pick it (Haskell `fuzzyset`: candidates sharing an n-gram of the
 * lower-cased, `-`-padded name, scored `1 - levenshtein / longer length`): at least 0.33 up to v13 (`Fuzzy.getOne`),
 * at least 0.75 for table and function names from v14.6 on (CHANGELOG 14.6 "Fix leaking table and function names
 * when calculating error hint", `getFuzzyHint`). An approximation of the n-gram step; the scores are fuzzyset's.
 */
export function fuzzyPick(
  name: string,
  candidates: Iterable<string>,
  version: PostgrestVersion,
  minScore?: number,
): string | undefined {
  const min = minScore ?? (version >= 14 ? 0.75 : 0.33);
  const wanted = name.toLowerCase();
  const grams = bigrams(wanted);
  let best: { name: string; score: number } | undefined;
  for (const c of candidates) {
    const lower = c.toLowerCase();
    if (![...bigrams(lower)].some((g) => grams.has(g))) continue;
    const score = 1 - levenshtein(wanted, lower) / Math.max(wanted.length, lower.length, 1);
    if (score >= min && (!best || score > best.score)) best = { name: c, score };
  }
  return best?.name;
}

/**
 * A table that is not in the schema. v12 runs the query and PostgreSQL refuses it: 404 42P01
 * `relation "public.x" does not exist` (test/spec/Feature/ConcurrentSpec.hs at v12.2.12). From v13 PostgREST answers
 * itself: 404 PGRST205 `Could not find the table 'public.x' in the schema cache`, with a hint `Perhaps you meant the
 * table 'public.y'` when a name is close (CHANGELOG 13.0.0 #3697; ErrorSpec.hs "show hint on PGRST205").
 */
export function tableNotFound(
  schema: string,
  name: string,
  tables: Iterable<string>,
  version: PostgrestVersion,
): PgrstApiError {
  if (version === 12) return apiError(404, '42P01', `relation "${schema}.${name}" does not exist`);
  const near = fuzzyPick(name, tables, version);
  return apiError(
    404,
    'PGRST205',
    `Could not find the table '${schema}.${name}' in the schema cache`,
    null,
    near === undefined ? null : `Perhaps you meant the table '${schema}.${near}'`,
  );
}

/** The hint of PGRST202 (all versions: `noRpcHint` in Error.hs), or null when no name is close. */
export function functionHint(
  schema: string,
  name: string,
  functions: Iterable<string>,
  version: PostgrestVersion,
): string | null {
  const near = fuzzyPick(name, functions, version);
  return near === undefined ? null : `Perhaps you meant to call the function ${schema}.${near}`;
}

/** The JWT failures the sandbox tells apart. */
export type JwtFailure =
  | { kind: 'empty' }
  | { kind: 'parts'; parts: number }
  | { kind: 'signature' }
  | { kind: 'algorithm' }
  | { kind: 'expired' }
  | { kind: 'not-yet-valid' }
  | { kind: 'claims' }
  | { kind: 'undecodable' };

/**
 * The code and message PostgREST gives a JWT it refuses, or null when it does not refuse it.
 * v12 (Auth.hs at v12.2.12): every failure is PGRST301; "JWT expired", else the `show` of the jose library's error
 * ("JWSError JWSInvalidSignature", "JWSError (CompactDecodeError Invalid number of parts: Expected 3 parts; got 2)",
 * "JWTNotYetValid", ...), and an empty Bearer is no token at all (the anonymous role).
 * v13+ (CHANGELOG 13.0.0 #3600 #3926, Error.hs `JwtDecodeError`/`JwtClaimsError`): decode failures PGRST301, claims
 * failures PGRST303, with PostgREST's own texts; a token signed with another secret is "No suitable key or wrong key
 * type" and three parts of garbage "JWT cryptographic operation failed" (test/io/test_io.py `test_jwt_errors`).
 */
export function jwtFailure(
  f: JwtFailure,
  version: PostgrestVersion,
): { code: string; message: string; details?: string } | null {
  if (version === 12) {
    // The first four are verified (AuthSpec.hs at v12.2.12; "JWSError JWSInvalidSignature" is what Supabase users
    // quote); the others are the jose constructor PostgREST shows, the text of its argument unverified.
    const v12: Record<JwtFailure['kind'], string | null> = {
      empty: null,
      parts: `JWSError (CompactDecodeError Invalid number of parts: Expected 3 parts; got ${f.kind === 'parts' ? f.parts : 0})`,
      signature: 'JWSError JWSInvalidSignature',
      algorithm: 'JWSError (AlgorithmMismatch "JWT algorithm does not match JWK")',
      expired: 'JWT expired',
      'not-yet-valid': 'JWTNotYetValid',
      claims: 'JWTClaimsSetDecodeError "Error in $: expected Object"',
      undecodable: 'JWSError (CompactDecodeError Invalid JSON)',
    };
    const message = v12[f.kind];
    return message === null ? null : { code: 'PGRST301', message };
  }
  switch (f.kind) {
    case 'empty':
      return { code: 'PGRST301', message: 'Empty JWT is sent in Authorization header' };
    case 'parts':
      return { code: 'PGRST301', message: `Expected 3 parts in JWT; got ${f.parts}` };
    case 'signature':
      return {
        code: 'PGRST301',
        message: 'No suitable key or wrong key type',
        details: 'None of the keys was able to decode the JWT',
      };
    case 'algorithm':
      return { code: 'PGRST301', message: 'Wrong or unsupported encoding algorithm' };
    case 'expired':
      return { code: 'PGRST303', message: 'JWT expired' };
    case 'not-yet-valid':
      return { code: 'PGRST303', message: 'JWT not yet valid' };
    case 'claims':
      return { code: 'PGRST303', message: 'Parsing claims failed' };
    default:
      return { code: 'PGRST301', message: 'JWT cryptographic operation failed' };
  }
}

/**
 * HTTP status of `role "x" does not exist` (22023) for a JWT role: 400 in v12 (the SQLSTATE class 22 default),
 * 401 from v13.0.1 (CHANGELOG "Fix jwt error returning HTTP status 400 for invalid role", #3601).
 */
export function missingRoleStatus(version: PostgrestVersion): number {
  return version === 12 ? 400 : 401;
}

/**
 * PGRST000, the database unreachable: "Database connection error. Retrying the connection." up to v14.12, without
 * the second sentence from v14.13 (CHANGELOG 14.13 #4980). The sandbox's 14 is the latest 14.x.
 */
export function connectionErrorMessage(version: PostgrestVersion): string {
  return version >= 14 ? 'Database connection error.' : 'Database connection error. Retrying the connection.';
}

/**
 * An Accept-Profile/Content-Profile naming a schema that is not exposed: v12 "The schema must be one of the
 * following: public"; v13 (13.0.7, #4089) and later "Invalid schema: x" with the exposed schemas in the hint.
 */
export function unacceptableSchema(profile: string, schema: string, version: PostgrestVersion): PgrstApiError {
  if (version === 12) return apiError(406, 'PGRST106', `The schema must be one of the following: ${schema}`);
  return apiError(
    406,
    'PGRST106',
    `Invalid schema: ${profile}`,
    null,
    `Only the following schemas are exposed: ${schema}`,
  );
}

/**
 * Every error answer from v13 on carries `Proxy-Status: PostgREST; error=CODE` (CHANGELOG 13.0.0 #2967; ErrorSpec.hs
 * "includes the proxy-status header on the response"). v12 has none.
 */
export function proxyStatusHeader(code: string, version: PostgrestVersion): Record<string, string> {
  return version === 12 ? {} : { 'Proxy-Status': `PostgREST; error=${code}` };
}
