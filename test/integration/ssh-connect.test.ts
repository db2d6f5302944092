/**
 * connectSpark against a real ssh2 Server started here (keys generated per run, never written to the repo), a raw
 * TCP server that never speaks, a TCP proxy that can cut the connection, and a closed port.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Connection, ParsedKey } from 'ssh2';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SshTarget } from '../../lib/core/ports.ts';
import { shellQuote } from '../../lib/io/shell-quote.ts';
import { type ConnectSparkOptions, connectSpark, type SparkSshSession } from '../../lib/io/ssh/connect.ts';
import { earlyDial } from '../../lib/io/ssh/dial.ts';
import { fingerprintSha256 } from '../../lib/io/ssh/known-hosts.ts';
import type { SshAuthSpec } from '../../lib/io/ssh/target.ts';
import { generateParsableKeyPair } from '../../sandbox/spark/keys.ts';
import { tempDir as makeTempDir } from '../helpers/run.ts';

const { Server, utils } = ssh2;

type KeyPair = { private: string; public: string };

function publicBlob(pair: KeyPair): Buffer {
  const parsed = utils.parseKey(pair.public) as ParsedKey;
  return parsed.getPublicSSH();
}

interface ServerStats {
  connections: number;
  authAttempts: number;
  /** Publickey requests that only asked whether the key would do (no signature). */
  unsignedAttempts: number;
  sessions: number;
  execs: number;
}

interface TestSshServer {
  port: number;
  stats: ServerStats;
  /** Commands still running on the server (a channel the client closes kills its command). */
  running(): number;
  close(): Promise<void>;
}

/** The hang limit: a wait longer than this is a hang, not a slow machine. */
const HANG_MS = 30_000;

