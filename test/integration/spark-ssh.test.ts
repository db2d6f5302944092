import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, type ConnectConfig } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprintSha256, generateSparkKeys, knownHostsLine } from '../../sandbox/spark/keys.ts';
import { type SparkSshServer, startSparkSsh } from '../../sandbox/spark/ssh-server.ts';
import { type SandboxControls, SandboxStats } from '../../sandbox/stats.ts';
import { type OpenSshd, startOpenSshd } from '../helpers/openssh.ts';
import { tempDir } from '../helpers/run.ts';

interface Run {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

/** Connects with ssh2 and reports the host key the server presented. */
function connect(config: ConnectConfig): Promise<{ client: Client; hostKey: Buffer }> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let hostKey: Buffer = Buffer.alloc(0);
    client.once('ready', () => resolve({ client, hostKey }));
    client.once('error', reject);
    client.connect({
      host: '127.0.0.1',
      readyTimeout: 10_000,
      ...config,
      hostVerifier: (key: Buffer) => {
        hostKey = key;
        return true;
      },
    });
  });
}

function run(client: Client, command: string, stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, stream) => {
      if (err) return reject(err);
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      let signal: string | undefined;
      stream.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      stream.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      stream.on('exit', (c: number | null, s?: string) => {
        code = c;
        signal = s;
      });
      stream.on('close', () => resolve({ code, signal, stdout, stderr }));
      if (stdin !== undefined) stream.end(stdin);
      else stream.end();
    });
  });
}

