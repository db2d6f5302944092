import { describe, expect, it } from 'vitest';
import { looksSecret, makeRedactor, REDACTED, redactShapes, secretShape } from '../../lib/io/redact.ts';

const JWT_HEADER = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9';
const JWT_PAYLOAD = Buffer.from(
  JSON.stringify({ iss: 'supabase', ref: 'abcdefghijklmnopqrst', role: 'service_role', exp: 2_000_000_000 }),
).toString('base64url');
const JWT_SIG = 'Xq3kR9vT2mWb7YhN4pLc8sDf1gJa6eZu0oIy5tRw3Qx';
const JWT = `${JWT_HEADER}.${JWT_PAYLOAD}.${JWT_SIG}`;
const SECRET = ['sb', 'secret', 'Zq81vLx0PmR4tYwq2Hn5aB_c9Dk3Xz'].join('_') /* a fake key, assembled at run time */;
const PEM_BODY = [
  'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj',
  'MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu',
  'NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ',
  'agbz4ASNTKUpE7yg==',
];
const PEM = ['-----BEGIN PRIVATE KEY-----', ...PEM_BODY, '-----END PRIVATE KEY-----', ''].join('\n');
/** Every regex metacharacter, to prove matching is literal. */
// Split so the literal "$" + "{" is not mistaken for a forgotten template placeholder.
const REGEXY = 'p@ss.*+?^$' + '{}()|[]\\/w0rd';

const redact = makeRedactor([JWT, SECRET, PEM, REGEXY, 'short7', '', undefined]);
const b64 = (s: string) => Buffer.from(s).toString('base64');
const b64url = (s: string) => Buffer.from(s).toString('base64url');

