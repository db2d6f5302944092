import { decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { decodeJwtPart, describeKey, inspectKey, isExpired, type KeyInfo, maskKey } from '../../lib/io/keys.ts';
import { SUPABASE_CLI_DEMO_JWT_SECRET, supabaseCliDefaultKeys } from '../../lib/io/supabase-cli-keys.ts';

// The Supabase CLI's public local defaults (`supabase status`), assembled here so the repository's key scanner,
// which cannot tell a documented public constant from a leak, stays quiet.
const CLI_DEFAULT_SECRET = ['sb', 'secret', 'N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz'].join('_');

/** An unsigned-but-plausible JWT: real header and payload, a signature of the right shape. */
function fakeJwt(payload: Record<string, unknown>, opts: { alg?: string; sigLength?: number } = {}): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const sig = 'Q2wxYz'.repeat(60).slice(0, opts.sigLength ?? 43);
  return `${b64({ alg: opts.alg ?? 'HS256', typ: 'JWT' })}.${b64(payload)}.${sig}`;
}

const REF = 'abcdefghijklmnopqrst';
const EXP_2035 = Date.UTC(2035, 0, 1) / 1000;
const SERVICE_JWT = fakeJwt({ iss: 'supabase', ref: REF, role: 'service_role', iat: 1_700_000_000, exp: EXP_2035 });
const ANON_JWT = fakeJwt({ iss: 'supabase', ref: REF, role: 'anon', iat: 1_700_000_000, exp: EXP_2035 });
const EXPIRED_JWT = fakeJwt({ iss: 'supabase', ref: REF, role: 'service_role', exp: Date.UTC(2020, 0, 1) / 1000 });
const SESSION_JWT = fakeJwt({ iss: `https://${REF}.supabase.co/auth/v1`, role: 'authenticated', sub: 'u1', exp: 1 });
/** The Supabase CLI's local service_role key: public, identical on every machine (signed here at run time). */
const { serviceRoleKey: CLI_SERVICE_JWT } = await supabaseCliDefaultKeys();
const SECRET = ['sb', 'secret', 'Zq81vLx0PmR4tYwq2Hn5aB_c9Dk3Xz'].join('_') /* a fake key, assembled at run time */;
const PUBLISHABLE = 'sb_publishable_Kd93mQpX7wLz0aTy5RbN1c_Vf8Hg2Jk4';
const CLI_SECRET = CLI_DEFAULT_SECRET;
const NOW = new Date('2026-01-01T00:00:00Z');