function isRunning(pattern: string): boolean {
  try {
    execFileSync('pgrep', ['-f', pattern], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/** Polls `check` until it holds; the default deadline is the hang limit (30 s): a loaded machine is slow, not broken. */
async function waitFor(check: () => boolean, timeoutMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

const ENV_TEXT = 'SUPABASE_URL=http://127.0.0.1:54321\nSUPABASE_SERVICE_ROLE_KEY=test-key\nWORKER_POLL_MS=500\n';
const LOG_TEXT = ['2024-01-01T00:00:00.000Z INFO one', '2024-01-01T00:00:01.000Z INFO two', ''].join('\n');
// Unique per run so pgrep cannot match another test's sleeps.
const tag = `${process.pid}${Date.now() % 100_000}`;

let root: string;
let home: string;

function makeHome(dir: string): string {
  const h = path.join(dir, 'spark-home');
  mkdirSync(path.join(h, 'srv', 'hd-worker', 'logs'), { recursive: true });
  writeFileSync(path.join(h, 'srv', 'hd-worker', '.env'), ENV_TEXT);
  writeFileSync(path.join(h, 'srv', 'hd-worker', 'logs', 'worker.log'), LOG_TEXT);
  return h;
}

beforeAll(() => {
  root = tempDir('spark-ssh-');
  home = makeHome(root);
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('keys', () => {
  it('makes OpenSSH ed25519 pairs, known_hosts lines and ssh-keygen fingerprints', () => {
    const keys = generateSparkKeys({ client: 'sparkuser@laptop' });
    expect(keys.host.private).toMatch(/^-{5}BEGIN OPENSSH PRIVATE\sKEY-{5}/);
    expect(keys.host.public).toMatch(/^ssh-ed25519 AAAA[A-Za-z0-9+/]+=*$/);
    expect(keys.client.public).toMatch(/^ssh-ed25519 AAAA\S+ sparkuser@laptop$/);
    expect(keys.client.public).not.toBe(keys.host.public);

    const blob = keys.host.public.split(' ')[1];
    expect(knownHostsLine('127.0.0.1', 2222, keys.host.public)).toBe(`[127.0.0.1]:2222 ssh-ed25519 ${blob}`);
    expect(knownHostsLine('spark', 22, keys.client.public)).toBe(
      `spark ssh-ed25519 ${keys.client.public.split(' ')[1]}`,
    );

    const fp = fingerprintSha256(keys.host.public);
    expect(fp).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    const pubFile = path.join(root, 'fp.pub');
    writeFileSync(pubFile, `${keys.host.public}\n`);
    let keygen = '';
    try {
      keygen = execFileSync('ssh-keygen', ['-lf', pubFile], { encoding: 'utf8' });
    } catch {
      // ssh-keygen missing: the format check above still holds.
    }
    if (keygen) expect(keygen.split(' ')[1]).toBe(fp);
    expect(() => fingerprintSha256('not a key')).toThrow();
  });
});

describe('sandbox Spark SSH server', () => {
  const keys = generateSparkKeys({ client: 'sparkuser@laptop' });
  const stats = new SandboxStats();
  const controls: SandboxControls = { latencyMs: 0 };
  let server: SparkSshServer;
  let client: Client;
  let presentedHostKey: Buffer;

  const login = (over: Partial<ConnectConfig> = {}) =>
    connect({ port: server.port, username: 'sparkuser', privateKey: keys.client.private, ...over });

  beforeAll(async () => {
    process.env.SPARK_SSH_TEST_SECRET = 'must-not-leak';
    server = await startSparkSsh({
      home,
      user: 'sparkuser',
      hostKey: keys.host.private,
      authorizedKeys: `# the laptop\n${keys.client.public}\n`,
      port: 0,
      stats,
      controls,
    });
    ({ client, hostKey: presentedHostKey } = await login());
  });

  afterAll(async () => {
    delete process.env.SPARK_SSH_TEST_SECRET;
    client?.end();
    await server?.close();
  });

  it('presents the generated host key', () => {
    expect(presentedHostKey.toString('base64')).toBe(keys.host.public.split(' ')[1]);
  });

  it('runs echo and returns exit code 0', async () => {
    expect(await run(client, 'echo hello spark')).toEqual({
      code: 0,
      signal: undefined,
      stdout: 'hello spark\n',
      stderr: '',
    });
  });

  it('runs in the Spark home with a clean login environment', async () => {
    const r = await run(client, 'pwd; echo "$HOME|$USER|$LOGNAME|$SHELL"; env');
    const [pwd, vars] = r.stdout.split('\n');
    expect(pwd).toBe(home);
    expect(vars).toBe(`${home}|sparkuser|sparkuser|/bin/bash`);
    expect(r.stdout).not.toContain('must-not-leak');
    expect(r.stdout).not.toMatch(/^NODE_OPTIONS=/m);
    expect(r.stdout).not.toMatch(/^VITEST/m);
  });

  it('reads the worker .env through ~', async () => {
    const r = await run(client, 'cat ~/srv/hd-worker/.env');
    expect(r).toMatchObject({ code: 0, stdout: ENV_TEXT });
  });

  it('passes non-zero exit codes and stderr through', async () => {
    expect(await run(client, 'exit 3')).toMatchObject({ code: 3 });
    const missing = await run(client, 'cat ~/srv/hd-worker/missing.txt');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('No such file or directory');
    expect(await run(client, 'echo oops >&2; exit 7')).toMatchObject({ code: 7, stdout: '', stderr: 'oops\n' });
    expect((await run(client, 'no-such-command-xyz')).code).toBe(127);
    // ssh2's client reports the wire name ("KILL") with the SIG prefix, as real sshd's does below.
    expect(await run(client, 'kill -KILL $$')).toMatchObject({ code: null, signal: 'SIGKILL' });
  });

  it('feeds stdin to the command and ends it on EOF', async () => {
    expect(await run(client, 'cat', 'line one\nline two\n')).toMatchObject({ code: 0, stdout: 'line one\nline two\n' });
    expect((await run(client, 'wc -l')).stdout.trim()).toBe('0');
  });

  it('runs the tools the runbooks use: tail, stat, date, df, pgrep', async () => {
    const tail = await run(client, 'tail -n 1 srv/hd-worker/logs/worker.log');
    expect(tail.stdout).toBe('2024-01-01T00:00:01.000Z INFO two\n');

    const stat = await run(client, 'stat -c %s srv/hd-worker/.env');
    expect(stat.stdout.trim()).toBe(String(Buffer.byteLength(ENV_TEXT)));

    // The same machine, so the same clock: `date` ran between the two readings (whole seconds, rounded outward),
    // however long a loaded machine takes to run it.
    const before = Math.floor(Date.now() / 1000);
    const date = await run(client, 'date -u +%s');
    const after = Math.ceil(Date.now() / 1000);
    expect(date.stdout).toMatch(/^\d+\n$/);
    expect(Number(date.stdout)).toBeGreaterThanOrEqual(before);
    expect(Number(date.stdout)).toBeLessThanOrEqual(after);

    const df = await run(client, 'df -P ~');
    expect(df.code).toBe(0);
    expect(df.stdout).toMatch(/^Filesystem/);

    const sleeper = spawn('sleep', [`40.${tag}1`], { stdio: 'ignore' });
    try {
      const found = await run(client, `pgrep -f 'sleep 40.${tag}1'`);
      expect(found).toMatchObject({ code: 0, stdout: `${sleeper.pid}\n` });
      expect((await run(client, `pgrep -f 'nothing-runs-like-this-${tag}'`)).code).toBe(1);
    } finally {
      sleeper.kill();
    }
  });

  it('refuses a wrong key and a wrong user, and counts the failures', async () => {
    const before = stats.snapshot().ssh.authFailures;
    const stranger = generateSparkKeys().client;
    await expect(login({ privateKey: stranger.private })).rejects.toThrow(/authentication methods failed/);
    await expect(login({ username: 'root' })).rejects.toThrow(/authentication methods failed/);
    await expect(login({ privateKey: undefined, password: 'hunter2' })).rejects.toThrow(/authentication/);
    expect(stats.snapshot().ssh.authFailures).toBeGreaterThanOrEqual(before + 3);
  });

  it('accepts the OpenSSH ssh client with a known_hosts line from knownHostsLine()', async () => {
    const keyPath = path.join(root, 'id_ed25519');
    const knownHosts = path.join(root, 'known_hosts');
    writeFileSync(keyPath, keys.client.private, { mode: 0o600 });
    writeFileSync(knownHosts, `${knownHostsLine('127.0.0.1', server.port, keys.host.public)}\n`);
    let out: string;
    try {
      // Async: the server under test lives in this process, so a blocking call would starve it.
      ({ stdout: out } = await promisify(execFile)(
        'ssh',
        [
          ...['-F', '/dev/null', '-i', keyPath, '-p', String(server.port)],
          ...['-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=yes'],
          ...['-o', `UserKnownHostsFile=${knownHosts}`, 'sparkuser@127.0.0.1', 'echo via-openssh; exit 0'],
        ],
        { encoding: 'utf8', timeout: 15_000 },
      ));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // no ssh client installed
      throw err;
    }
    expect(out).toBe('via-openssh\n');
  });

  it('rejects shell and sftp sessions', async () => {
    await expect(
      new Promise((resolve, reject) => client.shell((err) => (err ? reject(err) : resolve(0)))),
    ).rejects.toThrow();
    await expect(
      new Promise((resolve, reject) => client.sftp((err) => (err ? reject(err) : resolve(0)))),
    ).rejects.toThrow();
  });

  it('accepts env and pty requests', async () => {
    const r = await new Promise<string>((resolve, reject) => {
      client.exec('echo "[$LANG]"', { env: { LANG: 'C.UTF-8' }, pty: true }, (err, stream) => {
        if (err) return reject(err);
        let out = '';
        stream.on('data', (d: Buffer) => {
          out += d.toString();
        });
        stream.on('close', () => resolve(out));
      });
    });
    // The env request is accepted but ignored, like an sshd without AcceptEnv.
    expect(r.trim()).toBe('[]');
  });

  it('moves the stats counters', async () => {
    const before = stats.snapshot().ssh;
    const { client: second } = await login();
    await run(second, 'printf 0123456789');
    second.end();
    const after = stats.snapshot().ssh;
    expect(after.connections).toBe(before.connections + 1);
    expect(after.execChannels).toBe(before.execChannels + 1);
    expect(after.bytesSent).toBe(before.bytesSent + 10);
  });

  it('applies the latency control to every exec', async () => {
    controls.latencyMs = 300;
    try {
      const started = Date.now();
      await run(client, 'true');
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    } finally {
      controls.latencyMs = 0;
    }
  });

  it('auth-fail fault rejects even the right key', async () => {
    controls.sshFault = { kind: 'auth-fail' };
    try {
      await expect(login()).rejects.toThrow(/authentication methods failed/);
    } finally {
      controls.sshFault = undefined;
    }
  });

  it('slow-handshake fault delays the login', async () => {
    controls.sshFault = { kind: 'slow-handshake', delayMs: 400 };
    try {
      const started = Date.now();
      const { client: slow } = await login();
      expect(Date.now() - started).toBeGreaterThanOrEqual(390);
      slow.end();
    } finally {
      controls.sshFault = undefined;
    }
  });

  it('drop-mid-command fault cuts the connection and kills the command', async () => {
    const { client: victim } = await login();
    victim.on('error', () => {});
    const closed = new Promise<void>((resolve) => victim.once('close', () => resolve()));
    controls.sshFault = { kind: 'drop-mid-command' };
    try {
      const r = await run(victim, `sleep 41.${tag}2; echo finished`);
      expect(r.code).toBeNull();
      expect(r.stdout).toBe('');
      await closed;
    } finally {
      controls.sshFault = undefined;
    }
    expect(await waitFor(() => !isRunning(`sleep 41.${tag}2`))).toBe(true);
  });

  it('kills the command when the client goes away, but not a process that detached itself', async () => {
    const { client: leaving } = await login();
    await run(leaving, `nohup sleep 42.${tag}3 >/dev/null 2>&1 &`);
    leaving.exec(`sleep 43.${tag}4`, () => {});
    expect(await waitFor(() => isRunning(`sleep 43.${tag}4`))).toBe(true);
    leaving.end();
    expect(await waitFor(() => !isRunning(`sleep 43.${tag}4`))).toBe(true);
    expect(isRunning(`sleep 42.${tag}3`)).toBe(true);
    execFileSync('pkill', ['-f', `sleep 42.${tag}3`]);
  });

  it('close() ends connections and leaves no child behind', async () => {
    const otherStats = new SandboxStats();
    const other = await startSparkSsh({
      home,
      user: 'sparkuser',
      hostKey: keys.host.private,
      authorizedKeys: [keys.client.public],
      port: 0,
      stats: otherStats,
      controls: { latencyMs: 0 },
    });
    const { client: c } = await connect({
      port: other.port,
      username: 'sparkuser',
      privateKey: keys.client.private,
    });
    c.on('error', () => {});
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    c.exec(`sleep 44.${tag}5`, () => {});
    expect(await waitFor(() => isRunning(`sleep 44.${tag}5`))).toBe(true);
    await other.close();
    expect(isRunning(`sleep 44.${tag}5`)).toBe(false);
    await closed;
    expect(otherStats.snapshot().ssh).toMatchObject({ connections: 1, execChannels: 1 });
  });
});

describe('real OpenSSH sshd (same exec cases)', async () => {
  const keys = generateSparkKeys({ client: 'runbooks@test' });
  const dir = tempDir('openssh-');
  const ohome = makeHome(dir);
  const started = await startOpenSshd({ dir: path.join(dir, 'sshd'), home: ohome, authorizedKeys: keys.client.public });
  const skipped = 'skipped' in started ? started.skipped : undefined;
  if (skipped) console.warn(`OpenSSH tests skipped: ${skipped}`);
  const sshd = skipped ? undefined : (started as OpenSshd);
  let client: Client;
  let hostKey: Buffer;

  beforeAll(async () => {
    if (!sshd) return;
    ({ client, hostKey } = await connect({ port: sshd.port, username: sshd.user, privateKey: keys.client.private }));
  });

  afterAll(async () => {
    client?.end();
    await sshd?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('presents its host key', (ctx) => {
    if (!sshd) return ctx.skip(skipped);
    expect(hostKey.toString('base64')).toBe(sshd!.hostPublicKey.split(' ')[1]);
  });

  it('runs echo, cat of the .env, exit codes, stderr and stdin', async (ctx) => {
    if (!sshd) return ctx.skip(skipped);
    expect(await run(client, 'echo hello spark')).toMatchObject({ code: 0, stdout: 'hello spark\n', stderr: '' });
    expect(await run(client, `cat ${ohome}/srv/hd-worker/.env`)).toMatchObject({ code: 0, stdout: ENV_TEXT });
    expect(await run(client, 'cat "$SPARK_HOME/srv/hd-worker/.env"')).toMatchObject({ code: 0, stdout: ENV_TEXT });
    expect(await run(client, 'exit 3')).toMatchObject({ code: 3 });
    expect(await run(client, 'echo oops >&2; exit 7')).toMatchObject({ code: 7, stdout: '', stderr: 'oops\n' });
    expect((await run(client, 'no-such-command-xyz')).code).toBe(127);
    expect(await run(client, 'cat', 'line one\n')).toMatchObject({ code: 0, stdout: 'line one\n' });
    expect(await run(client, 'kill -KILL $$')).toMatchObject({ code: null, signal: 'SIGKILL' });
    expect((await run(client, `tail -n 1 ${ohome}/srv/hd-worker/logs/worker.log`)).stdout).toBe(
      '2024-01-01T00:00:01.000Z INFO two\n',
    );
  });

  it('refuses a wrong key', async (ctx) => {
    if (!sshd) return ctx.skip(skipped);
    await expect(
      connect({ port: sshd!.port, username: sshd!.user, privateKey: generateSparkKeys().client.private }),
    ).rejects.toThrow(/authentication methods failed/);
  });
});
