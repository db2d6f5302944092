import { describe, expect, it } from 'vitest';
import {
  checkHostName,
  expandTilde,
  parsePort,
  type ResolveSshTargetInput,
  resolveSshTarget,
  type SparkSshSettings,
  sshTargetLabel,
} from '../../lib/io/ssh/target.ts';

const HOME = '/home/op';
const PIN = 'SHA256:' + 'A'.repeat(43);

function resolve(input: Partial<ResolveSshTargetInput> & { env: ResolveSshTargetInput['env'] }) {
  return resolveSshTarget({ homeDir: HOME, ...input });
}

function settingsOf(input: Partial<ResolveSshTargetInput> & { env: ResolveSshTargetInput['env'] }): SparkSshSettings {
  const result = resolve(input);
  if (!result.ok) throw new Error(`expected ok, got ${result.failure.message}`);
  return result.settings;
}

const SSH_CONFIG = `
IdentityFile ~/.ssh/global_key

Host spark spark-gpu
  HostName 100.64.0.7
  Port 2200
  User gpuuser
  IdentityFile ~/.ssh/spark_ed25519
  UserKnownHostsFile ~/.ssh/known_hosts_spark ~/.ssh/known_hosts2

Host sp?rk2
  HostName %h.tail.net

Host *.lan !forbidden.lan
  User lanuser

Host weird
  HostName "bad host; rm -rf /"

Match exec "touch /tmp/should-never-run"
  User hacked

Host *
  User fallback
`;

describe('resolveSshTarget: host, port, user', () => {
  it('uses the defaults around SPARK_HOST', () => {
    const s = settingsOf({ env: { SPARK_HOST: '100.64.0.9', SSH_AUTH_SOCK: '/run/agent.sock' } });
    expect(s.target).toEqual({
      host: '100.64.0.9',
      port: 2222,
      user: 'sparkuser',
      source: 'SPARK_HOST in the environment',
    });
    expect(s.knownHostsPath).toBe('/home/op/.ssh/known_hosts');
    expect(s.auth).toEqual({ kind: 'agent', socket: '/run/agent.sock', source: 'SSH_AUTH_SOCK' });
    expect(s.pinnedFingerprint).toBeUndefined();
  });

  it('names the env file in the source when told where env came from', () => {
    const s = settingsOf({ env: { SPARK_HOST: 'h', SSH_AUTH_SOCK: '/a' }, envLabel: '.env' });
    expect(s.target.source).toBe('SPARK_HOST in .env');
  });

  it('resolves a Host alias from ~/.ssh/config', () => {
    const s = settingsOf({ env: { SPARK_HOST: 'spark' }, sshConfigText: SSH_CONFIG });
    expect(s.target).toMatchObject({ host: '100.64.0.7', port: 2200, user: 'gpuuser' });
    expect(s.target.source).toBe('SPARK_HOST=spark in the environment, Host spark spark-gpu in ~/.ssh/config');
    expect(s.alias).toBe('spark');
    // The top-level IdentityFile comes first in the file, so ssh would offer it first too.
    expect(s.auth).toMatchObject({ kind: 'file', path: '/home/op/.ssh/global_key' });
    expect(s.knownHostsPath).toBe('/home/op/.ssh/known_hosts_spark');
    expect(s.knownHostsSource).toContain('UserKnownHostsFile');
  });

  it('picks the first IdentityFile that exists when it can check', () => {
    const s = settingsOf({
      env: { SPARK_HOST: 'spark', SSH_AUTH_SOCK: '/a' },
      sshConfigText: SSH_CONFIG,
      fileExists: (path) => path === '/home/op/.ssh/spark_ed25519',
    });
    expect(s.auth).toEqual({
      kind: 'file',
      path: '/home/op/.ssh/spark_ed25519',
      source: 'IdentityFile (Host spark spark-gpu in ~/.ssh/config)',
      agentSocket: '/a',
    });
  });

  it('lets explicit SPARK_PORT and SPARK_USER win over the ssh config', () => {
    const s = settingsOf({
      env: { SPARK_HOST: 'spark', SPARK_PORT: '2022', SPARK_USER: 'ops', SSH_AUTH_SOCK: '/a' },
      sshConfigText: SSH_CONFIG,
    });
    expect(s.target).toMatchObject({ host: '100.64.0.7', port: 2022, user: 'ops' });
  });

  it('expands %h in HostName and matches ? as exactly one character', () => {
    expect(
      settingsOf({ env: { SPARK_HOST: 'spark2', SSH_AUTH_SOCK: '/a' }, sshConfigText: SSH_CONFIG }).target.host,
    ).toBe('spark2.tail.net');
    expect(
      settingsOf({ env: { SPARK_HOST: 'spar2', SSH_AUTH_SOCK: '/a' }, sshConfigText: SSH_CONFIG }).target.host,
    ).toBe('spar2');
  });

  it('honours negated Host patterns and falls through to Host *', () => {
    const lan = settingsOf({ env: { SPARK_HOST: 'gpu.lan', SSH_AUTH_SOCK: '/a' }, sshConfigText: SSH_CONFIG });
    expect(lan.target.user).toBe('lanuser');
    const forbidden = settingsOf({
      env: { SPARK_HOST: 'forbidden.lan', SSH_AUTH_SOCK: '/a' },
      sshConfigText: SSH_CONFIG,
    });
    expect(forbidden.target.user).toBe('fallback');
  });

  it('never evaluates Match exec, and says so', () => {
    const s = settingsOf({ env: { SPARK_HOST: 'other', SSH_AUTH_SOCK: '/a' }, sshConfigText: SSH_CONFIG });
    expect(s.target.user).toBe('fallback');
    expect(s.notes.join('\n')).toContain('Match exec');
  });

  it('uses the host as given when no Host block matches', () => {
    const s = settingsOf({
      env: { SPARK_HOST: '100.64.0.9', SSH_AUTH_SOCK: '/a' },
      sshConfigText: 'Host spark\n  Port 1\n',
    });
    expect(s.target).toMatchObject({ host: '100.64.0.9', port: 2222, source: 'SPARK_HOST in the environment' });
    expect(s.alias).toBeUndefined();
  });
});

