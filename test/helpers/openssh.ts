/**
 * Runs the real OpenSSH sshd for tests, so the client layer and the runbooks are checked against the server
 * they meet on Spark, not only against the sandbox's ssh2 imitation. Needs /usr/sbin/sshd and root
 * (sshd only logs users in as the user it runs as when unprivileged, and refuses most setups then).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { generateSparkKeys } from '../../sandbox/spark/keys.ts';

const SSHD = '/usr/sbin/sshd';

/** Where sshd keeps its files and who may log in. */
export interface OpenSshdOptions {
  /** A scratch folder for the config, host key, authorized_keys, pid file. */
  dir: string;
  /**
   * The Spark home the test prepared. sshd logs in as root, whose home is elsewhere, so commands must use
   * absolute paths into it; it is also exported to sessions as `SPARK_HOME`.
   */
  home: string;
  /** OpenSSH public key lines allowed to log in. */
  authorizedKeys: string | string[];
}

/** A running sshd. */
export interface OpenSshd {
  port: number;
  /** The login user: the current (root) user. */
  user: string;
  /** sshd's host public key, one OpenSSH line. */
  hostPublicKey: string;
  close(): Promise<void>;
}

/**
 * Starts sshd on 127.0.0.1 with a free port; `{ skipped }` says why when it cannot run here. In CI (`CI` set)
 * there is no skip: .ci/run installs openssh-server and runs as root, so a missing sshd is a broken run, and the
 * tests that need it fail with the reason instead of quietly not running.
 */
export async function startOpenSshd(options: OpenSshdOptions): Promise<OpenSshd | { skipped: string }> {
  const cannot = !existsSync(SSHD)
    ? `${SSHD} is not installed (apt-get install -y openssh-server)`
    : typeof process.getuid !== 'function' || process.getuid() !== 0
      ? 'sshd needs root to log users in; these tests run as a non-root user'
      : undefined;
  if (cannot && process.env.CI) throw new Error(`CI is set, and the real-OpenSSH tests cannot run: ${cannot}`);
  if (cannot) return { skipped: cannot };
  // sshd refuses to start without its privilege-separation folder, which only the package's service creates.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  const dir = path.resolve(options.dir);
  mkdirSync(dir, { recursive: true });
  const { host } = generateSparkKeys({ host: 'sandbox-openssh-host' });
  const hostKeyPath = path.join(dir, 'ssh_host_ed25519_key');
  writeFileSync(hostKeyPath, host.private, { mode: 0o600 });
  writeFileSync(`${hostKeyPath}.pub`, `${host.public}\n`, { mode: 0o644 });
  const authorizedKeysPath = path.join(dir, 'authorized_keys');
  const keys = Array.isArray(options.authorizedKeys) ? options.authorizedKeys.join('\n') : options.authorizedKeys;
  writeFileSync(authorizedKeysPath, `${keys.trim()}\n`, { mode: 0o600 });

  const port = await freePort();
  const configPath = path.join(dir, 'sshd_config');
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKeyPath}`,
    `AuthorizedKeysFile ${authorizedKeysPath}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    'StrictModes no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    // Nothing interactive or forwarded: the runbooks only exec.
    'X11Forwarding no',
    'AllowTcpForwarding no',
    'PrintMotd no',
    `SetEnv SPARK_HOME=${path.resolve(options.home)}`,
    'LogLevel VERBOSE',
    '',
  ].join('\n');
  writeFileSync(configPath, config, { mode: 0o600 });

  const child = spawn(SSHD, ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    log = (log + chunk).slice(-8_000);
  });

  try {
    await waitForBanner(port, child, () => log);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }

  return {
    port,
    user: os.userInfo().username,
    hostPublicKey: host.public,
    close: () => stop(child),
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Waits until the port answers with an SSH identification line (sshd has no readiness signal with -D). */
async function waitForBanner(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}: ${log().trim()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.setTimeout(1_000);
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString('latin1').startsWith('SSH-'));
      });
      socket.once('error', () => resolve(false));
      socket.once('timeout', () => {
        socket.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd did not start listening on ${port}: ${log().trim()}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
}