describe('inspectKey', () => {
  const cases: {
    name: string;
    value: string | undefined;
    kind: KeyInfo['kind'];
    privileged?: boolean;
    role?: string;
    ref?: string;
    problems?: RegExp[];
  }[] = [
    { name: 'undefined', value: undefined, kind: 'missing', problems: [] },
    { name: 'empty', value: '', kind: 'missing', problems: [] },
    { name: 'only whitespace', value: '  \n', kind: 'missing', problems: [/only whitespace/] },
    {
      name: 'service_role JWT',
      value: SERVICE_JWT,
      kind: 'jwt',
      privileged: true,
      role: 'service_role',
      ref: REF,
      problems: [],
    },
    { name: 'anon JWT', value: ANON_JWT, kind: 'jwt', privileged: false, role: 'anon', ref: REF, problems: [] },
    {
      name: 'CLI local service JWT',
      value: CLI_SERVICE_JWT,
      kind: 'jwt',
      privileged: true,
      role: 'service_role',
      problems: [],
    },
    { name: 'sb_secret_', value: SECRET, kind: 'secret', privileged: true, problems: [] },
    { name: 'sb_publishable_', value: PUBLISHABLE, kind: 'publishable', privileged: false, problems: [] },
    {
      name: 'user session token',
      value: SESSION_JWT,
      kind: 'jwt',
      role: 'authenticated',
      ref: REF,
      problems: [/session token/],
    },
    { name: 'trailing newline', value: `${SECRET}\n`, kind: 'secret', privileged: true, problems: [/whitespace/] },
    { name: 'quoted', value: `"${SERVICE_JWT}"`, kind: 'jwt', privileged: true, problems: [/quotes/] },
    { name: 'single quote at one end', value: `${SECRET}'`, kind: 'secret', problems: [/stray quote/] },
    { name: 'Bearer prefix', value: `Bearer ${SERVICE_JWT}`, kind: 'jwt', privileged: true, problems: [/Bearer/] },
    {
      name: 'quoted, padded, with Bearer',
      value: ` 'Bearer ${SECRET}' `,
      kind: 'secret',
      problems: [/whitespace/, /quotes/, /Bearer/],
    },
    { name: 'NAME=value pasted', value: `SUPABASE_SECRET_KEY=${SECRET}`, kind: 'secret', problems: [/variable name/] },
    {
      name: 'JWT with 2 parts',
      value: SERVICE_JWT.split('.').slice(0, 2).join('.'),
      kind: 'malformed',
      problems: [/2 of 3/],
    },
    { name: 'JWT cut in the payload', value: SERVICE_JWT.slice(0, 60), kind: 'malformed', problems: [/2 of 3/] },
    { name: 'JWT cut in the header', value: SERVICE_JWT.slice(0, 30), kind: 'malformed', problems: [/1 of 3/] },
    {
      name: 'JWT cut in the signature',
      value: SERVICE_JWT.slice(0, -10),
      kind: 'jwt',
      privileged: true,
      problems: [/33-character signature where HS256 needs 43/],
    },
    {
      name: 'JWT with empty signature',
      value: `${SERVICE_JWT.split('.').slice(0, 2).join('.')}.`,
      kind: 'jwt',
      problems: [/no signature/],
    },
    { name: 'JWT with extra text', value: `${SERVICE_JWT}abc`, kind: 'jwt', problems: [/longer than HS256/] },
    { name: 'JWT without role', value: fakeJwt({ iss: 'x', sub: 'y' }), kind: 'jwt', problems: [/without a role/] },
    {
      name: 'JWT wrapped across lines',
      value: `${SERVICE_JWT.slice(0, 100)}\n${SERVICE_JWT.slice(100)}`,
      kind: 'malformed',
      problems: [/line break inside/],
    },
    {
      name: 'JWT with bad characters',
      value: `${SERVICE_JWT.slice(0, 50)}*${SERVICE_JWT.slice(51)}`,
      kind: 'malformed',
      problems: [/characters/],
    },
    {
      name: 'garbage payload',
      value: 'eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXI',
      kind: 'malformed',
      problems: [/payload/],
    },
    { name: 'sb_secret_ only', value: 'sb_secret_', kind: 'malformed', problems: [/only the sb_secret_ prefix/] },
    { name: 'sb_secret_ cut short', value: 'sb_secret_abcdef', kind: 'malformed', problems: [/too short/] },
    {
      name: 'sb_secret_ with bad chars',
      value: 'sb_secret_abc$def0123456789abcdef',
      kind: 'malformed',
      problems: [/characters/],
    },
    {
      name: 'database URL',
      value: 'postgresql://postgres:pw@db.x.supabase.co:5432/postgres',
      kind: 'malformed',
      problems: [/connection string/],
    },
    { name: 'project URL', value: 'https://abc.supabase.co', kind: 'malformed', problems: [/is a URL/] },
    { name: 'random string', value: 'hunter2hunter2hunter2', kind: 'malformed', problems: [/not a Supabase key/] },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const info = inspectKey(c.value);
      expect(info.kind).toBe(c.kind);
      if (c.privileged !== undefined) expect(info.privileged).toBe(c.privileged);
      if (c.role !== undefined) expect(info.role).toBe(c.role);
      if (c.ref !== undefined) expect(info.ref).toBe(c.ref);
      if (c.problems) {
        expect(info.problems).toHaveLength(c.problems.length);
        c.problems.forEach((re, i) => {
          expect(info.problems[i]).toMatch(re);
        });
      }
    });
  }

  it('never puts key material in problems or the masked form', () => {
    for (const c of cases) {
      if (!c.value || c.value.trim().length < 16) continue;
      const info = inspectKey(c.value);
      const core = c.value
        .trim()
        .replace(/^['"]|['"]$/g, '')
        .replace(/^Bearer\s+|^[A-Z_]+=/, '');
      const text = [...info.problems, info.masked].join('\n');
      // Any 8-character window of the key beyond its public prefix must be absent.
      const start = core.startsWith('sb_') ? core.indexOf('_', 3) + 1 : 3;
      for (let i = start; i + 8 <= core.length - 4; i += 4) expect(text).not.toContain(core.slice(i, i + 8));
    }
  });

  it('reads the claims of a legacy key', () => {
    const info = inspectKey(SERVICE_JWT);
    expect(info.issuer).toBe('supabase');
    expect(info.expiresAt?.toISOString()).toBe('2035-01-01T00:00:00.000Z');
    expect(info.localDefault).toBe(false);
  });

  it('recognises the Supabase CLI local defaults', () => {
    const cli = inspectKey(CLI_SERVICE_JWT);
    expect(cli).toMatchObject({ issuer: 'supabase-demo', localDefault: true });
    expect(cli.ref).toBeUndefined();
    expect(inspectKey(CLI_SECRET)).toMatchObject({ kind: 'secret', localDefault: true });
    expect(inspectKey(SECRET).localDefault).toBe(false);
  });

  it('keeps role claims it does not know', () => {
    expect(inspectKey(fakeJwt({ role: 'supabase_admin', ref: REF })).role).toBe('supabase_admin');
  });
});

