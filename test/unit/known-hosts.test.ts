import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  checkHostKey,
  fingerprintSha256,
  formatKnownHostsLine,
  type HostKeyStatus,
  hostKeyFingerprintCommand,
  keyTypeOfBlob,
  knownHostsName,
  matchPattern,
  matchPatternList,
  normalizeFingerprint,
  parseKnownHosts,
} from '../../lib/io/ssh/known-hosts.ts';

/** A syntactically valid public key blob: string type, then arbitrary bytes (we never do crypto with it). */
function fakeBlob(type: string, seed: string): Buffer {
  const typeBytes = Buffer.from(type, 'latin1');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(typeBytes.length);
  const body = createHash('sha256').update(seed).digest();
  return Buffer.concat([length, typeBytes, Buffer.from([0, 0, 0, 32]), body]);
}

const ED_A = fakeBlob('ssh-ed25519', 'a');
const ED_B = fakeBlob('ssh-ed25519', 'b');
const RSA_C = fakeBlob('ssh-rsa', 'c');
const ECDSA_D = fakeBlob('ecdsa-sha2-nistp256', 'd');

const b64 = (blob: Buffer) => blob.toString('base64');
const line = (names: string, blob: Buffer, marker = '') =>
  `${marker ? `${marker} ` : ''}${names} ${keyTypeOfBlob(blob)} ${b64(blob)}`;

/** Builds a hashed host field the way `ssh-keygen -H` does. */
function hashed(name: string, saltSeed: string): string {
  const salt = createHash('sha1').update(saltSeed).digest();
  const hash = createHmac('sha1', salt).update(name).digest();
  return `|1|${salt.toString('base64')}|${hash.toString('base64')}`;
}

describe('fingerprintSha256', () => {
  it('is SHA256: plus unpadded base64 of the blob digest', () => {
    const expected = createHash('sha256').update(ED_A).digest('base64').replace(/=+$/, '');
    expect(fingerprintSha256(ED_A)).toBe(`SHA256:${expected}`);
    expect(fingerprintSha256(ED_A)).not.toMatch(/=$/);
    expect(fingerprintSha256(ED_A)).toHaveLength('SHA256:'.length + 43);
  });

  it('normalises operator input', () => {
    const fp = fingerprintSha256(ED_A);
    const body = fp.slice('SHA256:'.length);
    expect(normalizeFingerprint(fp)).toBe(fp);
    expect(normalizeFingerprint(body)).toBe(fp);
    expect(normalizeFingerprint(` ${body}= `)).toBe(fp);
    expect(normalizeFingerprint('sha256:' + body)).toBe(fp);
    expect(normalizeFingerprint('MD5:aa:bb')).toBeUndefined();
    expect(normalizeFingerprint('SHA256:short')).toBeUndefined();
  });
});

describe('knownHostsName', () => {
  it.each([
    ['spark', 22, 'spark'],
    ['spark', 2222, '[spark]:2222'],
    ['100.64.0.7', 2222, '[100.64.0.7]:2222'],
    ['Spark.Tail.NET', 22, 'spark.tail.net'],
  ])('%s port %d -> %s', (host, port, expected) => {
    expect(knownHostsName(host, port)).toBe(expected);
  });
});

describe('pattern matching', () => {
  it.each([
    ['*', 'anything', true],
    ['100.64.*', '100.64.0.7', true],
    ['100.64.*', '100.65.0.7', false],
    ['spar?', 'spark', true],
    ['spar?', 'spar', false], // ? is exactly one character
    ['*.example.com', 'a.b.example.com', true],
    ['[10.0.0.?]:2222', '[10.0.0.5]:2222', true],
    ['[10.0.0.?]:2222', '[10.0.0.5]:22', false],
    ['a*b*c', 'aXXbYYc', true],
    ['a*b*c', 'aXXbYY', false],
  ])('matchPattern(%s, %s) = %s', (pattern, name, expected) => {
    expect(matchPattern(pattern, name)).toBe(expected);
  });

  it.each([
    [['*.lan', '!secret.lan'], 'spark.lan', true],
    [['*.lan', '!secret.lan'], 'secret.lan', false],
    [['!secret.lan', '*.lan'], 'secret.lan', false], // negation vetoes wherever it is
    [['!secret.lan'], 'spark.lan', false], // a negation alone never matches
    [['SPARK'], 'spark', true],
  ])('matchPatternList(%j, %s) = %s', (patterns, name, expected) => {
    expect(matchPatternList(patterns, name)).toBe(expected);
  });
});