describe('resolveSshTarget: validation', () => {
  const cases: { name: string; env: Record<string, string>; sshConfigText?: string; message: RegExp; fix: RegExp }[] = [
    { name: 'missing SPARK_HOST', env: {}, message: /SPARK_HOST is not set/, fix: /SPARK_HOST/ },
    { name: 'blank SPARK_HOST', env: { SPARK_HOST: '   ' }, message: /SPARK_HOST is not set/, fix: /SPARK_HOST/ },
    {
      name: 'port not a number',
      env: { SPARK_HOST: 'h', SPARK_PORT: 'ssh' },
      message: /SPARK_PORT "ssh"/,
      fix: /SPARK_PORT/,
    },
    { name: 'port 0', env: { SPARK_HOST: 'h', SPARK_PORT: '0' }, message: /SPARK_PORT/, fix: /SPARK_PORT/ },
    { name: 'port too big', env: { SPARK_HOST: 'h', SPARK_PORT: '65536' }, message: /SPARK_PORT/, fix: /SPARK_PORT/ },
    { name: 'port with junk', env: { SPARK_HOST: 'h', SPARK_PORT: '22abc' }, message: /SPARK_PORT/, fix: /SPARK_PORT/ },
    { name: 'port as a float', env: { SPARK_HOST: 'h', SPARK_PORT: '22.5' }, message: /SPARK_PORT/, fix: /SPARK_PORT/ },
    {
      name: 'unsafe User in the ssh config',
      env: { SPARK_HOST: 'spark', SSH_AUTH_SOCK: '/a' },
      sshConfigText: 'Host spark\n  User "a;b"\n',
      message: /User "a;b" \(Host spark in ~\/\.ssh\/config\) is not a usable user name/,
      fix: /SPARK_USER/,
    },
    {
      name: 'both key settings',
      env: { SPARK_HOST: 'h', SPARK_SSH_KEY_PATH: '/k', SPARK_SSH_KEY: 'x' },
      message: /Both SPARK_SSH_KEY_PATH and SPARK_SSH_KEY/,
      fix: /SPARK_SSH_KEY/,
    },
    {
      name: 'no key at all',
      env: { SPARK_HOST: 'h' },
      message: /No SSH key/,
      fix: /SPARK_SSH_KEY_PATH/,
    },
    {
      name: 'bad pin',
      env: { SPARK_HOST: 'h', SSH_AUTH_SOCK: '/a', SPARK_HOST_KEY_SHA256: 'MD5:12:34' },
      message: /SPARK_HOST_KEY_SHA256/,
      fix: /SPARK_HOST_KEY_SHA256/,
    },
    {
      name: 'unsafe HostName in the ssh config',
      env: { SPARK_HOST: 'weird', SSH_AUTH_SOCK: '/a' },
      sshConfigText: SSH_CONFIG,
      message: /HostName .*Host weird/,
      fix: /ssh\/config/,
    },
    {
      name: 'bad Port in the ssh config',
      env: { SPARK_HOST: 'spark', SSH_AUTH_SOCK: '/a' },
      sshConfigText: 'Host spark\n  Port twenty\n',
      message: /Port "twenty"/,
      fix: /SPARK_PORT/,
    },
  ];

  it.each(cases)('$name', (c) => {
    const result = resolve({ env: c.env, sshConfigText: c.sshConfigText });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.failure.kind).toBe('config');
    expect(result.failure.message).toMatch(c.message);
    expect(result.failure.fix).toMatch(c.fix);
    expect(result.failure.message).not.toContain('\n');
    expect(result.failure.fix).not.toContain('\n');
    // The runbooks take the SSH settings from variables only: no message names a flag.
    expect(`${result.failure.message} ${result.failure.fix}`).not.toMatch(/(^|\s)--[a-z]/);
  });
});