/** Polls `check` until it holds, up to the hang limit. */
async function eventually(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + HANG_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${HANG_MS / 1000} s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A minimal Spark: public-key auth for one client key, exec through `bash -c`, counters for what was opened. */
async function startTestSshServer(hostKeys: KeyPair[], clientKey: KeyPair): Promise<TestSshServer> {
  const allowed = utils.parseKey(clientKey.public) as ParsedKey;
  const stats: ServerStats = { connections: 0, authAttempts: 0, unsignedAttempts: 0, sessions: 0, execs: 0 };
  const connections = new Set<Connection>();
  const children = new Set<ChildProcess>();

  const server = new Server({ hostKeys: hostKeys.map((pair) => pair.private) }, (conn) => {
    stats.connections++;
    connections.add(conn);
    conn.on('close', () => connections.delete(conn));
    conn.on('error', () => {});
    conn.on('authentication', (ctx) => {
      stats.authAttempts++;
      if (ctx.method === 'publickey' && !ctx.signature) stats.unsignedAttempts++;
      if (
        ctx.method === 'publickey' &&
        ctx.key.algo === allowed.type &&
        ctx.key.data.equals(allowed.getPublicSSH()) &&
        (!ctx.signature || allowed.verify(ctx.blob!, ctx.signature, ctx.hashAlgo))
      ) {
        ctx.accept();
        return;
      }
      ctx.reject(['publickey']);
    });
    conn.on('ready', () => {
      conn.on('session', (acceptSession) => {
        stats.sessions++;
        const session = acceptSession();
        session.on('exec', (acceptExec, _reject, info) => {
          stats.execs++;
          const stream = acceptExec();
          const child = spawn('bash', ['-c', info.command], { stdio: 'pipe' });
          children.add(child);
          child.stdin.on('error', () => {});
          stream.on('error', () => {});
          stream.pipe(child.stdin);
          child.stdout.on('data', (chunk: Buffer) => {
            if (stream.writable) stream.write(chunk);
          });
          child.stderr.on('data', (chunk: Buffer) => {
            if (stream.stderr.writable) stream.stderr.write(chunk);
          });
          child.on('close', (code, signal) => {
            children.delete(child);
            try {
              if (signal) stream.exit(signal.replace(/^SIG/, ''), false, '');
              else stream.exit(code ?? 0);
              stream.end();
            } catch {
              // The client already closed the channel.
            }
          });
          stream.on('close', () => {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          });
        });
      });
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    stats,
    running: () => children.size,
    close: async () => {
      for (const child of children) child.kill('SIGKILL');
      for (const conn of connections) conn.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A TCP server that accepts and never says a word: a half-dead host or a firewall that swallows the handshake. */
async function startSilentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A TCP proxy in front of the SSH server whose connections can be cut, like a Tailscale link going away. */
async function startProxy(
  targetPort: number,
): Promise<{ port: number; connections(): number; cut(): void; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((inbound) => {
    accepted++;
    const outbound = net.connect(targetPort, '127.0.0.1');
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    }
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const cut = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => accepted,
    cut,
    close: async () => {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port nothing listens on: bind, note, release. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function hashedName(name: string): string {
  const salt = createHash('sha1').update(`salt:${name}`).digest();
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

function knownHostsLine(names: string, blob: Buffer, marker = ''): string {
  const type = (utils.parseKey(blob) as ParsedKey).type;
  return `${marker ? `${marker} ` : ''}${names} ${type} ${blob.toString('base64')}`;
}

// Through the parse check: ssh2's generator now and then makes an ed25519 key its own parser rejects.
const hostKey = generateParsableKeyPair('ed25519');
const otherHostKey = generateParsableKeyPair('ed25519');
const ecdsaHostKey = generateParsableKeyPair('ecdsa', { bits: 256 });
const clientKey = generateParsableKeyPair('ed25519');
const strangerKey = generateParsableKeyPair('ed25519');
const encryptedKey = generateParsableKeyPair('ed25519', {
  passphrase: 'correct horse',
  cipher: 'aes256-ctr',
  rounds: 16,
});
const hostBlob = publicBlob(hostKey);
const hostFingerprint = fingerprintSha256(hostBlob);

let server: TestSshServer;
let twoKeyServer: TestSshServer;
const openSessions: SparkSshSession[] = [];
let tempDir: string;

const KEY_PATH = '/keys/id_ed25519';
const fileAuth: SshAuthSpec = { kind: 'file', path: KEY_PATH, source: 'SPARK_SSH_KEY_PATH' };

function target(port: number): SshTarget {
  return { host: '127.0.0.1', port, user: 'sparkuser', source: 'test' };
}

function knownPlain(port: number, blob = hostBlob): string {
  return knownHostsLine(`[127.0.0.1]:${port}`, blob);
}

/** Connect options with the right client key and known_hosts; each test overrides what it is about. */
function options(port: number, overrides: Partial<ConnectSparkOptions> = {}): ConnectSparkOptions {
  return {
    target: target(port),
    auth: fileAuth,
    knownHostsText: knownPlain(port),
    knownHostsPath: '/home/op/.ssh/known_hosts',
    readTextFile: async (file) => {
      if (file === KEY_PATH) return clientKey.private;
      throw Object.assign(new Error(`ENOENT: no such file, open '${file}'`), { code: 'ENOENT' });
    },
    // The hang limit: a connection to a live server that takes longer is stuck; a loaded machine is only slow.
    timeoutMs: HANG_MS,
    ...overrides,
  };
}

async function connectOk(opts: ConnectSparkOptions): Promise<SparkSshSession> {
  const result = await connectSpark(opts);
  if (!result.ok) throw new Error(`connect failed: ${result.failure.kind}: ${result.failure.message}`);
  openSessions.push(result.session);
  return result.session;
}

async function connectFailure(opts: ConnectSparkOptions) {
  const result = await connectSpark(opts);
  if (result.ok) {
    openSessions.push(result.session);
    throw new Error('expected the connection to be refused');
  }
  return result.failure;
}

beforeAll(async () => {
  server = await startTestSshServer([hostKey], clientKey);
  twoKeyServer = await startTestSshServer([hostKey, ecdsaHostKey], clientKey);
  tempDir = makeTempDir('ssh-connect-test-');
});

afterAll(async () => {
  await Promise.all(openSessions.map((session) => session.close()));
  await server?.close();
  await twoKeyServer?.close();
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
});

describe('connect and exec', () => {
  let session: SparkSshSession;
  beforeAll(async () => {
    session = await connectOk(options(server.port));
  });

  it('reports the host key fingerprint and target', () => {
    expect(session.hostKeyFingerprint).toBe(hostFingerprint);
    expect(session.target.port).toBe(server.port);
  });

  it('returns stdout, stderr and the exit code', async () => {
    const result = await session.exec('echo out; echo err >&2; exit 3');
    expect(result).toMatchObject({ code: 3, stdout: 'out\n', stderr: 'err\n', truncated: false, timedOut: false });
    expect(result.connectionLost).toBe(false);
  });

  it('passes stdin and always sends EOF', async () => {
    expect((await session.exec('cat', { stdin: 'héllo\nwörld\n' })).stdout).toBe('héllo\nwörld\n');
    // Without stdin, `cat` must see EOF instead of waiting for the timeout.
    const noInput = await session.exec('cat', { timeoutMs: HANG_MS });
    expect(noInput).toMatchObject({ code: 0, stdout: '', timedOut: false });
  });

  it('says once when the command and its stdin have gone out, before the answer, with or without stdin', async () => {
    for (const options of [{ stdin: 'abc' }, {}]) {
      const events: string[] = [];
      const result = session
        .exec('cat', { ...options, timeoutMs: HANG_MS, onSent: () => events.push('sent') })
        .then((r) => {
          events.push('answered');
          return r;
        });
      expect((await result).stdout).toBe(options.stdin ?? '');
      expect(events).toEqual(['sent', 'answered']);
    }
  });

  it('says it for a command that cannot start, too (nothing waits on it for ever)', async () => {
    let sent = 0;
    const other = await connectOk(options(server.port));
    await other.close();
    const r = await other.exec('true', { onSent: () => sent++ });
    expect(r.connectionLost).toBe(true);
    expect(sent).toBe(1);
  });

  it('cuts stdout at maxBytes and closes the channel of an endless command', async () => {
    const result = await session.exec('yes abcdefgh', { maxBytes: 1000 });
    // Ended by the cut, not by the exec timeout (2 min) or a lost connection.
    expect(result).toMatchObject({ truncated: true, timedOut: false, connectionLost: false });
    expect(Buffer.byteLength(result.stdout)).toBe(1000);
    expect(result.stdout.startsWith('abcdefgh\nabcdefgh\n')).toBe(true);
    // The channel was closed: the server saw it and killed `yes`.
    await eventually(() => server.running() === 0, 'the server ends `yes` once its channel is closed');
    // Output that fits is not marked.
    expect(await session.exec('printf 12345', { maxBytes: 5 })).toMatchObject({ stdout: '12345', truncated: false });
  });

  it('times a command out, closes its channel, and keeps the connection usable', async () => {
    // Longer than the test's own timeout: only the exec timeout can end it, as the result says.
    const result = await session.exec('sleep 60', { timeoutMs: 300 });
    expect(result).toMatchObject({ code: null, timedOut: true, connectionLost: false });
    expect(result.stderr).toContain('timed out after 0.3s');
    // The channel was closed: the server saw it and killed the sleep.
    await eventually(() => server.running() === 0, 'the server ends the sleep once its channel is closed');
    expect(await session.exec('echo still here')).toMatchObject({ code: 0, stdout: 'still here\n' });
  });

  it('reports a signal', async () => {
    const result = await session.exec('kill -KILL $$');
    expect(result.code).toBeNull();
    expect(result.signal).toBe('SIGKILL');
  });

  it('runs commands in parallel over the one connection', async () => {
    const before = server.stats.connections;
    const results = await Promise.all([1, 2, 3].map((n) => session.exec(`sleep 0.2; echo ${n}`)));
    expect(results.map((result) => result.stdout)).toEqual(['1\n', '2\n', '3\n']);
    expect(server.stats.connections).toBe(before);
  });

  it('quotes arguments that survive bash and sh -c unchanged', async () => {
    const nasty = `it's "quoted" $(echo pwned) \`echo pwned\` $HOME *\nsecond line\t!x \\ ~`;
    expect((await session.exec(`printf %s ${shellQuote(nasty)}`)).stdout).toBe(nasty);
    const viaSh = await session.exec(`sh -c ${shellQuote(`printf %s ${shellQuote(nasty)}`)}`);
    expect(viaSh.stdout).toBe(nasty);
  });
});

describe('round trips of the handshake', () => {
  it.each([
    ['ed25519', () => generateParsableKeyPair('ed25519')],
    ['RSA', () => generateParsableKeyPair('rsa', { bits: 2048 })],
  ])(
    'logs in with one signed publickey request with an %s key file (no question first), then runs stdin-fed commands',
    async (_name, make) => {
      const key = make();
      const own = await startTestSshServer([hostKey], key);
      try {
        const session = await connectOk(
          options(own.port, { auth: { kind: 'inline', source: 'SPARK_SSH_KEY', read: () => key.private } }),
        );
        expect(own.stats.authAttempts).toBe(1);
        expect(own.stats.unsignedAttempts).toBe(0);
        const first = await session.exec('cat; echo done', { stdin: 'from stdin\n' });
        const second = await session.exec('wc -c', { stdin: 'x'.repeat(100_000) });
        expect(first.stdout).toBe('from stdin\ndone\n');
        expect(second.stdout.trim()).toBe('100000');
        await session.close();
        expect(session.closedReason).toBe('the session was closed by the runbook');
      } finally {
        await own.close();
      }
    },
  );
});

describe('host key checks', () => {
  it('accepts a hashed known_hosts entry for [127.0.0.1]:port', async () => {
    const text = `# hashed\n${knownHostsLine(hashedName(`[127.0.0.1]:${server.port}`), hostBlob)}\n`;
    const session = await connectOk(options(server.port, { knownHostsText: text }));
    expect((await session.exec('echo ok')).stdout).toBe('ok\n');
    await session.close();
  });

  it('accepts a pinned fingerprint without any known_hosts', async () => {
    const session = await connectOk(
      options(server.port, { knownHostsText: undefined, pinnedFingerprint: hostFingerprint.replace('SHA256:', '') }),
    );
    expect(session.hostKeyFingerprint).toBe(hostFingerprint);
    await session.close();
  });

  it('refuses a changed host key before authenticating or opening any channel', async () => {
    const before = { ...server.stats };
    const failure = await connectFailure(
      options(server.port, { knownHostsText: knownPlain(server.port, publicBlob(otherHostKey)) }),
    );
    expect(failure.kind).toBe('host-key-mismatch');
    expect(failure.presentedFingerprint).toBe(hostFingerprint);
    expect(failure.message).toContain(hostFingerprint);
    expect(failure.fix).toContain(`ssh-keygen -R '[127.0.0.1]:${server.port}' -f /home/op/.ssh/known_hosts`);
    expect(server.stats.authAttempts).toBe(before.authAttempts);
    expect(server.stats.sessions).toBe(before.sessions);
    expect(server.stats.execs).toBe(before.execs);
  });

  it('refuses a key that does not match the pin', async () => {
    const failure = await connectFailure(
      options(server.port, { pinnedFingerprint: fingerprintSha256(publicBlob(otherHostKey)) }),
    );
    expect(failure.kind).toBe('host-key-mismatch');
    expect(failure.fix).toContain('SPARK_HOST_KEY_SHA256');
  });

  it('refuses a revoked key', async () => {
    const text = `${knownPlain(server.port)}\n${knownHostsLine('*', hostBlob, '@revoked')}`;
    const failure = await connectFailure(options(server.port, { knownHostsText: text }));
    expect(failure.kind).toBe('host-key-revoked');
  });

  it('refuses an unknown host without a decider, naming the fingerprint and the fixes', async () => {
    const failure = await connectFailure(options(server.port, { knownHostsText: '' }));
    expect(failure.kind).toBe('host-key-unknown');
    expect(failure.message).toContain(hostFingerprint);
    expect(failure.fix).toContain('SPARK_HOST_KEY_SHA256');
    expect(failure.fix).toContain('ssh-keyscan');
    const noFile = await connectFailure(options(server.port, { knownHostsText: undefined }));
    expect(noFile.kind).toBe('host-key-unknown');
  });

  it('asks the decider about an unknown host, and its thinking time does not count against the timeout', async () => {
    const asked: { target: SshTarget; fingerprint: string }[] = [];
    // The decider thinks longer than the timeout. The handshake before it and the rest after it each get the whole
    // timeout, 5 s: enough on a loaded machine, where 1 s could run out without a bug.
    const timeoutMs = 5_000;
    const session = await connectOk(
      options(server.port, {
        knownHostsText: '',
        timeoutMs,
        onUnknownHost: async (info) => {
          asked.push(info);
          await new Promise((resolve) => setTimeout(resolve, timeoutMs + 1_000));
          return true;
        },
      }),
    );
    expect(asked).toEqual([{ target: target(server.port), fingerprint: hostFingerprint }]);
    expect((await session.exec('echo yes')).stdout).toBe('yes\n');
    await session.close();
  });

  it('refuses when the decider says no', async () => {
    const failure = await connectFailure(
      options(server.port, { knownHostsText: '', onUnknownHost: async () => false }),
    );
    expect(failure.kind).toBe('host-key-unknown');
    expect(failure.message).toContain('declined');
  });

  it('negotiates the key type known_hosts holds when the server has several', async () => {
    // Left alone, ssh2 would pick the ed25519 key; only the ECDSA one is on record.
    const text = knownPlain(twoKeyServer.port, publicBlob(ecdsaHostKey));
    const session = await connectOk(options(twoKeyServer.port, { knownHostsText: text }));
    expect(session.hostKeyFingerprint).toBe(fingerprintSha256(publicBlob(ecdsaHostKey)));
    await session.close();
  });
});

describe('classified failures', () => {
  it('auth-failed for a key Spark does not know', async () => {
    const failure = await connectFailure(
      options(server.port, { auth: { kind: 'inline', source: 'SPARK_SSH_KEY', read: () => strangerKey.private } }),
    );
    expect(failure.kind).toBe('auth-failed');
    expect(failure.fix).toContain('authorized_keys');
    expect(failure.fix).toContain('SPARK_SSH_KEY_PATH');
  });

  it('refused when nothing listens', async () => {
    const port = await closedPort();
    const failure = await connectFailure(options(port));
    expect(failure.kind).toBe('refused');
    expect(failure.fix).toContain('SPARK_PORT');
  });

  it('timeout within timeoutMs when the server never answers the handshake', async () => {
    const silent = await startSilentServer();
    try {
      const failure = await connectFailure(options(silent.port, { timeoutMs: 500 }));
      // The timer ended it, as the failure says (the server never would).
      expect(failure.kind).toBe('timeout');
      expect(failure.message).toContain('did not answer in 0.5s');
      expect(failure.fix).toContain('tailscale status');
    } finally {
      await silent.close();
    }
  });

  it('dns for a name that does not resolve', async () => {
    const failure = await connectFailure({
      ...options(22),
      target: { host: 'spark.invalid', port: 2222, user: 'sparkuser', source: 'test' },
    });
    expect(['dns', 'timeout']).toContain(failure.kind);
  });

  it('config failure naming SPARK_SSH_KEY_PATH when the key file cannot be read', async () => {
    const failure = await connectFailure(
      options(server.port, { auth: { kind: 'file', path: '/nope/id_ed25519', source: 'SPARK_SSH_KEY_PATH' } }),
    );
    expect(failure).toMatchObject({ kind: 'config' });
    expect(failure.message).toContain('/nope/id_ed25519');
    expect(failure.message).toContain('ENOENT');
    expect(failure.fix).toContain('SPARK_SSH_KEY_PATH');
  });

  it('config failure pointing at the agent for an encrypted key, with no key material in it', async () => {
    const failure = await connectFailure(options(server.port, { readTextFile: async () => encryptedKey.private }));
    expect(failure.kind).toBe('config');
    expect(failure.message).toContain('encrypted');
    expect(failure.fix).toContain('ssh-add');
    const keyLines = encryptedKey.private.split('\n').filter((line) => line.length > 20 && !line.startsWith('-----'));
    for (const line of keyLines) {
      expect(failure.message).not.toContain(line);
      expect(failure.fix).not.toContain(line);
    }
  });

  it('config failure for a public key or garbage given as the private key', async () => {
    const pub = await connectFailure(options(server.port, { readTextFile: async () => clientKey.public }));
    expect(pub.kind).toBe('config');
    expect(pub.message).toContain('public key');
    const junk = await connectFailure(options(server.port, { readTextFile: async () => 'not a key' }));
    expect(junk.kind).toBe('config');
    expect(junk.fix).toContain('SPARK_SSH_KEY_PATH');
  });
});

describe('lost connections and close', () => {
  it('resolves a command as a value when the link drops mid-command, then fails fast', async () => {
    const proxy = await startProxy(server.port);
    try {
      const session = await connectOk(options(proxy.port, { knownHostsText: knownPlain(proxy.port) }));
      const pending = session.exec('sleep 30', { timeoutMs: 20_000 });
      setTimeout(() => proxy.cut(), 300);
      const result = await pending;
      // Ended by the cut (reported as a lost connection), not by the exec timeout or the command's own end.
      expect(result).toMatchObject({ code: null, connectionLost: true, timedOut: false });
      expect(result.stderr).toContain('during the command');

      // Fails fast: the command is not even sent, and no new connection is tried.
      const before = { ...server.stats };
      const next = await session.exec('echo hi');
      expect(next).toMatchObject({ code: null, connectionLost: true });
      expect(next.stderr).toContain('not sent');
      expect(server.stats).toEqual(before);
      expect(session.closedReason).toBeDefined();
      await session.close();
    } finally {
      await proxy.close();
    }
  });

  it('close() is idempotent and later commands fail fast', async () => {
    const session = await connectOk(options(server.port));
    await Promise.all([session.close(), session.close()]);
    await session.close();
    const result = await session.exec('echo hi');
    expect(result).toMatchObject({ code: null, connectionLost: true });
  });

  it('a command running while close() is called resolves instead of hanging', async () => {
    const session = await connectOk(options(server.port));
    const pending = session.exec('sleep 30');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await session.close();
    expect(await pending).toMatchObject({ code: null, connectionLost: true });
  });
});

/**
 * The TCP connection a run opens before the SSH library has loaded (dial.ts): the connect takes it when it is still
 * good, and otherwise dials by itself, so what an operator sees is the same either way.
 */
describe('a socket dialled early', () => {
  /** An early dial whose sockets the test can watch. */
  function watchedDial(unclaimedMs?: number) {
    const sockets: net.Socket[] = [];
    const dial = earlyDial((host, port) => {
      const socket = net.connect({ host, port });
      sockets.push(socket);
      return socket;
    }, unclaimedMs);
    return { dial, sockets };
  }

  /** Resolves once the socket has closed (whatever the reason; events.once would reject on its error). */
  const closed = (socket: net.Socket) => new Promise((resolve) => socket.once('close', resolve));

  /** Connect options that take the early socket to `port`. */
  function early(dial: ReturnType<typeof earlyDial>, port: number, host = '127.0.0.1'): Partial<ConnectSparkOptions> {
    return { takeSocket: () => dial.take(host, port) };
  }

  it('carries the SSH connection: one TCP connection, commands run', async () => {
    const { dial, sockets } = watchedDial();
    const before = server.stats.connections;
    dial.open('127.0.0.1', server.port);
    // The server's greeting arrives before the SSH client exists; it must reach the client all the same.
    await eventually(() => sockets[0].bytesRead > 0, 'the server greets the early socket');
    const session = await connectOk(options(server.port, early(dial, server.port)));
    expect(await session.exec('echo over the early socket')).toMatchObject({
      code: 0,
      stdout: 'over the early socket\n',
    });
    expect(server.stats.connections).toBe(before + 1);
    expect(sockets).toHaveLength(1);
    expect(sockets[0].destroyed).toBe(false);
    await session.close();
    await eventually(() => sockets[0].destroyed, 'closing the session closes the early socket');
  });

  it('is taken only for its own address, and is not opened twice for the same one', async () => {
    const { dial, sockets } = watchedDial();
    dial.open('127.0.0.1', server.port);
    dial.open('127.0.0.1', server.port);
    expect(sockets).toHaveLength(1);
    expect(dial.take('127.0.0.1', server.port + 1)).toBeUndefined();
    expect(dial.take('localhost', server.port)).toBeUndefined();
    const socket = dial.take('127.0.0.1', server.port);
    expect(socket).toBe(sockets[0]);
    expect(dial.take('127.0.0.1', server.port)).toBeUndefined();
    socket?.destroy();
  });

  it('one nobody takes is closed by release, or after its time', async () => {
    const first = watchedDial();
    first.dial.open('127.0.0.1', server.port);
    first.dial.release();
    expect(first.sockets[0].destroyed).toBe(true);
    const second = watchedDial(50);
    second.dial.open('127.0.0.1', server.port);
    await closed(second.sockets[0]);
    expect(second.dial.take('127.0.0.1', server.port)).toBeUndefined();
  });

  it('one the server closed before it was taken is not used: the connect dials again', async () => {
    const proxy = await startProxy(server.port);
    try {
      const { dial, sockets } = watchedDial();
      dial.open('127.0.0.1', proxy.port);
      await eventually(() => proxy.connections() === 1, 'the proxy accepts the early socket');
      proxy.cut();
      await closed(sockets[0]);
      const session = await connectOk(
        options(proxy.port, { ...early(dial, proxy.port), knownHostsText: knownPlain(proxy.port) }),
      );
      expect(await session.exec('echo dialled again')).toMatchObject({ code: 0, stdout: 'dialled again\n' });
      await session.close();
    } finally {
      await proxy.close();
    }
  });

  // Each failure as it is without an early socket: taken while still connecting, and after it has already failed.
  const failures: Array<{
    name: string;
    setup: () => Promise<{ port: number; host?: string; close?: () => Promise<void> }>;
    timeoutMs?: number;
  }> = [
    { name: 'refused', setup: async () => ({ port: await closedPort() }) },
    { name: 'dns', setup: async () => ({ port: 2222, host: 'spark.invalid' }) },
    {
      name: 'timeout',
      setup: async () => {
        const silent = await startSilentServer();
        return { port: silent.port, close: () => silent.close() };
      },
      timeoutMs: 500,
    },
  ];
  it.each(failures)('$name: the same failure, whether the early socket failed already or not', async (f) => {
    const { port, host = '127.0.0.1', close } = await f.setup();
    try {
      const opts = (extra: Partial<ConnectSparkOptions> = {}) => ({
        ...options(port, f.timeoutMs ? { timeoutMs: f.timeoutMs } : {}),
        target: { host, port, user: 'sparkuser', source: 'test' },
        ...extra,
      });
      const plain = await connectFailure(opts());
      const atOnce = watchedDial();
      atOnce.dial.open(host, port);
      const whileConnecting = await connectFailure(opts(early(atOnce.dial, port, host)));
      const after = watchedDial();
      after.dial.open(host, port);
      if (f.name !== 'timeout') await closed(after.sockets[0]);
      const afterFailing = await connectFailure(opts(early(after.dial, port, host)));
      // DNS may time out instead on a machine without a resolver: each attempt is compared with its kind.
      for (const failure of [whileConnecting, afterFailing]) {
        if (failure.kind === plain.kind) expect(failure).toEqual(plain);
        else expect(f.name).toBe('dns');
      }
      for (const socket of [...atOnce.sockets, ...after.sockets])
        await eventually(() => socket.destroyed, 'no socket left open');
    } finally {
      await close?.();
    }
  });
});

describe('ssh-agent', () => {
  // spawnSync reports a missing binary as a value (an async spawn would emit an unhandled 'error').
  const agentAvailable = spawnSync('ssh-agent', ['-h'], { stdio: 'ignore' }).error === undefined;

  it('authenticates with a key held by ssh-agent', async (ctx) => {
    // .ci/run installs OpenSSH (ssh-agent with it): in CI a missing agent fails rather than skips.
    if (!agentAvailable && !process.env.CI)
      return ctx.skip('ssh-agent is not installed (apt-get install openssh-client)');
    expect(agentAvailable, 'ssh-agent is not installed, and CI is set').toBe(true);
    const socket = path.join(tempDir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    try {
      await waitFor(() => net.connect(socket), HANG_MS);
      const keyFile = path.join(tempDir, 'id_agent');
      writeFileSync(keyFile, clientKey.private);
      chmodSync(keyFile, 0o600);
      await run('ssh-add', [keyFile], { SSH_AUTH_SOCK: socket });
      rmSync(keyFile);
      const session = await connectOk(
        options(server.port, { auth: { kind: 'agent', socket, source: 'SSH_AUTH_SOCK' } }),
      );
      expect((await session.exec('echo agent')).stdout).toBe('agent\n');
      await session.close();
      // An IdentityFile from ~/.ssh/config that is missing (or encrypted) falls back to the agent, as ssh does.
      const fallback = await connectOk(
        options(server.port, {
          auth: { kind: 'file', path: '/nope/id_ed25519', source: 'IdentityFile (Host spark)', agentSocket: socket },
        }),
      );
      await fallback.close();
    } finally {
      agent.kill();
    }
  });
});

/** Retries opening a unix socket until it accepts (ssh-agent takes a moment to create it). */
async function waitFor(open: () => net.Socket, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = open();
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error('ssh-agent did not start');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function run(command: string, args: string[], env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}`))));
  });
}
