/**
 * A TCP proxy on 127.0.0.1 that plays a network link with a round-trip time: every byte is held for half the RTT
 * in each direction, and nothing passes before the TCP handshake would have finished. Unlike the sandbox's
 * `--latency` (one delay per HTTP response and per SSH exec), this charges every protocol round trip: TCP connect,
 * the SSH key exchange, authentication, channel open. Bandwidth and loss are not modelled.
 *
 * Timeline of one connection accepted at t0, with RTT R (what a real link would give):
 *   client -> server: a chunk the client writes at t arrives at max(t, t0 + R) + R/2 (connect() returns at t0 + R)
 *   server -> client: a chunk the server writes at t arrives at max(t, t0 + 1.5 R) + R/2 (accept() returns at
 *   t0 + 1.5 R, when the client's ACK arrives), so a server that speaks first (SSH) is heard at t0 + 2 R.
 */
import net from 'node:net';

export interface LatencyProxy {
  port: number;
  close(): Promise<void>;
}

/**
 * What passed through a proxy, when asked for (the watch row reads a refresh's wall, round trips and the server's
 * own time from it): each connection's accept, and each chunk with the time the proxy read it from one side and the
 * time it passed it on to the other after the link's delay. Times are epoch ms (`performance.timeOrigin + now()`),
 * comparable with the sandbox's own `Date.now()` records.
 *
 * For `up` (client to server) `readAt` is when the client wrote it and `passedAt` when the server got it; for `down`
 * (server to client) `readAt` is when the server wrote it and `passedAt` when the client got it.
 */
export interface ProxyTrace {
  connections: Array<{ conn: number; openedAt: number }>;
  chunks: ProxyChunk[];
}

export interface ProxyChunk {
  conn: number;
  dir: 'up' | 'down';
  bytes: number;
  readAt: number;
  /** Undefined while the chunk is still held by the link. */
  passedAt?: number;
}

const epochMs = () => performance.timeOrigin + performance.now();

/** A FIFO of chunks released at their due time; due times never decrease, so order is kept. */
class DelayLine {
  private readonly items: Array<{ at: number; data: Buffer | null; passed?: (at: number) => void }> = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly out: net.Socket;

  constructor(out: net.Socket) {
    this.out = out;
  }

  /** `null` ends the stream once everything before it has gone out. */
  push(at: number, data: Buffer | null, passed?: (at: number) => void): void {
    const last = this.items.at(-1)?.at ?? 0;
    this.items.push({ at: Math.max(at, last), data, passed });
    if (!this.timer) this.schedule();
  }

  private schedule(): void {
    const head = this.items[0];
    if (!head) return;
    this.timer = setTimeout(() => this.flush(), Math.max(0, head.at - performance.now()));
  }

  private flush(): void {
    this.timer = undefined;
    const now = performance.now();
    while (this.items.length && this.items[0].at <= now + 0.5) {
      const { data, passed } = this.items.shift()!;
      if (this.out.destroyed) {
        this.items.length = 0;
        return;
      }
      if (data === null) this.out.end();
      else this.out.write(data);
      passed?.(epochMs());
    }
    this.schedule();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.items.length = 0;
  }
}

/** Starts a proxy to 127.0.0.1:`targetPort` with the given round-trip time; with `trace`, records into it. */
export async function startLatencyProxy(opts: {
  targetPort: number;
  rttMs: number;
  trace?: ProxyTrace;
}): Promise<LatencyProxy> {
  const { targetPort, rttMs, trace } = opts;
  const half = rttMs / 2;
  const sockets = new Set<net.Socket>();
  let conns = 0;
  // Half-open on both sides: a client's FIN must not cut the answers still on their way to it.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const t0 = performance.now();
    const conn = ++conns;
    trace?.connections.push({ conn, openedAt: epochMs() });
    // A chunk's record, and the callback that stamps when it was passed on (none without a trace).
    const noted = (dir: ProxyChunk['dir'], d: Buffer) => {
      if (!trace) return undefined;
      const chunk: ProxyChunk = { conn, dir, bytes: d.length, readAt: epochMs() };
      trace.chunks.push(chunk);
      return (at: number) => {
        chunk.passedAt = at;
      };
    };
    const upstream = net.connect({ port: targetPort, host: '127.0.0.1', allowHalfOpen: true });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => sockets.delete(s));
    }
    const toServer = new DelayLine(upstream);
    const toClient = new DelayLine(client);
    client.on('data', (d) => toServer.push(Math.max(performance.now(), t0 + rttMs) + half, d, noted('up', d)));
    client.on('end', () => toServer.push(Math.max(performance.now(), t0 + rttMs) + half, null));
    upstream.on('data', (d) =>
      toClient.push(Math.max(performance.now(), t0 + 1.5 * rttMs) + half, d, noted('down', d)),
    );
    upstream.on('end', () => toClient.push(Math.max(performance.now(), t0 + 1.5 * rttMs) + half, null));
    const teardown = () => {
      toServer.clear();
      toClient.clear();
      client.destroy();
      upstream.destroy();
    };
    client.on('error', teardown);
    upstream.on('error', teardown);
    // A side that closed completely: let what is in flight arrive (half an RTT), then close the other side.
    client.on('close', () => setTimeout(() => upstream.destroy(), rttMs).unref());
    upstream.on('close', () => setTimeout(() => client.destroy(), rttMs).unref());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
