/**
 * The sandbox's Spark host: an ssh2 Server that runs exec requests with bash in a Spark home folder,
 * so runbooks talk to it exactly as to the real host (public-key auth, exit codes, stderr, stdin).
 * Fault switches in `controls` make it slow or broken on purpose for drills and tests.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { timingSafeEqual } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// ssh2 is CommonJS; Node's ESM loader cannot see its named exports (vitest can), so take the default.
import ssh2, { type AuthContext, type Connection, type ParsedKey, type ServerChannel } from 'ssh2';

const { Server, utils } = ssh2;

import type { SandboxControls, SandboxStats } from '../stats.ts';

/** What `startSparkSsh` needs. */
export interface SparkSshOptions {
  /** The Spark user's home folder: the working directory and `$HOME` of every command. */
  home: string;
  /** The only user name that may log in. */
  user: string;
  /** Host private key, OpenSSH or PEM text. */
  hostKey: string;
  /** Public keys allowed to log in: OpenSSH lines (an authorized_keys text, or one line per entry). */
  authorizedKeys: string | string[];
  /** TCP port on 127.0.0.1; 0 picks a free one. */
  port: number;
  stats: SandboxStats;
  controls: SandboxControls;
}

/** A running Spark SSH server. */
export interface SparkSshServer {
  port: number;
  /** Ends every connection, kills every running command, stops listening. */
  close(): Promise<void>;
}

const DROP_AFTER_MS = 100;
const KILL_GRACE_MS = 1_000;

/** Starts the Spark SSH server on 127.0.0.1 and resolves once it listens. */
export async function startSparkSsh(options: SparkSshOptions): Promise<SparkSshServer> {
  const allowed = parseAuthorizedKeys(options.authorizedKeys);
  const running = new Set<RunningCommand>();
  const sockets = new Map<string, net.Socket>();
  const connections = new Set<Connection>();

  const ssh = new Server({ hostKeys: [options.hostKey] }, (conn, info) => {
    connections.add(conn);
    options.stats.recordSshConnection();
    const socket = sockets.get(`${info.ip}:${info.port}`);
    // A client that vanishes mid-handshake must not crash the sandbox.
    conn.on('error', () => {});
    conn.on('close', () => connections.delete(conn));

    let handshakeDelay: Promise<void> | undefined;
    conn.on('authentication', (ctx) => {
      const fault = options.controls.sshFault;
      if (fault?.kind === 'slow-handshake') handshakeDelay ??= sleep(fault.delayMs);
      void (handshakeDelay ?? Promise.resolve()).then(() => decideAuth(ctx, options, allowed));
    });

    conn.on('ready', () => {
      conn.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('env', (accept) => accept?.());
        session.on('pty', (accept) => accept?.());
        session.on('window-change', (accept) => accept?.());
        session.on('shell', (_accept, reject) => reject());
        session.on('sftp', (_accept, reject) => reject());
        session.on('subsystem', (_accept, reject) => reject());
        session.on('x11', (_accept, reject) => reject());
        session.on('auth-agent', (_accept, reject) => reject());
        let command: RunningCommand | undefined;
        session.on('signal', (accept, _reject, sig) => {
          accept?.();
          command?.signal(`SIG${sig.name}` as NodeJS.Signals);
        });
        session.once('exec', (accept, _reject, execInfo) => {
          const channel = accept();
          options.stats.recordExec();
          const fault = options.controls.sshFault;
          const drop = () => (socket ? socket.destroy() : conn.end());
          const cut =
            fault?.kind === 'drop-mid-command' && fault.afterBytes !== undefined
              ? { bytes: fault.afterBytes, drop }
              : undefined;
          command = new RunningCommand(channel, execInfo.command, options, running, cut);
          void command.start().then((started) => {
            if (started && fault?.kind === 'drop-mid-command' && !cut) setTimeout(drop, DROP_AFTER_MS);
          });
        });
      });
    });
  });

  const tcp = net.createServer((socket) => {
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    sockets.set(key, socket);
    socket.on('close', () => sockets.delete(key));
    socket.on('error', () => {});
    // sshd writes each packet whole; ssh2 without its native binding writes it in three pieces (length, body, MAC),
    // and with Nagle every later piece waits for the client's delayed ACK: ~40 ms per packet that Spark does not cost.
    socket.setNoDelay(true);
    // A black hole: the connection is accepted and never answered (close() still destroys it).
    if (options.controls.sshFault?.kind === 'silent') return;
    ssh.injectSocket(socket);
  });

  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(options.port, '127.0.0.1', () => {
      tcp.off('error', reject);
      resolve();
    });
  });
  const address = tcp.address();
  if (address === null || typeof address === 'string') throw new Error('SSH server has no TCP address');

  return {
    port: address.port,
    async close() {
      const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
      await Promise.all([...running].map((c) => c.kill()));
      for (const conn of connections) conn.end();
      // Give the disconnect message a moment to reach the client, then cut whatever is left.
      await sleep(50);
      for (const socket of sockets.values()) socket.destroy();
      await closed;
      for (const dir of shimDirs.values()) rmSync(dir, { recursive: true, force: true });
    },
  };
}