interface Case {
  name: string;
  text: string;
  host: string;
  port: number;
  key: Buffer;
  status: HostKeyStatus;
  line?: number;
  known?: Buffer[];
}

const cases: Case[] = [
  {
    name: 'plain [host]:port entry matches',
    text: line('[100.64.0.7]:2222', ED_A),
    host: '100.64.0.7',
    port: 2222,
    key: ED_A,
    status: 'match',
    line: 1,
    known: [ED_A],
  },
  {
    name: 'plain [host]:port entry with another key is a mismatch',
    text: line('[100.64.0.7]:2222', ED_A),
    host: '100.64.0.7',
    port: 2222,
    key: ED_B,
    status: 'mismatch',
    line: 1,
    known: [ED_A],
  },
  {
    name: 'a bare host entry is for port 22 only',
    text: line('100.64.0.7', ED_A),
    host: '100.64.0.7',
    port: 2222,
    key: ED_A,
    status: 'unknown',
    known: [],
  },
  {
    name: 'port 22 uses the bare host form',
    text: line('spark,100.64.0.7', ED_A),
    host: '100.64.0.7',
    port: 22,
    key: ED_A,
    status: 'match',
    line: 1,
  },
  {
    name: 'port 22 does not match a [host]:22 entry (OpenSSH never writes one)',
    text: line('[100.64.0.7]:22', ED_A),
    host: '100.64.0.7',
    port: 22,
    key: ED_A,
    status: 'unknown',
  },
  {
    name: 'hashed [host]:port entry matches',
    text: line(hashed('[127.0.0.1]:2222', 's1'), ED_A),
    host: '127.0.0.1',
    port: 2222,
    key: ED_A,
    status: 'match',
    line: 1,
  },
  {
    name: 'hashed entry for another port does not apply',
    text: line(hashed('[127.0.0.1]:2223', 's1'), ED_A),
    host: '127.0.0.1',
    port: 2222,
    key: ED_A,
    status: 'unknown',
  },
  {
    name: 'hashed port-22 entry uses the bare name',
    text: line(hashed('spark.lan', 's2'), ED_A),
    host: 'spark.lan',
    port: 22,
    key: ED_B,
    status: 'mismatch',
    line: 1,
  },
  {
    name: 'wildcard entry applies',
    text: line('[100.64.*]:2222', ED_A),
    host: '100.64.9.9',
    port: 2222,
    key: ED_A,
    status: 'match',
  },
  {
    name: 'negated pattern removes the host from a wildcard line',
    text: line('[100.64.*]:2222,![100.64.0.66]:2222', ED_A),
    host: '100.64.0.66',
    port: 2222,
    key: ED_A,
    status: 'unknown',
  },
  {
    name: 'revoked key is revoked even when also listed as known',
    text: [line('[spark]:2222', ED_A), line('*', ED_A, '@revoked')].join('\n'),
    host: 'spark',
    port: 2222,
    key: ED_A,
    status: 'revoked',
    line: 2,
    known: [ED_A],
  },
  {
    name: 'a revoked line for another key does not affect a match',
    text: [line('[spark]:2222', ED_A), line('*', ED_B, '@revoked')].join('\n'),
    host: 'spark',
    port: 2222,
    key: ED_A,
    status: 'match',
    line: 1,
  },
  {
    name: 'multiple keys for the host: any of them matches',
    text: [line('[spark]:2222', RSA_C), line('[spark]:2222', ECDSA_D), line('[spark]:2222', ED_A)].join('\n'),
    host: 'spark',
    port: 2222,
    key: ED_A,
    status: 'match',
    line: 3,
    known: [RSA_C, ECDSA_D, ED_A],
  },
  {
    name: 'only another key type on record: refused as a mismatch',
    text: line('[spark]:2222', RSA_C),
    host: 'spark',
    port: 2222,
    key: ED_A,
    status: 'mismatch',
    line: 1,
    known: [RSA_C],
  },
  {
    name: 'a @cert-authority line does not vouch for a plain key',
    text: line('*', ED_A, '@cert-authority'),
    host: 'spark',
    port: 2222,
    key: ED_A,
    status: 'unknown',
    known: [],
  },
  {
    name: 'comments, blank lines, CRLF and trailing comments are skipped',
    text: `# known hosts\r\n\r\n   # indented comment\r\n${line('[spark]:2222', ED_A)} laptop@home\r\n`,
    host: 'spark',
    port: 2222,
    key: ED_A,
    status: 'match',
    line: 4,
  },
  {
    name: 'garbage lines are ignored, later good lines still count',
    text: [
      'this is not a known_hosts line',
      '[spark]:2222 1024 35 1234567890', // old RSA1 form
      `[spark]:2222 ssh-ed25519 !!!notbase64`,
      `[spark]:2222 ssh-rsa ${b64(ED_B)}`, // type disagrees with the key data
      `@bogus [spark]:2222 ssh-ed25519 ${b64(ED_B)}`,
      '|1|short|short ssh-ed25519 AAAA',
      line('[spark]:2222', ED_A),
    ].join('\n'),
    host: 'spark',
    port: 2222,
    key: ED_A,
    status: 'match',
    line: 7,
    known: [ED_A],
  },
  {
    name: 'host names are compared case-insensitively',
    text: line('[SPARK.lan]:2222', ED_A),
    host: 'spark.LAN',
    port: 2222,
    key: ED_A,
    status: 'match',
  },
  {
    name: 'empty file: unknown',
    text: '',
    host: 'spark',
    port: 2222,
    key: ED_A,
    status: 'unknown',
    known: [],
  },
];

