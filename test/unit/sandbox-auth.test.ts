import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type AuthConfig,
  makeProjectKeys,
  type ProjectKeys,
  randomBase62,
  resolveRole,
} from '../../sandbox/rest/auth.ts';

const jwtSecret = 'sandbox-jwt-secret-with-at-least-32-characters';
const ref = 'abcdefghijklmnopqrst';
let keys: ProjectKeys;
let config: AuthConfig;

async function sign(claims: Record<string, unknown>, secret = jwtSecret, alg = 'HS256'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(new TextEncoder().encode(secret));
}

beforeAll(async () => {
  keys = await makeProjectKeys({ jwtSecret, ref, now: new Date('2026-01-01T00:00:00Z') });
  config = { jwtSecret, keys, ref };
});

describe('makeProjectKeys', () => {
  it('mints anon and service_role JWTs shaped like a Supabase project', () => {
    for (const [key, role] of [
      [keys.anonKey, 'anon'],
      [keys.serviceRoleKey, 'service_role'],
    ] as const) {
      expect(decodeProtectedHeader(key)).toEqual({ alg: 'HS256', typ: 'JWT' });
      const claims = decodeJwt(key);
      expect(Object.keys(claims)).toEqual(['iss', 'ref', 'role', 'iat', 'exp']);
      expect(claims).toMatchObject({ iss: 'supabase', ref, role, iat: 1767225600 });
      expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(10 * 365 * 24 * 3600);
    }
  });

  it('mints new-style sb_ keys of random base62', async () => {
    expect(keys.secretKey).toMatch(/^sb_secret_[0-9A-Za-z]{32}$/);
    expect(keys.publishableKey).toMatch(/^sb_publishable_[0-9A-Za-z]{32}$/);
    const again = await makeProjectKeys({ jwtSecret, ref });
    expect(again.secretKey).not.toBe(keys.secretKey);
  });

  it('randomBase62 uses only base62 characters', () => {
    expect(randomBase62(500)).toMatch(/^[0-9A-Za-z]{500}$/);
  });
});

