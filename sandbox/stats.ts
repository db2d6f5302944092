/** Counters the sandbox keeps about what clients asked of it; `npm run sandbox -- stats` prints them. */
export interface HttpEvent {
  api: string;
  method: string;
  role: string;
  path: string;
  /** The query string as received (`?select=...&id=in.(...)`): what a client's filters became on the wire. */
  query?: string;
  /** Who asked: the `x-client-info` header (supabase-js sends one), else the user agent (curl, python-requests). */
  client?: string;
  status: number;
  startedAt: number;
  endedAt: number;
  bytesOut: number;
}

export interface StatsSnapshot {
  http: Record<string, Record<string, Record<string, number>>>;
  httpTotal: number;
  httpWrites: number;
  httpBytesOut: number;
  /** TCP connections each API accepted (a client that keeps its connections opens few). */
  httpConnections: Record<string, number>;
  ssh: { connections: number; authFailures: number; execChannels: number; bytesSent: number };
  events: HttpEvent[];
}

const MAX_EVENTS = 2_000;

/** Mutable counters shared by the sandbox's servers. One instance per sandbox. */
export class SandboxStats {
  private s: StatsSnapshot = SandboxStats.empty();

  static empty(): StatsSnapshot {
    return {
      http: {},
      httpTotal: 0,
      httpWrites: 0,
      httpBytesOut: 0,
      httpConnections: {},
      ssh: { connections: 0, authFailures: 0, execChannels: 0, bytesSent: 0 },
      events: [],
    };
  }

  recordHttp(event: HttpEvent): void {
    const byMethod = this.s.http[event.api] ?? {};
    this.s.http[event.api] = byMethod;
    const byRole = byMethod[event.method] ?? {};
    byMethod[event.method] = byRole;
    byRole[event.role] = (byRole[event.role] ?? 0) + 1;
    this.s.httpTotal += 1;
    if (!['GET', 'HEAD', 'OPTIONS'].includes(event.method)) this.s.httpWrites += 1;
    this.s.httpBytesOut += event.bytesOut;
    this.s.events.push(event);
    if (this.s.events.length > MAX_EVENTS) this.s.events.splice(0, this.s.events.length - MAX_EVENTS);
  }

  recordHttpConnection(api: string): void {
    this.s.httpConnections[api] = (this.s.httpConnections[api] ?? 0) + 1;
  }

  recordSshConnection(): void {
    this.s.ssh.connections += 1;
  }

  recordSshAuthFailure(): void {
    this.s.ssh.authFailures += 1;
  }

  recordExec(): void {
    this.s.ssh.execChannels += 1;
  }

  recordSshBytes(n: number): void {
    this.s.ssh.bytesSent += n;
  }

  snapshot(): StatsSnapshot {
    return structuredClone(this.s);
  }

  reset(): void {
    this.s = SandboxStats.empty();
  }
}

/** Switches read on every request, so a running sandbox can be slowed down or broken on purpose. */
export interface SandboxControls {
  latencyMs: number;
  /** HTTP fault for one API (or all when `api` is unset). */
  httpFault?: HttpFault;
  /** SSH fault, applied to new connections or exec channels. */
  sshFault?: SshFault;
}

export type HttpFault = {
  api?: string;
  /** Only requests with this method (e.g. PATCH or POST: the writes). */
  method?: string;
  /** Only requests whose path contains this (e.g. `/rpc/`). */
  path?: string;
  /**
   * Only requests whose client (the `x-client-info` header, else the user agent: what `stats` records) starts with
   * this, e.g. `supabase-js`: the runbook's own reads, not the probe's request from Spark (curl) or the worker's.
   */
  client?: string;
  /** Let the first N matching requests through untouched (e.g. a probe call before the real write). */
  skip?: number;
  /** Only the next N matching requests; after that the fault is spent (reads that retry then get through). */
  times?: number;
} & (
  | { kind: 'status'; status: number }
  /**
   * The gateway in front of the API answers instead of it, as Supabase's does: Cloudflare's 520/522/524 with its
   * genuine HTML error page (test/fixtures/gateway), Supabase's 540 (project paused) or 544 (gateway timeout).
   */
  | { kind: 'gateway'; status: 520 | 522 | 524 | 540 | 544 }
  | { kind: 'slow'; delayMs: number }
  | { kind: 'malformed-json' }
  | { kind: 'reset' }
  /** The request is carried out (a write commits), then the connection is cut before the answer: a lost reply. */
  | { kind: 'reset-after' }
  /** Every connection of the API's pool held: requests wait for one, then 504 PGRST003. A state, not per request. */
  | { kind: 'pool-exhausted' }
  /** A body over `bytes`: the gateway's 413 page. */
  | { kind: 'body-too-large'; bytes: number }
  /** A URL (path and query) over `bytes`: the gateway's 414 page. */
  | { kind: 'url-too-long'; bytes: number }
);

export type SshFault =
  | { kind: 'auth-fail' }
  | { kind: 'slow-handshake'; delayMs: number }
  /** Cuts the connection 100 ms into a command or, with `afterBytes`, once that much of its stdout was sent. */
  | { kind: 'drop-mid-command'; afterBytes?: number }
  /** Accepts the TCP connection and never speaks SSH: a black hole (a firewall that drops, a hung sshd). */
  | { kind: 'silent' }
  /** Commands run with a PATH that lacks these tools, as on a minimal host (no procps, no curl). */
  | { kind: 'missing-command'; commands: string[] };
