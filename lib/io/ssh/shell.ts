/**
 * A {@link RemoteShell} over one long-lived `bash -s` channel. Each run writes `( script ) </dev/null` and a line
 * with a random token and the subshell's exit code; bash reads a script from a pipe without reading ahead, so each
 * complete command runs as it arrives, and the run's answer is what stdout carries before its token. One round trip
 * per run once the channel is open. Whatever goes wrong (timeout, too much output, the channel or the connection
 * closing) closes the channel, so no late output can be read as a later run's; the next run opens a new channel.
 */
import { randomBytes } from 'node:crypto';
import type { ExecOptions, RemoteShell } from '../../core/ports.ts';
import { errorMessage, scrub, seconds } from './failures.ts';
import { Output, type SparkRemoteResult } from './output.ts';

/**
 * The remote command of a shell's channel: it reads the runs' scripts from its stdin. Not the probe's `bash -s`:
 * a script sent right behind its exec request is paired with the request by its command (ssh2-internals.ts), so a
 * shell and a probe opened at the same moment can never take each other's script.
 */
export const SHELL_COMMAND = 'exec bash -s';
/** Room for the token line after the script's own `maxBytes`. */
const TOKEN_LINE_BYTES = 64;

/** What the shell needs of a channel; ssh2's ClientChannel is one. */
export interface ShellChannel {
  write(data: string): unknown;
  end(): unknown;
  close(): unknown;
  signal(name: string): unknown;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'close' | 'error', listener: () => void): unknown;
  stderr: { on(event: 'data', listener: (chunk: Buffer) => void): unknown };
}

/** The connection under the shell: opening a channel (its first input sent with it) and whether it is still up. */
export interface ShellLink {
  /** Starts {@link SHELL_COMMAND} on a new channel, `input` its first stdin (no EOF). May throw when not connected. */
  open(input: string, done: (error: Error | undefined, channel?: ShellChannel) => void): void;
  /** Why the connection is gone; undefined while it is usable. */
  closedReason(): string | undefined;
  /** Calls `listener` when the connection goes; returns the unsubscribe. */
  onLost(listener: (reason: string) => void): () => void;
}

/** What a run writes: the script in its own subshell, then the token line with the subshell's exit code. */
export function wrapScript(script: string, token: string): string {
  return `(\n${script}\n) </dev/null; printf '\\n%s %s\\n' '${token}' "$?"\n`;
}

/** One channel: open, or still opening (`channel` undefined). */
interface Slot {
  channel: ShellChannel | undefined;
}

/** One run, from its input written until its token (or its end otherwise). */
class ShellRun {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private readonly stderr = new Output(undefined);
  private readonly mark: Buffer;
  private readonly limit: number;
  private readonly maxBytes: number | undefined;
  private readonly resolve: (result: SparkRemoteResult) => void;
  done = false;

  constructor(token: string, maxBytes: number | undefined, resolve: (result: SparkRemoteResult) => void) {
    this.maxBytes = maxBytes;
    this.resolve = resolve;
    this.mark = Buffer.from(`\n${token} `);
    this.limit = (maxBytes ?? Number.POSITIVE_INFINITY) + TOKEN_LINE_BYTES;
  }

  /** Takes a stdout chunk: 'done' at the token line, 'over' past the byte bound, else 'more'. */
  stdout(chunk: Buffer): 'done' | 'over' | 'more' {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    const all = Buffer.concat(this.chunks);
    const at = all.indexOf(this.mark);
    const nl = at < 0 ? -1 : all.indexOf(0x0a, at + this.mark.length);
    if (nl >= 0) {
      const code = Number(all.subarray(at + this.mark.length, nl).toString('latin1'));
      this.finish({ body: all.subarray(0, at), code: Number.isInteger(code) ? code : null });
      return 'done';
    }
    return this.bytes > this.limit ? 'over' : 'more';
  }

  stderrChunk(chunk: Buffer): void {
    this.stderr.stderr(chunk);
  }

  /** Resolves the run (once): with its body and code at the token, otherwise with what came and why it ended. */
  finish(o: { body?: Buffer; code?: number | null; timedOut?: boolean; lost?: string; note?: string }): void {
    if (this.done) return;
    this.done = true;
    const out = new Output(this.maxBytes);
    out.stdout(o.body ?? Buffer.concat(this.chunks));
    let stderr = this.stderr.stderrText();
    if (o.note !== undefined) stderr += `${stderr === '' ? '' : '\n'}${o.note}`;
    if (o.lost !== undefined) stderr += `\n[ssh: ${o.lost}]`;
    this.resolve({
      code: o.body !== undefined && !out.truncated ? (o.code ?? null) : null,
      stdout: out.stdoutText(),
      stderr,
      truncated: out.truncated,
      timedOut: o.timedOut === true,
      connectionLost: o.lost !== undefined,
    });
  }
}