describe('resolveRole', () => {
  const ok: [string, () => Record<string, string>, string][] = [
    ['anon key alone', () => ({ apikey: keys.anonKey }), 'anon'],
    [
      'anon key as both headers (supabase-js)',
      () => ({ apikey: keys.anonKey, authorization: `Bearer ${keys.anonKey}` }),
      'anon',
    ],
    [
      'service key',
      () => ({ apikey: keys.serviceRoleKey, authorization: `Bearer ${keys.serviceRoleKey}` }),
      'service_role',
    ],
    ['sb_secret key', () => ({ apikey: keys.secretKey, authorization: `Bearer ${keys.secretKey}` }), 'service_role'],
    [
      'sb_publishable key',
      () => ({ apikey: keys.publishableKey, authorization: `Bearer ${keys.publishableKey}` }),
      'anon',
    ],
    [
      'anon apikey with a service JWT bearer',
      () => ({ apikey: keys.anonKey, authorization: `Bearer ${keys.serviceRoleKey}` }),
      'service_role',
    ],
    [
      'a non-Bearer Authorization is ignored',
      () => ({ apikey: keys.serviceRoleKey, authorization: 'Basic eDp5' }),
      'service_role',
    ],
  ];
  it.each(ok)('%s', async (_label, headers, role) => {
    const r = await resolveRole(headers(), config);
    expect(r).toMatchObject({ ok: true, role });
  });

  it('accepts the key as a URL parameter', async () => {
    expect(await resolveRole({}, config, keys.secretKey)).toMatchObject({ ok: true, role: 'service_role' });
  });

  it('a user JWT signed with the project secret sets role authenticated and passes its claims', async () => {
    const token = await sign({ sub: 'user-1', role: 'authenticated', exp: Math.floor(Date.now() / 1000) + 60 });
    const r = await resolveRole({ apikey: keys.anonKey, authorization: `Bearer ${token}` }, config);
    expect(r).toMatchObject({ ok: true, role: 'authenticated', claims: { sub: 'user-1' } });
  });

  it('a JWT without a role claim runs as anon', async () => {
    const token = await sign({ sub: 'x' });
    expect(await resolveRole({ apikey: keys.anonKey, authorization: `Bearer ${token}` }, config)).toMatchObject({
      ok: true,
      role: 'anon',
    });
  });

  it('synthesises claims for sb_ keys as the gateway does', async () => {
    expect(await resolveRole({ apikey: keys.secretKey }, config)).toMatchObject({
      claims: { iss: 'supabase', ref, role: 'service_role' },
    });
  });

  it('no apikey: 401 with the gateway body', async () => {
    const r = await resolveRole({ authorization: `Bearer ${keys.serviceRoleKey}` }, config);
    expect(r).toEqual({
      ok: false,
      error: {
        status: 401,
        body: { message: 'No API key found in request', hint: 'No `apikey` request header or url param was found.' },
      },
    });
  });

  it("someone else's key: 401 Invalid API key", async () => {
    const other = await makeProjectKeys({
      jwtSecret: 'another-projects-secret-of-32-characters',
      ref: 'zzzzzzzzzzzzzzzzzzzz',
    });
    for (const apikey of [other.anonKey, other.secretKey, 'sb_secret_nope', 'garbage']) {
      const r = await resolveRole({ apikey }, config);
      expect(r).toMatchObject({
        ok: false,
        error: {
          status: 401,
          body: { message: 'Invalid API key', hint: 'Double check your Supabase `anon` or `service_role` API key.' },
        },
      });
    }
  });

  // PostgREST 13's texts (the sandbox's default): test/io/test_io.py `test_jwt_errors` and AuthSpec.hs at v13.0.8.
  const badJwts: [string, () => Promise<string>, string, string, string?][] = [
    [
      'wrong secret',
      () => sign({ role: 'service_role' }, 'not-the-project-secret-but-32-chars-long'),
      'PGRST301',
      'No suitable key or wrong key type',
      'None of the keys was able to decode the JWT',
    ],
    ['expired', () => sign({ role: 'anon', exp: Math.floor(Date.now() / 1000) - 60 }), 'PGRST303', 'JWT expired'],
    [
      'not yet valid',
      () => sign({ role: 'anon', nbf: Math.floor(Date.now() / 1000) + 3600 }),
      'PGRST303',
      'JWT not yet valid',
    ],
    ['two parts', async () => 'abc.def', 'PGRST301', 'Expected 3 parts in JWT; got 2'],
    ['garbage in three parts', async () => 'a.b.c', 'PGRST301', 'JWT cryptographic operation failed'],
    ['HS512', () => sign({ role: 'anon' }, jwtSecret, 'HS512'), 'PGRST301', 'Wrong or unsupported encoding algorithm'],
  ];
  it.each(badJwts)('bad bearer JWT (%s): 401 %s', async (_label, token, code, message, details) => {
    const r = await resolveRole({ apikey: keys.anonKey, authorization: `Bearer ${await token()}` }, config);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.status).toBe(401);
    expect(r.error.body).toEqual({ code, message, details: details ?? null, hint: null });
    expect(r.error.headers?.['WWW-Authenticate']).toContain('invalid_token');
  });

  it('an empty bearer is refused', async () => {
    const r = await resolveRole({ apikey: keys.anonKey, authorization: 'Bearer ' }, config);
    expect(r).toMatchObject({ ok: false, error: { status: 401, body: { code: 'PGRST301' } } });
  });

  it('roles outside anon/authenticated/service_role are refused', async () => {
    const admin = await resolveRole(
      { apikey: keys.anonKey, authorization: `Bearer ${await sign({ role: 'postgres' })}` },
      config,
    );
    expect(admin).toMatchObject({
      ok: false,
      error: { status: 403, body: { code: '42501', message: 'permission denied to set role "postgres"' } },
    });
    const ghost = await resolveRole(
      { apikey: keys.anonKey, authorization: `Bearer ${await sign({ role: 'ghost' })}` },
      config,
    );
    expect(ghost).toMatchObject({
      ok: false,
      error: { status: 401, body: { code: '22023', message: 'role "ghost" does not exist' } },
    });
  });

  it('an unknown sb_ key as bearer is refused', async () => {
    const r = await resolveRole({ apikey: keys.anonKey, authorization: 'Bearer sb_secret_other' }, config);
    expect(r).toMatchObject({ ok: false, error: { status: 401 } });
  });

  it("the project's own sb_secret_ as bearer beside its sb_publishable_ apikey is refused, never service_role", async () => {
    // The gateway swaps only a bearer equal to the apikey; PostgREST then refuses a token that is not a JWT
    // (supabase/supabase-py#1228 quotes this answer for a Bearer sb_secret_).
    const r = await resolveRole({ apikey: keys.publishableKey, authorization: `Bearer ${keys.secretKey}` }, config);
    expect(r).toMatchObject({
      ok: false,
      error: { status: 401, body: { code: 'PGRST301', message: 'Expected 3 parts in JWT; got 1' } },
    });
    const reverse = await resolveRole(
      { apikey: keys.secretKey, authorization: `Bearer ${keys.publishableKey}` },
      config,
    );
    expect(reverse).toMatchObject({ ok: false, error: { status: 401 } });
  });

  describe('the shapes of PostgREST 12 and 14', () => {
    const at = (version: 12 | 14): AuthConfig => ({ ...config, version });
    const bearer = async (token: string, version: 12 | 14 = 12) =>
      resolveRole({ apikey: keys.anonKey, authorization: `Bearer ${token}` }, at(version));

    it('12: every JWT failure is PGRST301 with the jose library words (AuthSpec.hs at v12.2.12)', async () => {
      expect(await bearer(await sign({ role: 'anon', exp: Math.floor(Date.now() / 1000) - 60 }))).toMatchObject({
        error: { status: 401, body: { code: 'PGRST301', message: 'JWT expired' } },
      });
      expect(await bearer('abc.def')).toMatchObject({
        error: {
          body: {
            code: 'PGRST301',
            message: 'JWSError (CompactDecodeError Invalid number of parts: Expected 3 parts; got 2)',
          },
        },
      });
      expect(await bearer(await sign({ role: 'anon' }, 'not-the-project-secret-but-32-chars-long'))).toMatchObject({
        error: { body: { code: 'PGRST301', message: 'JWSError JWSInvalidSignature' } },
      });
    });

    it('12: an empty bearer is no token (anon); a JWT role that does not exist is 400, not 401', async () => {
      expect(await resolveRole({ apikey: keys.anonKey, authorization: 'Bearer ' }, at(12))).toMatchObject({
        ok: true,
        role: 'anon',
      });
      expect(await bearer(await sign({ role: 'ghost' }))).toMatchObject({
        error: { status: 400, body: { code: '22023' } },
      });
    });

    it('14: the texts and codes of 13 (PGRST303 for claims)', async () => {
      expect(await bearer(await sign({ role: 'anon', exp: Math.floor(Date.now() / 1000) - 60 }), 14)).toMatchObject({
        error: { status: 401, body: { code: 'PGRST303', message: 'JWT expired' } },
      });
    });
  });
});