describe('resolveSshTarget: keys, known_hosts, pin', () => {
  it('takes SPARK_SSH_KEY_PATH alone, without the agent, and expands ~', () => {
    const s = settingsOf({ env: { SPARK_HOST: 'h', SPARK_SSH_KEY_PATH: '~/.ssh/ci_key', SSH_AUTH_SOCK: '/a' } });
    expect(s.auth).toEqual({ kind: 'file', path: '/home/op/.ssh/ci_key', source: 'SPARK_SSH_KEY_PATH' });
  });

  it('keeps an inline key out of printed and serialised settings', () => {
    const key = `-----BEGIN ${'OPENSSH'} PRIVATE KEY-----\nsecretsecret\n-----END OPENSSH PRIVATE KEY-----`;
    const s = settingsOf({ env: { SPARK_HOST: 'h', SPARK_SSH_KEY: key } });
    expect(s.auth.kind).toBe('inline');
    expect(JSON.stringify(s)).not.toContain('secretsecret');
    if (s.auth.kind === 'inline') expect(s.auth.read()).toBe(`${key}\n`);
  });

  it('undoes \\n escapes and base64 in an inline key', () => {
    const key = `-----BEGIN ${'OPENSSH'} PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n`;
    const escaped = settingsOf({ env: { SPARK_HOST: 'h', SPARK_SSH_KEY: key.replaceAll('\n', '\\n') } }).auth;
    const encoded = settingsOf({ env: { SPARK_HOST: 'h', SPARK_SSH_KEY: Buffer.from(key).toString('base64') } }).auth;
    expect(escaped.kind === 'inline' && escaped.read()).toBe(key);
    expect(encoded.kind === 'inline' && encoded.read()).toBe(key);
  });

  it('falls back to OpenSSH default key files when it can check they exist', () => {
    const s = settingsOf({ env: { SPARK_HOST: 'h' }, fileExists: (path) => path.endsWith('/id_rsa') });
    expect(s.auth).toEqual({ kind: 'file', path: '/home/op/.ssh/id_rsa', source: 'the default key ~/.ssh/id_rsa' });
  });

  it('prefers SPARK_KNOWN_HOSTS over the ssh config and expands ~', () => {
    const s = settingsOf({
      env: { SPARK_HOST: 'spark', SPARK_KNOWN_HOSTS: '~/kh', SSH_AUTH_SOCK: '/a' },
      sshConfigText: SSH_CONFIG,
    });
    expect(s.knownHostsPath).toBe('/home/op/kh');
    expect(s.knownHostsSource).toBe('SPARK_KNOWN_HOSTS');
  });

  it('normalises the pinned fingerprint', () => {
    const s = settingsOf({ env: { SPARK_HOST: 'h', SSH_AUTH_SOCK: '/a', SPARK_HOST_KEY_SHA256: PIN.slice(7) + '=' } });
    expect(s.pinnedFingerprint).toBe(PIN);
  });

  it('ignores an unparsable ssh config with a note instead of failing', () => {
    const s = settingsOf({
      env: { SPARK_HOST: 'h', SSH_AUTH_SOCK: '/a' },
      sshConfigText: 'Host\n\tPort "unterminated\n',
    });
    expect(s.target.host).toBe('h');
  });
});

describe('helpers', () => {
  it.each([
    ['22', 22],
    [' 2222 ', 2222],
    [65535, 65535],
    ['0', undefined],
    ['-1', undefined],
    ['1e3', undefined],
    ['0x16', undefined],
    ['', undefined],
  ])('parsePort(%j) = %j', (input, expected) => {
    expect(parsePort(input)).toBe(expected);
  });

  it.each([
    ['100.64.0.7', undefined],
    ['spark.tail-net.ts.net', undefined],
    ['fd7a:115c:a1e0::1', undefined],
    ['a\tb', 'whitespace'],
    ['a|b', 'shell'],
  ])('checkHostName(%j)', (host, problem) => {
    const result = checkHostName(host);
    if (problem === undefined) expect(result).toBeUndefined();
    else expect(result).toContain(problem);
  });

  it('expands only ~ and ~/', () => {
    expect(expandTilde('~', HOME)).toBe(HOME);
    expect(expandTilde('~/x', HOME)).toBe('/home/op/x');
    expect(expandTilde('~bob/x', HOME)).toBe('~bob/x');
    expect(expandTilde('/abs', HOME)).toBe('/abs');
  });

  it('formats the target one way, user@host:port', () => {
    expect(sshTargetLabel({ user: 'sparkuser', host: '100.64.0.7', port: 2222 })).toBe('sparkuser@100.64.0.7:2222');
    expect(sshTargetLabel({ user: 'ops', host: 'fd7a:115c:a1e0::1', port: 22 })).toBe('ops@fd7a:115c:a1e0::1:22');
  });
});
