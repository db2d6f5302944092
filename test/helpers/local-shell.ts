/**
 * Channels for lib/io/ssh/shell.ts without SSH: a fake one the test drives by hand, and one backed by `bash -s` on this
 * machine (the channel's close kills it, as the sandbox's sshd does).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { ShellChannel, ShellLink } from '../../lib/io/ssh/shell.ts';

/** A channel whose output the test emits; it records what was written and how it was ended. */
export class FakeChannel extends EventEmitter implements ShellChannel {
  readonly written: string[] = [];
  readonly stderr = new EventEmitter();
  ended = false;
  closed = false;
  signals: string[] = [];

  write(data: string): boolean {
    this.written.push(data);
    return true;
  }
  end(): void {
    this.ended = true;
  }
  close(): void {
    this.closed = true;
  }
  signal(name: string): void {
    this.signals.push(name);
  }
  /** The tokens of the runs written so far, in order. */
  tokens(): string[] {
    return this.written.flatMap((w) => [...w.matchAll(/'(@@hd-shell-[0-9a-f]+@@)'/g)].map((m) => m[1]));
  }
  /** Answers the last run written: `body`, then its token line with `code`. */
  answer(body: string, code = 0): void {
    this.emit('data', Buffer.from(`${body}\n${this.tokens().at(-1)} ${code}\n`));
  }
}

/** A link whose channels are {@link FakeChannel}s, opened at once (or failing with `failOpen`). */
export function fakeLink(): ShellLink & {
  channels: FakeChannel[];
  failOpen?: Error;
  lost?: string;
  lose(reason: string): void;
} {
  const listeners = new Set<(reason: string) => void>();
  const link = {
    channels: [] as FakeChannel[],
    failOpen: undefined as Error | undefined,
    lost: undefined as string | undefined,
    open(input: string, done: (error: Error | undefined, channel?: ShellChannel) => void) {
      if (link.failOpen) return queueMicrotask(() => done(link.failOpen));
      const channel = new FakeChannel();
      channel.write(input);
      link.channels.push(channel);
      queueMicrotask(() => done(undefined, channel));
    },
    closedReason: () => link.lost,
    onLost(listener: (reason: string) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    lose(reason: string) {
      link.lost = reason;
      for (const l of [...listeners]) l(reason);
    },
  };
  return link;
}

/** A link whose channels are `bash -s` children here; `children` are every one started (check they are gone). */
export function localBashLink(): ShellLink & { children: ChildProcess[] } {
  const children: ChildProcess[] = [];
  return {
    children,
    open(input, done) {
      const child = spawn('bash', ['-s'], { stdio: 'pipe', detached: true });
      children.push(child);
      const channel = Object.assign(new EventEmitter(), {
        stderr: child.stderr,
        write: (data: string) => child.stdin.write(data),
        end: () => child.stdin.end(),
        close: () => {
          try {
            process.kill(-child.pid!, 'SIGKILL');
          } catch {
            // Gone already.
          }
        },
        signal: () => {},
      });
      child.stdin.on('error', () => {});
      child.stdout.on('data', (chunk: Buffer) => channel.emit('data', chunk));
      child.on('close', () => channel.emit('close'));
      child.stdin.write(input);
      done(undefined, channel);
    },
    closedReason: () => undefined,
    onLost: () => () => {},
  };
}