/** Ends a channel and what runs on it (most sshds ignore the signal; the close is what ends it). */
function kill(channel: ShellChannel | undefined, signal: boolean): void {
  for (const step of [() => signal && channel?.signal('KILL'), () => channel?.end(), () => channel?.close()]) {
    try {
      step();
    } catch {
      // Already gone.
    }
  }
}

/** The shell over `link`; `defaultTimeoutMs` when a run names none. */
export class ChannelShell implements RemoteShell {
  private slot: Slot | undefined;
  private active: ShellRun | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private readonly link: ShellLink;
  private readonly defaultTimeoutMs: number;

  constructor(link: ShellLink, defaultTimeoutMs: number) {
    this.link = link;
    this.defaultTimeoutMs = defaultTimeoutMs;
  }

  run(script: string, options: Omit<ExecOptions, 'stdin'> = {}): Promise<SparkRemoteResult> {
    const next = this.tail.then(() => this.start(script, options));
    this.tail = next;
    return next;
  }

  close(): void {
    const run = this.active;
    this.drop(run !== undefined);
    run?.finish({ lost: 'the shell was closed by the runbook (during the command)' });
  }

  /** Forgets the current channel and ends it; its late events are ignored from now on. */
  private drop(signal: boolean): void {
    const slot = this.slot;
    this.slot = undefined;
    kill(slot?.channel, signal);
  }

  private start(script: string, options: Omit<ExecOptions, 'stdin'>): Promise<SparkRemoteResult> {
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    const token = `@@hd-shell-${randomBytes(8).toString('hex')}@@`;
    const input = wrapScript(script, token);
    return new Promise((resolve) => {
      const reason = this.link.closedReason();
      if (reason !== undefined) {
        new ShellRun(token, 0, resolve).finish({ lost: `command not sent: ${reason}` });
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      let unsubscribe = () => {};
      const run = new ShellRun(token, options.maxBytes, (result) => {
        clearTimeout(timer);
        unsubscribe();
        if (this.active === run) this.active = undefined;
        resolve(result);
      });
      unsubscribe = this.link.onLost((why) => {
        this.drop(false);
        run.finish({ lost: `${why} (during the command)` });
      });
      timer = setTimeout(() => {
        this.drop(true);
        run.finish({ timedOut: true, note: `[ssh: command timed out after ${seconds(timeoutMs)}; channel closed]` });
      }, timeoutMs);
      this.active = run;
      const open = this.slot?.channel;
      if (open) open.write(input);
      else this.open(input, run);
    });
  }

  private open(input: string, run: ShellRun): void {
    this.drop(false);
    const slot: Slot = { channel: undefined };
    this.slot = slot;
    const failed = (error: unknown) => {
      if (this.slot === slot) this.slot = undefined;
      const reason = this.link.closedReason();
      run.finish({
        note: `ssh: could not start the command: ${scrub(errorMessage(error))}`,
        ...(reason === undefined ? {} : { lost: `${reason} (before the command started)` }),
      });
    };
    try {
      this.link.open(input, (error, channel) => {
        if (error || !channel) return failed(error ?? new Error('no channel'));
        slot.channel = channel;
        // Dropped while opening (timed out, closed): nothing may run on it.
        if (this.slot !== slot) return kill(channel, false);
        this.listen(slot, channel);
      });
    } catch (error) {
      failed(error);
    }
  }

  private listen(slot: Slot, channel: ShellChannel): void {
    const current = () => (this.slot === slot ? this.active : undefined);
    channel.on('data', (chunk: Buffer) => {
      // Output with no run waiting for it (none is expected) belongs to no run: dropped.
      if (current()?.stdout(chunk) === 'over') {
        const run = current();
        this.drop(true);
        run?.finish({});
      }
    });
    channel.stderr.on('data', (chunk: Buffer) => current()?.stderrChunk(chunk));
    channel.on('error', () => {
      // Channel errors end in 'close'.
    });
    channel.on('close', () => {
      // A dying socket may close the channel before the client's own 'close': wait a tick so it reads as lost.
      setImmediate(() => {
        const run = current();
        if (this.slot === slot) this.slot = undefined;
        const reason = this.link.closedReason();
        run?.finish(reason === undefined ? {} : { lost: `${reason} (during the command)` });
      });
    });
  }
}
