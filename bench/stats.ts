/**
 * Pure helpers of the benchmark: summaries of repeated runs, and what one run cost according to the sandbox's
 * stats (requests by who made them, sequential rounds, SSH connections and channels, bytes).
 */
import type { HttpEvent, StatsSnapshot } from '../sandbox/stats.ts';

/** Median, min and max of several runs. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function summarize(values: readonly number[]): Summary {
  if (!values.length) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], n: s.length };
}

/**
 * Who made a request, from the client the sandbox recorded (`x-client-info`, else `user-agent`):
 * the runbook (supabase-js on the laptop), Spark (curl: the probe's reach check runs there), the old procedure's
 * Python snippet (also on Spark), or the worker's own polling (Node's fetch), which a measurement leaves out.
 */
export type Origin = 'laptop' | 'spark' | 'worker' | 'other';

export function originOf(client: string | undefined): Origin {
  const c = (client ?? '').toLowerCase();
  if (c.startsWith('supabase-js') || c.startsWith('postgrest-js')) return 'laptop';
  if (c.startsWith('curl/') || c.startsWith('python-requests/') || c.startsWith('python-urllib/')) return 'spark';
  if (c === 'node' || c === 'undici') return 'worker';
  return 'other';
}

/**
 * Sequential rounds among HTTP requests: requests whose [startedAt, endedAt] intervals overlap (or touch) were in
 * flight together and make one round; the rounds are the clusters that do not overlap.
 */
export function httpRounds(events: readonly Pick<HttpEvent, 'startedAt' | 'endedAt'>[]): number {
  const sorted = [...events].sort((a, b) => a.startedAt - b.startedAt);
  let rounds = 0;
  let end = Number.NEGATIVE_INFINITY;
  for (const e of sorted) {
    if (e.startedAt > end) rounds += 1;
    end = Math.max(end, e.endedAt);
  }
  return rounds;
}

/** What one measured run cost, from the stats taken right after it (reset right before it). */
export interface RunCost {
  /** Requests the laptop made (the runbook's supabase-js), to any API of the sandbox. */
  laptopRequests: number;
  /** Requests made from Spark inside an SSH command (the probe's reach check, the old snippet). */
  sparkRequests: number;
  /** The worker's polling during the run: excluded from everything else, shown to prove it was quiet. */
  workerRequests: number;
  /** Laptop and Spark requests together: what the diagnosis caused. */
  requests: number;
  writes: number;
  /**
   * Sequential rounds: clusters of overlapping laptop requests, plus one per SSH exec channel. Requests made from
   * Spark happen inside an exec channel and are not rounds of their own (they lengthen that round).
   */
  rounds: number;
  sshConnections: number;
  execChannels: number;
  /** HTTP response bodies of the caused requests plus everything the SSH commands printed. */
  bytesMoved: number;
  httpBytes: number;
  sshBytes: number;
}

export function runCost(stats: StatsSnapshot): RunCost {
  const caused = stats.events.filter((e) => originOf(e.client) !== 'worker');
  const laptop = caused.filter((e) => originOf(e.client) === 'laptop');
  const httpBytes = caused.reduce((n, e) => n + e.bytesOut, 0);
  return {
    laptopRequests: laptop.length,
    sparkRequests: caused.filter((e) => originOf(e.client) === 'spark').length,
    workerRequests: stats.events.length - caused.length,
    requests: caused.length,
    writes: caused.filter((e) => !['GET', 'HEAD', 'OPTIONS'].includes(e.method)).length,
    rounds: httpRounds(laptop) + stats.ssh.execChannels,
    sshConnections: stats.ssh.connections,
    execChannels: stats.ssh.execChannels,
    bytesMoved: httpBytes + stats.ssh.bytesSent,
    httpBytes,
    sshBytes: stats.ssh.bytesSent,
  };
}

/** The same cost in every run, or the spread when runs differed (a number field of RunCost). */
export function costSummary(costs: readonly RunCost[], key: keyof RunCost): Summary {
  return summarize(costs.map((c) => c[key]));
}

/** One read of the queue as the sandbox served it: the query string and the server's time for it. */
export interface QueueRead {
  method: string;
  query: string;
  status: number;
  serverMs: number;
}

/**
 * The reads of `hd_ingestion_jobs` a run made (GET and HEAD from the laptop or from Spark; the worker's polling
 * left out), in the order they started, each with its server time (`endedAt − startedAt` as the sandbox recorded).
 */
export function queueReads(events: readonly HttpEvent[]): QueueRead[] {
  return events
    .filter(
      (e) =>
        (e.method === 'GET' || e.method === 'HEAD') &&
        /\/hd_ingestion_jobs$/.test(e.path) &&
        originOf(e.client) !== 'worker',
    )
    .sort((a, b) => a.startedAt - b.startedAt)
    .map((e) => ({ method: e.method, query: e.query ?? '', status: e.status, serverMs: e.endedAt - e.startedAt }));
}

/** How many reads, the slowest, and those over `limitMs` (slowest first). */
export function readTimes(
  reads: readonly QueueRead[],
  limitMs: number,
): { n: number; maxMs: number; over: QueueRead[] } {
  return {
    n: reads.length,
    maxMs: reads.reduce((m, r) => Math.max(m, r.serverMs), 0),
    over: reads.filter((r) => r.serverMs > limitMs).sort((a, b) => b.serverMs - a.serverMs),
  };
}