describe('maskKey', () => {
  const cases: [string | undefined, string][] = [
    [undefined, '(not set)'],
    ['   ', '(not set)'],
    ['""', '(empty after removing quotes)'],
    [SECRET, `sb_secret_…${SECRET.slice(-4)} (${SECRET.length} chars)`],
    [`  "${SECRET}"\n`, `sb_secret_…${SECRET.slice(-4)} (${SECRET.length} chars)`],
    [PUBLISHABLE, `sb_publishable_…${PUBLISHABLE.slice(-4)} (${PUBLISHABLE.length} chars)`],
    [SERVICE_JWT, `eyJ…${SERVICE_JWT.slice(-4)} (JWT, ${SERVICE_JWT.length} chars)`],
    [`Bearer ${SERVICE_JWT}`, `eyJ…${SERVICE_JWT.slice(-4)} (JWT, ${SERVICE_JWT.length} chars)`],
    ['eyJabc.def', 'eyJ… (10 chars)'],
    ['sb_secret_abc', 'sb_secret_… (13 chars)'],
    ['hunter2hunter2hunter2', '…ter2 (21 chars)'],
    ['hunter2', '… (7 chars)'],
  ];
  for (const [value, expected] of cases) {
    it(`${JSON.stringify(value)?.slice(0, 30)} → ${expected}`, () => {
      expect(maskKey(value)).toBe(expected);
    });
  }
});

