/**
 * Spark's TCP connection, opened as soon as the run knows where Spark is, before the SSH library has loaded and the
 * key is parsed: the TCP handshake (one round trip, more over a Tailscale relay) and sshd's greeting overlap the
 * work of getting ready, and the SSH connection then starts on a socket that is already open.
 *
 * An early socket is only a head start, never a second path: the SSH connect takes it when it is still usable
 * (connecting, or connected with nothing gone wrong); one that failed, or that the server closed meanwhile, is
 * destroyed and the connect dials again by itself, so every failure is reported as it always was. A socket nobody
 * takes never holds the process open and is destroyed after `unclaimedMs`.
 */
import net from 'node:net';

/** How long an early socket waits to be taken before it is closed. */
export const UNCLAIMED_MS = 30_000;

/** The run's early socket (one at a time: a run connects to one Spark). */
export interface EarlyDial {
  /** Opens TCP to host:port now, replacing an earlier socket to another address. Never throws. */
  open(host: string, port: number): void;
  /** The socket to host:port when it is still usable; the caller owns it from then on. */
  take(host: string, port: number): net.Socket | undefined;
  /** Destroys a socket nobody took. */
  release(): void;
}

interface Held {
  host: string;
  port: number;
  socket: net.Socket;
  broken: boolean;
  /** What the server sent before the socket was taken (its version line, its KEXINIT), handed on with it. */
  received: Buffer[];
  timer: NodeJS.Timeout;
  forget: () => void;
}

/** More than a greeting before the client has said a word: not an SSH server worth handing on. */
const MAX_EARLY_BYTES = 64 * 1024;

export function earlyDial(
  connect: (host: string, port: number) => net.Socket = (host, port) => net.connect({ host, port }),
  unclaimedMs = UNCLAIMED_MS,
): EarlyDial {
  let held: Held | undefined;
  const drop = () => {
    if (!held) return;
    held.forget();
    clearTimeout(held.timer);
    held.socket.destroy();
    held = undefined;
  };
  return {
    open(host, port) {
      if (held && held.host === host && held.port === port && !held.broken) return;
      drop();
      let socket: net.Socket;
      try {
        socket = connect(host, port);
      } catch {
        return; // the connect proper will try, and report, by itself
      }
      // ssh2 writes each packet in pieces (length, body, MAC); without this the kernel holds the later pieces until
      // the peer acknowledges the first, a delayed ACK (40 ms) or a round trip per packet.
      socket.setNoDelay(true);
      const entry: Held = {
        host,
        port,
        socket,
        broken: false,
        received: [],
        timer: setTimeout(drop, unclaimedMs),
        forget: () => {},
      };
      let bytes = 0;
      const broke = () => {
        entry.broken = true;
      };
      // Read as it arrives (kept for the SSH client), so that the server closing the connection is seen at once.
      const keep = (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > MAX_EARLY_BYTES) {
          broke();
          socket.destroy();
        } else entry.received.push(chunk);
      };
      entry.forget = () => {
        socket.off('data', keep);
        socket.off('error', broke);
        socket.off('end', broke);
        socket.off('close', broke);
      };
      // An error with no listener would end the process; this one only marks the socket as not worth handing on.
      socket.on('error', broke);
      socket.on('end', broke);
      socket.on('close', broke);
      socket.on('data', keep);
      entry.timer.unref();
      socket.unref();
      held = entry;
    },
    take(host, port) {
      if (!held || held.host !== host || held.port !== port) return undefined;
      const { socket, broken, received } = held;
      if (broken || socket.destroyed) {
        drop();
        return undefined;
      }
      held.forget();
      clearTimeout(held.timer);
      held = undefined;
      // Paused with what already came back in front: the SSH client reads it first when it starts reading.
      socket.pause();
      if (received.length) socket.unshift(Buffer.concat(received));
      socket.ref();
      return socket;
    },
    release: drop,
  };
}