function decideAuth(ctx: AuthContext, options: SparkSshOptions, allowed: ParsedKey[]): void {
  if (isAllowed(ctx, options, allowed)) {
    // Without a signature this only tells the client the key would do (PK_OK); it logs nobody in yet.
    ctx.accept();
    return;
  }
  // "none" is how clients ask which methods exist; it is not a failed login.
  if (ctx.method !== 'none') options.stats.recordSshAuthFailure();
  ctx.reject(['publickey']);
}

function isAllowed(ctx: AuthContext, options: SparkSshOptions, allowed: ParsedKey[]): boolean {
  if (options.controls.sshFault?.kind === 'auth-fail') return false;
  if (ctx.method !== 'publickey' || ctx.username !== options.user) return false;
  const match = allowed.find((key) => key.type === ctx.key.algo && constantTimeEqual(key.getPublicSSH(), ctx.key.data));
  if (!match) return false;
  if (ctx.signature === undefined || ctx.blob === undefined) return true;
  return match.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true;
}

function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function parseAuthorizedKeys(input: string | string[]): ParsedKey[] {
  const lines = (Array.isArray(input) ? input : [input]).flatMap((text) => text.split(/\r?\n/));
  const keys: ParsedKey[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    // authorized_keys may carry options before the key ("from=...,no-pty ssh-ed25519 AAAA..."); skip to the key.
    const start = line.search(/(?:^|\s)(?:ssh-|ecdsa-|sk-)/);
    const parsed = utils.parseKey(line.slice(Math.max(start, 0)).trim());
    if (parsed instanceof Error) throw new Error(`unusable authorized key: ${parsed.message}`);
    keys.push(parsed);
  }
  return keys;
}

/** One exec channel and the bash process behind it. */
class RunningCommand {
  private child: ChildProcess | undefined;
  /** Set once bash has exited and every holder of its stdout/stderr pipes is gone. */
  private finished = false;
  private channelClosed = false;
  private readonly channel: ServerChannel;
  private readonly command: string;
  private readonly options: SparkSshOptions;
  private readonly registry: Set<RunningCommand>;
  /** drop-mid-command with `afterBytes`: forward that much stdout, then cut the connection. */
  private readonly cut: { bytes: number; drop: () => void } | undefined;

  constructor(
    channel: ServerChannel,
    command: string,
    options: SparkSshOptions,
    registry: Set<RunningCommand>,
    cut?: { bytes: number; drop: () => void },
  ) {
    this.channel = channel;
    this.command = command;
    this.options = options;
    this.registry = registry;
    this.cut = cut;
    channel.on('error', () => {});
    channel.on('close', () => {
      this.channelClosed = true;
      void this.kill();
    });
  }

