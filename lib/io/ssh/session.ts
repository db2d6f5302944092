/**
 * The run's SSH session over a ready ssh2 client: `exec` bounded in time and in output, a lost connection told
 * apart from a failed command, a long-lived shell channel for many scripts (shell.ts), and `close` that sends the
 * disconnect and does not wait for the server's answer.
 */
import type { Client, ClientChannel } from 'ssh2';
import type { ExecOptions, RemoteShell, SshSession, SshTarget } from '../../core/ports.ts';
import { errorMessage, scrub, seconds } from './failures.ts';
import { Output, type SparkRemoteResult } from './output.ts';
import { ChannelShell, SHELL_COMMAND, type ShellChannel, type ShellLink } from './shell.ts';
import { type StdinWithExec, sendStdinWithExec, socketOf } from './ssh2-internals.ts';

/** After asking a channel to close (timeout, truncation), how long to wait for the server before giving up on it. */
const CHANNEL_CLOSE_GRACE_MS = 2_000;
/** How long `close()` waits for a clean disconnect before destroying the socket. */
const CLOSE_GRACE_MS = 2_000;

export type { SparkRemoteResult } from './output.ts';

/** The session `connectSpark` returns: an {@link SshSession} whose results carry the extra flags. */
export interface SparkSshSession extends SshSession {
  exec(command: string, options?: ExecOptions): Promise<SparkRemoteResult>;
  shell(): RemoteShell;
  /** Why the connection is no longer usable (closed by us, dropped, keepalive timeout); undefined while it is. */
  readonly closedReason: string | undefined;
}

/** What the session's commands share: whether the connection is gone, and who to tell when it goes. */
interface Connection {
  closedReason: string | undefined;
  readonly onLost: Set<(reason: string) => void>;
}

function lostResult(stderr: string): SparkRemoteResult {
  return { code: null, stdout: '', stderr, truncated: false, timedOut: false, connectionLost: true };
}

/** One command on its own channel, from `client.exec` until its result. */
class CommandRun {
  private readonly output: Output;
  private code: number | null = null;
  private signal: string | undefined;
  private timedOut = false;
  private lost: string | undefined;
  private channel: ClientChannel | undefined;
  private finished = false;
  private graceTimer: NodeJS.Timeout | undefined;
  private early: StdinWithExec | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly onLost = (reason: string) => {
    if (this.code === null && this.signal === undefined) this.lost = `${reason} (during the command)`;
    this.finish();
  };

  private readonly connection: Connection;
  private readonly options: ExecOptions;
  private readonly timeoutMs: number;
  private readonly resolve: (result: SparkRemoteResult) => void;

  constructor(
    connection: Connection,
    options: ExecOptions,
    timeoutMs: number,
    resolve: (result: SparkRemoteResult) => void,
  ) {
    this.connection = connection;
    this.options = options;
    this.timeoutMs = timeoutMs;
    this.resolve = resolve;
    this.output = new Output(options.maxBytes);
  }

  start(client: Client, command: string): void {
    this.connection.onLost.add(this.onLost);
    this.timer = setTimeout(() => this.onTimeout(), this.timeoutMs);
    try {
      // The script goes out right behind the exec request, not a round trip later (ssh2-internals.ts).
      if (this.options.stdin !== undefined)
        this.early = sendStdinWithExec(client, command, this.options.stdin, { end: true, onSent: this.sent });
      client.exec(command, (error, stream) => this.onChannel(error, stream));
    } catch (error) {
      this.lost = this.connection.closedReason ?? `connection not usable: ${scrub(errorMessage(error))}`;
      this.finish();
    }
  }

  private toldSent = false;
  /** options.onSent, once. */
  private readonly sent = (): void => {
    if (this.toldSent) return;
    this.toldSent = true;
    this.options.onSent?.();
  };

  private finish(extraStderr?: string): void {
    if (this.finished) return;
    this.finished = true;
    this.sent();
    this.early?.cancel();
    clearTimeout(this.timer);
    clearTimeout(this.graceTimer);
    this.connection.onLost.delete(this.onLost);
    let stderr = this.output.stderrText();
    if (this.timedOut) stderr += `\n[ssh: command timed out after ${seconds(this.timeoutMs)}; channel closed]`;
    if (this.lost !== undefined) stderr += `\n[ssh: ${this.lost}]`;
    if (extraStderr !== undefined) stderr += `${stderr === '' ? '' : '\n'}${extraStderr}`;
    const result: SparkRemoteResult = {
      code: this.timedOut || this.lost !== undefined ? null : this.code,
      stdout: this.output.stdoutText(),
      stderr,
      truncated: this.output.truncated,
      timedOut: this.timedOut,
      connectionLost: this.lost !== undefined,
    };
    if (this.signal !== undefined) result.signal = this.signal;
    this.resolve(result);
  }

  /** Asks the channel to go away; if the server never confirms (dead link), stops waiting after a grace period. */
  private closeChannel(): void {
    try {
      this.channel?.close();
    } catch {
      // Already closed.
    }
    this.graceTimer ??= setTimeout(() => this.finish(), CHANNEL_CLOSE_GRACE_MS);
  }