describe('checkHostKey', () => {
  it.each(cases)('$name', (c) => {
    const result = checkHostKey(c.text, c.host, c.port, c.key);
    expect(result.status).toBe(c.status);
    if (c.line !== undefined) expect(result.line).toBe(c.line);
    if (c.known !== undefined) expect(result.knownFingerprints).toEqual(c.known.map(fingerprintSha256));
  });

  it('accepts parsed entries as well as text', () => {
    const file = parseKnownHosts(line('[spark]:2222', ED_A));
    expect(checkHostKey(file, 'spark', 2222, ED_A).status).toBe('match');
    expect(checkHostKey(file.entries, 'spark', 2222, ED_B).status).toBe('mismatch');
  });

  it('reports the key types on record for the host', () => {
    const text = [line('[spark]:2222', RSA_C), line('[other]:2222', ED_A), line('[spark]:2222', ECDSA_D)].join('\n');
    expect(checkHostKey(text, 'spark', 2222, ED_A).knownKeyTypes).toEqual(['ssh-rsa', 'ecdsa-sha2-nistp256']);
  });
});

describe('parseKnownHosts', () => {
  it('lists ignored lines with a reason and line number', () => {
    const file = parseKnownHosts(['# c', 'garbage', line('a', ED_A), `@nope a ssh-ed25519 ${b64(ED_A)}`].join('\n'));
    expect(file.entries.map((entry) => entry.line)).toEqual([3]);
    expect(file.ignored.map((ignored) => ignored.line)).toEqual([2, 4]);
    expect(file.ignored[1].reason).toContain('@nope');
  });

  it('splits comma-separated patterns and reads markers', () => {
    const [entry] = parseKnownHosts(line('a,[b]:2222,!c', ED_A, '@revoked')).entries;
    expect(entry.marker).toBe('revoked');
    expect(entry.names).toEqual({ kind: 'patterns', patterns: ['a', '[b]:2222', '!c'] });
    expect(entry.keyBlob.equals(ED_A)).toBe(true);
  });
});

describe('formatKnownHostsLine', () => {
  it('round-trips through checkHostKey, plain and hashed', () => {
    const plain = formatKnownHostsLine('127.0.0.1', 2222, ED_A);
    expect(plain).toBe(`[127.0.0.1]:2222 ssh-ed25519 ${b64(ED_A)}`);
    const hashedLine = formatKnownHostsLine('127.0.0.1', 2222, ED_A, { hash: true });
    expect(hashedLine.startsWith('|1|')).toBe(true);
    expect(checkHostKey(hashedLine, '127.0.0.1', 2222, ED_A).status).toBe('match');
    expect(checkHostKey(hashedLine, '127.0.0.1', 22, ED_A).status).toBe('unknown');
  });
});

describe('hostKeyFingerprintCommand', () => {
  it.each([
    ['ssh-ed25519', 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub'],
    ['ecdsa-sha2-nistp256', 'ssh-keygen -lf /etc/ssh/ssh_host_ecdsa_key.pub'],
    ['ssh-rsa', 'ssh-keygen -lf /etc/ssh/ssh_host_rsa_key.pub'],
  ])('names the host key file of a %s key', (type, command) => {
    expect(hostKeyFingerprintCommand(type)).toBe(command);
  });

  it('lists every host key when the type is not known', () => {
    expect(hostKeyFingerprintCommand()).toBe('for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf "$f"; done');
    expect(hostKeyFingerprintCommand('sk-ssh-ed25519@openssh.com')).toContain('ssh_host_*_key.pub');
  });
});