describe('makeRedactor', () => {
  const cases: [name: string, input: string, expected: string][] = [
    ['a JWT', `apikey: ${JWT}`, `apikey: ${REDACTED}`],
    [
      'a JWT in a header, twice',
      `Authorization: Bearer ${JWT}\napikey: ${JWT}`,
      `Authorization: Bearer ${REDACTED}\napikey: ${REDACTED}`,
    ],
    ['the JWT signature alone', `sig=${JWT_SIG};`, `sig=${REDACTED};`],
    ['the sb_secret_ key', `SUPABASE_SECRET_KEY=${SECRET}`, `SUPABASE_SECRET_KEY=${REDACTED}`],
    ['base64 of the key', `Basic ${b64(`user:x`)} ${b64(SECRET)}`, `Basic ${b64('user:x')} ${REDACTED}`],
    ['base64url of the key', `token=${b64url(SECRET)}&x=1`, `token=${REDACTED}&x=1`],
    ['base64 with its padding', `v=${b64(SECRET)};`, `v=${REDACTED};`],
    ['URL-encoded', `?key=${encodeURIComponent(REGEXY)}&a=b`, `?key=${REDACTED}&a=b`],
    ['regex metacharacters', `password is ${REGEXY}!`, `password is ${REDACTED}!`],
    ['the whole PEM', `key:\n${PEM}done`, `key:\n${REDACTED}done`],
    ['the PEM, trimmed', `"${PEM.trim()}"`, `"${REDACTED}"`],
    [
      'each PEM body line on its own',
      `line 1: ${PEM_BODY[0]}\nline 2: ${PEM_BODY[1]}\nline 4: ${PEM_BODY[3]}`,
      `line 1: ${REDACTED}\nline 2: ${REDACTED}\nline 4: ${REDACTED}`,
    ],
    ['the PEM with CRLF line ends', PEM.replace(/\n/g, '\r\n'), REDACTED],
    ['the PEM inside JSON', JSON.stringify({ key: PEM }), `{"key":"${REDACTED}"}`],
    ['the PEM armour stays', '-----BEGIN PRIVATE KEY-----', '-----BEGIN PRIVATE KEY-----'],
    // Not secrets: parts any Supabase key shares, and prefixes of a key.
    ['the JWT header alone', `header ${JWT_HEADER}`, `header ${JWT_HEADER}`],
    ['the JWT header and payload', `${JWT_HEADER}.${JWT_PAYLOAD}.`, `${JWT_HEADER}.${JWT_PAYLOAD}.`],
    ['the sb_secret_ prefix', 'keys look like sb_secret_...', 'keys look like sb_secret_...'],
    // The literal matcher does not over-match: a value without a secret's shape, cut short, stays.
    ['a prefix of a registered value', `starts ${REGEXY.slice(0, 12)}…`, `starts ${REGEXY.slice(0, 12)}…`],
    ['a registered value minus its last character', REGEXY.slice(0, -1), REGEXY.slice(0, -1)],
    // A secret-shaped token goes even in part: an sb_secret_ key cut short is still a secret.
    ['a prefix of an sb_secret_ key', `starts ${SECRET.slice(0, 20)}…`, `starts ${REDACTED}…`],
    ['short secrets are ignored', 'short7 short7', 'short7 short7'],
    ['unrelated text', 'nothing to see here', 'nothing to see here'],
    ['empty text', '', ''],
  ];
  for (const [name, input, expected] of cases) {
    it(name, () => {
      expect(redact(input)).toBe(expected);
    });
  }

  it('redacts the key inside a larger base64 blob, at any byte offset', () => {
    for (const before of ['', 'a', 'ab', 'abc', 'user:']) {
      for (const after of ['', 'x', 'xy', '\nMORE=1']) {
        const blob = b64(`${before}${SECRET}${after}`);
        const out = redact(`blob ${blob} end`);
        expect(out).toContain(REDACTED);
        // What may remain of the encoding at either end is at most one 4-character group.
        expect(
          out
            .replace(/^blob /, '')
            .replace(/ end$/, '')
            .split(REDACTED)
            .join('').length,
        ).toBeLessThanOrEqual(blob.length - b64(SECRET).length + 8);
      }
    }
  });

  it('redacts the longest match first, so a secret containing another goes whole', () => {
    const inner = 'innersecret123';
    const outer = `outer-${inner}-outer`;
    expect(makeRedactor([inner, outer])(`a ${outer} b ${inner}`)).toBe(`a ${REDACTED} b ${REDACTED}`);
    expect(makeRedactor([outer, inner])(`a ${outer} b ${inner}`)).toBe(`a ${REDACTED} b ${REDACTED}`);
  });

  it('redacts a secret stored with a trailing newline wherever it appears trimmed', () => {
    expect(makeRedactor([`${SECRET}\n`])(`key ${SECRET}.`)).toBe(`key ${REDACTED}.`);
  });

  it('is the identity with no usable secrets', () => {
    const r = makeRedactor([]);
    expect(r('anything sb_secret_x')).toBe('anything sb_secret_x');
    expect(makeRedactor(['', '1234567', '       '])('1234567')).toBe('1234567');
  });

  it('leaves no 8-character window of any secret in a busy text', () => {
    const text = [
      `curl -H "apikey: ${JWT}" -H "Authorization: Bearer ${SECRET}"`,
      `echo ${b64(PEM)} | base64 -d`,
      `{"key":${JSON.stringify(PEM)}}`,
      `https://x/?k=${encodeURIComponent(SECRET)}`,
    ].join('\n');
    const out = redact(text);
    for (const secret of [JWT_SIG, SECRET.slice(10), ...PEM_BODY.slice(0, 3)]) {
      for (let i = 0; i + 8 <= secret.length; i++) expect(out).not.toContain(secret.slice(i, i + 8));
    }
  });
});