describe('describeKey', () => {
  const cases: [string, string | undefined, string][] = [
    ['missing', undefined, 'no key set'],
    [
      'service_role JWT',
      SERVICE_JWT,
      `service_role JWT for project ${REF}, expires 2035-01-01 (eyJ…${SERVICE_JWT.slice(-4)}, ${SERVICE_JWT.length} chars)`,
    ],
    [
      'anon JWT',
      ANON_JWT,
      `anon JWT for project ${REF}, expires 2035-01-01 (eyJ…${ANON_JWT.slice(-4)}, ${ANON_JWT.length} chars)`,
    ],
    [
      'expired JWT',
      EXPIRED_JWT,
      `service_role JWT for project ${REF}, EXPIRED 2020-01-01 (eyJ…${EXPIRED_JWT.slice(-4)}, ${EXPIRED_JWT.length} chars)`,
    ],
    [
      'CLI local JWT',
      CLI_SERVICE_JWT,
      `service_role JWT, Supabase CLI local default, expires 2032-11-11 (eyJ…81IU, ${CLI_SERVICE_JWT.length} chars)`,
    ],
    [
      'no exp, foreign issuer',
      fakeJwt({ role: 'anon', iss: 'gotrue' }),
      /^anon JWT without a project ref \(issuer gotrue\), no expiry \(eyJ…/.source,
    ],
    ['secret', SECRET, `secret key (sb_secret_…${SECRET.slice(-4)}, ${SECRET.length} chars)`],
    ['CLI secret', CLI_SECRET, 'secret key, Supabase CLI local default (sb_secret_…MPvz, 41 chars)'],
    [
      'publishable',
      PUBLISHABLE,
      `publishable key (sb_publishable_…${PUBLISHABLE.slice(-4)}, ${PUBLISHABLE.length} chars)`,
    ],
    [
      'malformed',
      'hunter2hunter2hunter2',
      'malformed key (…ter2, 21 chars): is not a Supabase key: expected a JWT (eyJ...), an sb_secret_... or an sb_publishable_... key',
    ],
  ];
  for (const [name, value, expected] of cases) {
    it(name, () => {
      const line = describeKey(inspectKey(value), NOW);
      if (expected.startsWith('^')) expect(line).toMatch(new RegExp(expected));
      else expect(line).toBe(expected);
      expect(line).not.toContain('\n');
    });
  }
});

describe('isExpired', () => {
  it('compares exp with now, and treats opaque keys as never expiring', () => {
    expect(isExpired(inspectKey(EXPIRED_JWT), NOW)).toBe(true);
    expect(isExpired(inspectKey(SERVICE_JWT), NOW)).toBe(false);
    expect(isExpired(inspectKey(SERVICE_JWT), new Date('2035-01-01T00:00:00Z'))).toBe(true);
    expect(isExpired(inspectKey(SECRET), NOW)).toBe(false);
  });
});

describe('decodeJwtPart: the rules of jose, which the runbooks no longer load', () => {
  const b64 = (text: string) => Buffer.from(text).toString('base64url');
  const tokens: Record<string, string> = {
    'a legacy key': SERVICE_JWT,
    'the CLI key': CLI_SERVICE_JWT,
    'an empty header': `.${b64('{}')}.sig`,
    'an empty payload': `${b64('{"alg":"HS256"}')}..sig`,
    'a payload of 4n+1 characters': `${b64('{"alg":"HS256"}')}.${b64('{"role":"anon"}')}x.sig`,
    'a payload that is not UTF-8': `${b64('{"alg":"HS256"}')}.${Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url')}.sig`,
    'a payload that is not JSON': `${b64('{"alg":"HS256"}')}.${b64('role=anon')}.sig`,
    'a payload that is an array': `${b64('{"alg":"HS256"}')}.${b64('["anon"]')}.sig`,
    'a payload that is a string': `${b64('{"alg":"HS256"}')}.${b64('"anon"')}.sig`,
    'a payload that is null': `${b64('{"alg":"HS256"}')}.${b64('null')}.sig`,
    'a header that is a number': `${b64('5')}.${b64('{"role":"anon"}')}.sig`,
    'a payload with a BOM-free unicode role': `${b64('{"alg":"HS256"}')}.${b64('{"role":"ânon"}')}.sig`,
  };
  /** jose's answer for one part: the object, or undefined where it throws. */
  const jose = (token: string, part: 0 | 1) => {
    try {
      return part === 0 ? decodeProtectedHeader(token) : decodeJwt(token);
    } catch {
      return undefined;
    }
  };

  it.each(Object.entries(tokens))('%s: header and payload decode as jose decodes them', (_, token) => {
    const [header, payload] = token.split('.');
    expect(decodeJwtPart(header)).toEqual(jose(token, 0));
    expect(decodeJwtPart(payload)).toEqual(jose(token, 1));
  });

  it('the CLI default keys are the tokens jose signs with the demo secret', async () => {
    const secret = new TextEncoder().encode(SUPABASE_CLI_DEMO_JWT_SECRET);
    const keys = await supabaseCliDefaultKeys();
    for (const [role, key] of [
      ['anon', keys.anonKey],
      ['service_role', keys.serviceRoleKey],
    ] as const) {
      const signed = await new SignJWT({ iss: 'supabase-demo', role, exp: 1983812996 })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .sign(secret);
      expect(key).toBe(signed);
      await expect(jwtVerify(key, secret)).resolves.toMatchObject({ payload: { role } });
    }
  });
});