  /** Resolves false when the channel went away during the latency delay and nothing was started. */
  async start(): Promise<boolean> {
    const latency = this.options.controls.latencyMs;
    if (latency > 0) await sleep(latency);
    if (this.channelClosed) return false;

    const { home, user } = this.options;
    // Only what sshd would set: the server's own environment (NODE_OPTIONS, keys, tokens) stays out.
    const env: NodeJS.ProcessEnv = {
      HOME: home,
      USER: user,
      LOGNAME: user,
      SHELL: '/bin/bash',
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    };
    const fault = this.options.controls.sshFault;
    if (fault?.kind === 'missing-command') env.PATH = pathWithout(env.PATH!, fault.commands);
    // Its own process group, so a dropped client takes the whole pipeline down, not just bash.
    const child = spawn('/bin/bash', ['-c', this.command], { cwd: home, env, detached: true, stdio: 'pipe' });
    this.child = child;
    this.registry.add(this);

    const channel = this.channel;
    child.stdout.on('data', (chunk: Buffer) => this.options.stats.recordSshBytes(chunk.length));
    child.stderr.on('data', (chunk: Buffer) => this.options.stats.recordSshBytes(chunk.length));
    const cut = this.cut;
    if (cut) {
      let sent = 0;
      child.stdout.on('data', (chunk: Buffer) => {
        const room = cut.bytes - sent;
        if (room > 0) channel.write(chunk.subarray(0, room));
        sent += chunk.length;
        // A moment for the part already sent to reach the client, then the connection goes.
        if (sent >= cut.bytes && room > 0) setTimeout(cut.drop, 50);
      });
    } else child.stdout.pipe(channel, { end: false });
    child.stderr.pipe(channel.stderr, { end: false });
    child.stdin.on('error', () => {});
    channel.pipe(child.stdin);

    const finish = (): void => {
      this.finished = true;
      this.registry.delete(this);
    };
    child.on('error', (err) => {
      finish();
      if (this.channelClosed) return;
      channel.stderr.write(`bash: ${err.message}\n`);
      channel.exit(127);
      channel.end();
    });
    // 'close' rather than 'exit': the exit status goes out only after all output has been forwarded.
    child.on('close', (code, signal) => {
      finish();
      if (this.channelClosed) return;
      if (signal) channel.exit(signal.replace(/^SIG/, ''), false, '');
      else channel.exit(code ?? 255);
      channel.end();
    });
    return true;
  }

  /** Forwards a client-sent signal to the command's process group. */
  signal(sig: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined || this.finished) return;
    try {
      process.kill(-pid, sig);
    } catch {
      // The group is already gone.
    }
  }

  /**
   * Ends whatever of the command still holds the session (TERM, then KILL after a grace period).
   * A process that detached itself (`nohup cmd >log 2>&1 &`) no longer holds the pipes and survives,
   * as it would under sshd.
   */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || this.finished) return;
    const done = new Promise<void>((resolve) => child.once('close', () => resolve()));
    this.signal('SIGTERM');
    const escalate = setTimeout(() => this.signal('SIGKILL'), KILL_GRACE_MS);
    // A holder that left our process group cannot be reached; do not wait on it forever.
    await Promise.race([done, sleep(KILL_GRACE_MS * 2)]);
    clearTimeout(escalate);
  }
}

/** Folders of symlinks standing for PATH minus some tools, one per set of tools, removed on close. */
const shimDirs = new Map<string, string>();

/**
 * A PATH under which `commands` are not found: one folder of symlinks to every other executable of `path` (the first
 * of each name, as a PATH lookup would find it). Built once per set of commands.
 */
function pathWithout(path: string, commands: readonly string[]): string {
  const key = `${path}\0${[...commands].sort().join(',')}`;
  let dir = shimDirs.get(key);
  if (dir === undefined) {
    dir = mkdtempSync(join(tmpdir(), 'spark-path-'));
    const seen = new Set(commands);
    for (const folder of path.split(':')) {
      let names: string[];
      try {
        names = readdirSync(folder);
      } catch {
        continue;
      }
      for (const name of names) {
        if (seen.has(name)) continue;
        seen.add(name);
        symlinkSync(join(folder, name), join(dir, name));
      }
    }
    shimDirs.set(key, dir);
  }
  return dir;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