  private onTimeout(): void {
    this.timedOut = true;
    try {
      // Most sshds ignore signal requests, so the channel close below is what actually ends it for us.
      this.channel?.signal('KILL');
    } catch {
      // Channel already gone.
    }
    this.closeChannel();
    if (this.channel === undefined) this.finish();
  }

  private onChannel(error: Error | undefined, stream: ClientChannel): void {
    if (error) {
      const { closedReason } = this.connection;
      if (closedReason !== undefined) this.lost = `${closedReason} (before the command started)`;
      this.finish(`ssh: could not start the command: ${scrub(error.message)}`);
      return;
    }
    this.channel = stream;
    if (this.finished) {
      // Timed out while the channel was opening.
      stream.close();
      return;
    }
    this.listen(stream);
    // Always send EOF, so a command that reads stdin does not wait forever.
    if (this.early?.sent) return;
    if (this.options.stdin !== undefined) stream.end(this.options.stdin);
    else stream.end();
    this.sent();
  }

  private listen(stream: ClientChannel): void {
    stream.on('data', (chunk: Buffer) => {
      if (this.output.stdout(chunk)) this.closeChannel();
    });
    stream.stderr.on('data', (chunk: Buffer) => this.output.stderr(chunk));
    stream.on('exit', (exitCode: number | null, exitSignal?: string) => {
      this.code = typeof exitCode === 'number' ? exitCode : null;
      if (typeof exitSignal === 'string') this.signal = exitSignal;
    });
    stream.on('close', () => {
      // ssh2 emits the client's 'close' before closing its channels, but a dying socket can also close the
      // channel first; wait a tick so a lost connection is reported as such.
      setImmediate(() => {
        const { closedReason } = this.connection;
        if (!this.finished && closedReason !== undefined && this.code === null && this.signal === undefined) {
          this.lost = `${closedReason} (during the command)`;
        }
        this.finish();
      });
    });
    stream.on('error', () => {
      // Channel errors end in 'close'; nothing to add.
    });
  }
}

/** The connection as the shell (shell.ts) sees it: how to open its channel, and whether the connection is up. */
function shellLink(client: Client, connection: Connection): ShellLink {
  return {
    open(input, done) {
      // The first script goes out right behind the exec request, stdin left open for the next (ssh2-internals.ts).
      const early = sendStdinWithExec(client, SHELL_COMMAND, input, { end: false });
      client.exec(SHELL_COMMAND, (error, stream) => {
        early.cancel();
        if (error) return done(error);
        if (!early.sent) stream.write(input);
        done(undefined, stream as unknown as ShellChannel);
      });
    },
    closedReason: () => connection.closedReason,
    onLost(listener) {
      connection.onLost.add(listener);
      return () => connection.onLost.delete(listener);
    },
  };
}

/** Wraps a ready ssh2 client as the run's session. */
export function createSession(
  client: Client,
  target: SshTarget,
  hostKeyFingerprint: string,
  defaultExecTimeoutMs: number,
): SparkSshSession {
  const connection: Connection = { closedReason: undefined, onLost: new Set() };
  let lastError: string | undefined;
  let closePromise: Promise<void> | undefined;
  let socketClosed = false;
  const lose = (reason: string) => {
    for (const notify of [...connection.onLost]) notify(reason);
  };

  client.on('error', (error: Error) => {
    lastError = scrub(error.message);
  });
  client.on('close', () => {
    socketClosed = true;
    connection.closedReason ??= lastError ? `connection lost: ${lastError}` : 'connection closed by Spark';
    lose(connection.closedReason);
  });

  const exec = (command: string, options: ExecOptions = {}): Promise<SparkRemoteResult> => {
    if (connection.closedReason !== undefined) {
      options.onSent?.();
      return Promise.resolve(lostResult(`ssh: command not sent: ${connection.closedReason}`));
    }
    const timeoutMs = options.timeoutMs ?? defaultExecTimeoutMs;
    return new Promise((resolve) => new CommandRun(connection, options, timeoutMs, resolve).start(client, command));
  };

  const close = (): Promise<void> => {
    closePromise ??= new Promise<void>((resolve) => {
      connection.closedReason ??= 'the session was closed by the runbook';
      lose(connection.closedReason);
      if (socketClosed) {
        resolve();
        return;
      }
      const force = setTimeout(() => {
        client.destroy();
        resolve();
      }, CLOSE_GRACE_MS);
      force.unref();
      client.once('close', () => {
        clearTimeout(force);
        resolve();
      });
      client.end();
      // The DISCONNECT and our FIN are out once the socket's writing side has finished: the run need not wait the
      // round trip for the server's own close (the socket closes when it comes, or at the grace, and holds nothing).
      const sock = socketOf(client);
      if (sock && !sock.writableFinished) {
        sock.once('finish', () => {
          sock.unref();
          resolve();
        });
      }
    });
    return closePromise;
  };

  return {
    target,
    hostKeyFingerprint,
    exec,
    shell: () => new ChannelShell(shellLink(client, connection), defaultExecTimeoutMs),
    close,
    get closedReason() {
      return connection.closedReason;
    },
  };
}
