import { describe, expect, it } from 'vitest';
import { makeRedactor, REDACTED } from '../../lib/redact.ts';

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
    ['a prefix of the key', `starts ${SECRET.slice(0, 20)}…`, `starts ${SECRET.slice(0, 20)}…`],
    ['the key minus its last character', SECRET.slice(0, -1), SECRET.slice(0, -1)],
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