describe('secrets nobody registered, by shape', () => {
  // Assembled at run time: no key-shaped literal lives in this repository.
  const j = (...parts: string[]) => parts.join('');
  const cases: Array<[name: string, input: string, expected: string]> = [
    ['an sb_secret_ key in a job error', `401: ${SECRET} rejected`, `401: ${REDACTED} rejected`],
    ['a JWT', `key=${JWT}`, `key=${REDACTED}`],
    ['a PEM private key', `k:${PEM}`, `k:-----BEGIN PRIVATE KEY-----${REDACTED}-----END PRIVATE KEY-----\n`],
    [
      'a password in a Redis URL',
      'REDIS_URL=redis://:hunter2pass@cache:6379/0',
      `REDIS_URL=redis://:${REDACTED}@cache:6379/0`,
    ],
    ['user and password in a Postgres URL', 'postgres://app:s3cr3t@db:5432/x', `postgres://app:${REDACTED}@db:5432/x`],
    ['a bearer token', 'Authorization: Bearer abcdef0123456789xyz', `Authorization: Bearer ${REDACTED}`],
    [
      'a Slack webhook',
      j('posting to https://hooks.slack.com/services/', 'T0000AAAA/B0000BBBB/', 'XXXXXXXXXXXXXXXXXXXXXXXX'),
      `posting to https://hooks.slack.com/services/${REDACTED}`,
    ],
    ['a Slack token', j('xoxb', '-123456789012-abcdefABCDEF'), REDACTED],
    ['a GitHub token', j('ghp', '_', 'a'.repeat(36)), REDACTED],
    ['an AWS access key id', j('AKIA', 'ABCDEFGHIJKLMNOP'), REDACTED],
    ['an AWS secret key', j('aws_secret_access_key = ', 'A'.repeat(40)), `aws_secret_access_key = ${REDACTED}`],
    ['a Stripe key', j('sk_', 'live_', 'a1'.repeat(12)), REDACTED],
    ['a Hugging Face token', j('hf', '_', 'A1b2'.repeat(9)), REDACTED],
    // Not secrets: public keys, masked keys, URLs without a password, fingerprints, UUIDs.
    ['a publishable key', 'sb_publishable_Zq81vLx0PmR4tYwq2Hn5aB', 'sb_publishable_Zq81vLx0PmR4tYwq2Hn5aB'],
    ['a masked key', 'eyJ…Q2w (JWT, 219 chars) and sb_secret_…Dk3X', 'eyJ…Q2w (JWT, 219 chars) and sb_secret_…Dk3X'],
    ['a URL with a user only', 'ssh://sparkuser@100.64.0.1:2222', 'ssh://sparkuser@100.64.0.1:2222'],
    [
      'a host key fingerprint',
      'SHA256:kVdmjlK29G6fPy1UaOJ9g45gf/TWf+aeOh1o1gEXkmg',
      'SHA256:kVdmjlK29G6fPy1UaOJ9g45gf/TWf+aeOh1o1gEXkmg',
    ],
    ['a job id', 'job 9fb2a305-9213-4354-b722-c39e21b558f2', 'job 9fb2a305-9213-4354-b722-c39e21b558f2'],
  ];
  it.each(cases)('%s', (_name, input, expected) => {
    expect(redactShapes(input)).toBe(expected);
    expect(makeRedactor([])(input)).toBe(expected);
  });

  it('names the shape of a value pasted where no key belongs', () => {
    expect(secretShape(`x ${SECRET}`)).toBe('Supabase secret key');
    expect(secretShape(JWT)).toBe('JWT');
    expect(secretShape('spark.tailnet.ts.net')).toBeUndefined();
  });
});

describe('looksSecret (values of the worker .env)', () => {
  it.each([
    ['SUPABASE_SERVICE_ROLE_KEY', 'anything at all', true],
    ['REDIS_URL', 'redis://:pw123456@cache:6379', true],
    ['WEBHOOK', 'Zt8qLm2Vx9Rk4Pw7Yb3Nc6Hd1Jf5Gs0A', true],
    ['HF_ACCESS', 'qP4mZ8rT2vX6wB1nK9sD3fG7hJ5lC0yE', true],
    ['SUPABASE_URL', 'https://abcdefghijklmnopqrst.supabase.co', false],
    ['WORKER_POLL_MS', '500', false],
    ['MODEL_NAME', 'stabilityai/stable-diffusion-xl-base-1.0', false],
    ['GREETING', 'hello world this is long', false],
    ['FEATURE', 'aaaaaaaaaaaaaaaaaaaaaaaa', false],
  ])('%s=%s → %s', (name, value, expected) => {
    expect(looksSecret(name, value)).toBe(expected);
  });
});
