/**
 * The watch row (issue #16): what one refresh of the watch view costs, measured from outside while
 * `runbooks/watch.mts` runs for a few refreshes on the link model (a TCP proxy with a round-trip time on the path to
 * the API and on the path to Spark, bench/latency-proxy.ts). Nothing in the product is told it is measured.
 *
 * Per refresh, from the proxies' traces (every chunk with the time the proxy read it and passed it on): the wall
 * from the first byte the runbook sent to the last byte it received; the TCP connections opened; the HTTP rounds
 * (exchanges whose [sent, received] intervals overlap, as the runbook saw them); the SSH path's round trips and
 * Spark's own time on it (the time between a message reaching sshd and sshd's last answer to it). From the sandbox's
 * records: the requests, their response bodies and each one's server time (`endedAt − startedAt`); SSH execs,
 * connections and the bytes the commands printed (per refresh: the watch keeps one exec channel open across its
 * refreshes, so there is one exec per watch, not per refresh).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sandboxSeed } from '../sandbox/client.ts';
import type { HttpEvent } from '../sandbox/stats.ts';
import { childEnv, runTimed } from './child.ts';
import { type ProxyChunk, type ProxyTrace, startLatencyProxy } from './latency-proxy.ts';
import { type BenchSandbox, ROOT } from './sandbox.ts';
import { httpRounds, originOf, type Summary, summarize } from './stats.ts';
import { fmt, kb, table } from './table.ts';

/** The issue's bound on one refresh's bytes (response bodies plus what the command on Spark printed). */
export const WATCH_BYTES_GOAL = 32 * 1024;
/** The issue's bound on a refresh's wall: this many times one round trip plus the server's time. */
export const WATCH_WALL_GOAL = 1.2;
/** Flat: the large table's median refresh wall at most this many times the small table's. */
export const WATCH_FLAT_GOAL = 1.2;

/** One refresh as the proxies and the sandbox saw it. */
export interface WatchRefresh {
  /** Epoch ms: the first byte the runbook sent, the last byte it received. */
  startAt: number;
  endAt: number;
  wallMs: number;
  /** TCP connections the runbook opened during this refresh, to the API and to Spark. */
  newConnections: { api: number; ssh: number };
  /** HTTP: requests (the runbook's, from the sandbox), rounds (from the proxy), the slowest server time, bodies. */
  requests: number;
  httpRounds: number;
  httpServerMs: number;
  httpBytes: number;
  /** The API path's wall: first request sent to last answer received. */
  httpWallMs: number;
  /** SSH: the path's wall, its round trips (turns: the client spoke, Spark answered) and Spark's time in them. */
  sshWallMs: number;
  sshRoundTrips: number;
  sshServerMs: number;
  /** Every byte on both paths, both ways, framing included (TCP payload through the proxies). */
  wireBytes: number;
}

/** Events of one path through a proxy: what {@link splitRefreshes} works on. */
interface PathTrace {
  path: 'api' | 'ssh';
  trace: ProxyTrace;
}

type Tagged = ProxyChunk & { path: 'api' | 'ssh' };

/**
 * The chunks of both paths grouped into refreshes: a refresh ends where nothing passed either way for `gapMs`
 * (the watch sleeps `--every` seconds between refreshes; a refresh's own pauses are a round trip or a server's time).
 */
export function splitRefreshes(paths: readonly PathTrace[], gapMs: number): Tagged[][] {
  const all: Tagged[] = paths.flatMap(({ path: p, trace }) => trace.chunks.map((c) => ({ ...c, path: p })));
  all.sort((a, b) => a.readAt - b.readAt);
  const groups: Tagged[][] = [];
  let last = Number.NEGATIVE_INFINITY;
  for (const c of all) {
    if (c.readAt - last > gapMs) groups.push([]);
    groups.at(-1)!.push(c);
    last = Math.max(last, c.passedAt ?? c.readAt);
  }
  return groups;
}

/** One connection's exchanges: from a chunk the client sent to the last answer before the client spoke again. */
export function exchanges(chunks: readonly ProxyChunk[]): Array<{ startedAt: number; endedAt: number }> {
  const out: Array<{ startedAt: number; endedAt: number }> = [];
  let open: { startedAt: number; endedAt: number } | undefined;
  let answered = false;
  for (const c of [...chunks].sort((a, b) => a.readAt - b.readAt)) {
    if (c.dir === 'up') {
      if (!open || answered) {
        open = { startedAt: c.readAt, endedAt: Number.NaN };
        answered = false;
        out.push(open);
      }
    } else if (open) {
      open.endedAt = c.passedAt ?? c.readAt;
      answered = true;
    }
  }
  return out.filter((e) => Number.isFinite(e.endedAt));
}

/**
 * The server's own time on one connection: for every run of answers, from the last message that reached the server
 * before it to the last answer written (server-side times: `passedAt` of what the client sent, `readAt` of answers).
 * Waiting for the client, and the link's delays, are not in it.
 */
export function serverTime(chunks: readonly ProxyChunk[]): number {
  const events = chunks
    .map((c) => ({ dir: c.dir, at: c.dir === 'up' ? (c.passedAt ?? Number.NaN) : c.readAt }))
    .filter((e) => Number.isFinite(e.at))
    .sort((a, b) => a.at - b.at);
  let total = 0;
  let heard: number | undefined;
  let answeredAt: number | undefined;
  for (const e of events) {
    if (e.dir === 'up') {
      if (answeredAt !== undefined && heard !== undefined) total += answeredAt - heard;
      heard = e.at;
      answeredAt = undefined;
    } else if (heard !== undefined) answeredAt = e.at;
  }
  if (answeredAt !== undefined && heard !== undefined) total += answeredAt - heard;
  return total;
}

const byConn = (chunks: readonly Tagged[]) => {
  const m = new Map<number, Tagged[]>();
  for (const c of chunks) m.set(c.conn, [...(m.get(c.conn) ?? []), c]);
  return [...m.values()];
};

/** A refresh's costs from its chunks, the connections the proxies accepted and the sandbox's requests. */
export function refreshCost(
  chunks: readonly Tagged[],
  opened: { api: ProxyTrace['connections']; ssh: ProxyTrace['connections'] },
  events: readonly HttpEvent[],
  rttMs: number,
): WatchRefresh {
  const ups = chunks.filter((c) => c.dir === 'up');
  const received = chunks.filter((c) => c.dir === 'down').map((c) => c.passedAt ?? c.readAt);
  const startAt = Math.min(...ups.map((c) => c.readAt));
  const endAt = Math.max(...received);
  const within = (t: number) => t >= startAt - 1 && t <= endAt + 1;
  const api = chunks.filter((c) => c.path === 'api');
  const ssh = chunks.filter((c) => c.path === 'ssh');
  const apiExchanges = byConn(api).flatMap((c) => exchanges(c));
  const span = (cs: readonly Tagged[]) =>
    cs.length
      ? Math.max(...cs.filter((c) => c.dir === 'down').map((c) => c.passedAt ?? c.readAt)) -
        Math.min(...cs.filter((c) => c.dir === 'up').map((c) => c.readAt))
      : 0;
  const laptop = events.filter((e) => originOf(e.client) === 'laptop' && within(e.startedAt));
  const sshServerMs = byConn(ssh).reduce((n, c) => n + serverTime(c), 0);
  const sshWallMs = span(ssh);
  return {
    startAt,
    endAt,
    wallMs: endAt - startAt,
    newConnections: {
      api: opened.api.filter((c) => within(c.openedAt)).length,
      ssh: opened.ssh.filter((c) => within(c.openedAt)).length,
    },
    requests: laptop.length,
    httpRounds: httpRounds(apiExchanges),
    httpServerMs: laptop.reduce((m, e) => Math.max(m, e.endedAt - e.startedAt), 0),
    httpBytes: laptop.reduce((n, e) => n + e.bytesOut, 0),
    httpWallMs: span(api),
    sshWallMs,
    sshRoundTrips: ssh.length ? Math.round((sshWallMs - sshServerMs) / rttMs) : 0,
    sshServerMs,
    wireBytes: chunks.reduce((n, c) => n + c.bytes, 0),
  };
}

/** A watch run's refreshes summed up: each figure the median [min–max] over the refreshes after the first. */
export interface WatchRowResult {
  label: string;
  jobs: number;
  rttMs: number;
  everySeconds: number;
  exitCode: number | null;
  /** The run's last line: `watched … (N refreshes): …`. */
  summaryLine: string;
  /** Every refresh after the first (the first follows the SSH handshake at once and cannot be told from it). */
  refreshes: WatchRefresh[];
  /** The first refresh with the SSH connect before it. */
  first?: WatchRefresh;
  /** Exec channels and connections over the whole watch; what the commands printed, per refresh. */
  ssh: { connections: number; execs: number; bytesPerRefresh: number };
  /** All refreshes, the first included. */
  refreshCount: number;
  wallMs: Summary;
  /** The issue's bound: one RTT + max(the HTTP round's server time, Spark's time on the SSH path). */
  boundMs: Summary;
  ratioToBound: Summary;
  /**
   * The fewest round trips the refresh's design allows: max(1 RTT + HTTP server time, N RTT + Spark's time), N = 1
   * when the watch kept its exec channel open across refreshes (fewer execs than refreshes), 2 with an exec each.
   */
  designBoundMs: Summary;
  ratioToDesignBound: Summary;
  requests: Summary;
  httpRounds: Summary;
  httpServerMs: Summary;
  httpWallMs: Summary;
  sshWallMs: Summary;
  sshRoundTrips: Summary;
  sshServerMs: Summary;
  apiConnects: Summary;
  /** Response bodies plus what the command printed, per refresh: the bench's "bytes moved". */
  bytes: Summary;
  wireBytes: Summary;
  notMeasured?: string;
}

/**
 * The SSH path's round trips per refresh by design: 1 on a channel kept open across refreshes (fewer execs than
 * refreshes: the first refresh opened it), 2 with an exec per refresh (the channel's open, then the command).
 */
export function sshDesignRoundTrips(execs: number, refreshes: number): 1 | 2 {
  return execs < refreshes ? 1 : 2;
}

/** The sums of a run's refreshes (pure: the unit tests feed it made-up refreshes). */
export function summarizeWatch(
  base: Pick<WatchRowResult, 'label' | 'jobs' | 'rttMs' | 'everySeconds' | 'exitCode' | 'summaryLine' | 'ssh'>,
  all: readonly WatchRefresh[],
): WatchRowResult {
  const [first, ...refreshes] = all;
  const s = (f: (r: WatchRefresh) => number) => summarize(refreshes.map(f));
  const rtt = base.rttMs;
  const bound = (r: WatchRefresh) => rtt + Math.max(r.httpServerMs, r.sshServerMs);
  const sshTrips = sshDesignRoundTrips(base.ssh.execs, all.length);
  const design = (r: WatchRefresh) => Math.max(rtt + r.httpServerMs, sshTrips * rtt + r.sshServerMs);
  return {
    ...base,
    refreshes,
    first,
    refreshCount: all.length,
    wallMs: s((r) => r.wallMs),
    boundMs: s(bound),
    ratioToBound: s((r) => r.wallMs / bound(r)),
    designBoundMs: s(design),
    ratioToDesignBound: s((r) => r.wallMs / design(r)),
    requests: s((r) => r.requests),
    httpRounds: s((r) => r.httpRounds),
    httpServerMs: s((r) => r.httpServerMs),
    httpWallMs: s((r) => r.httpWallMs),
    sshWallMs: s((r) => r.sshWallMs),
    sshRoundTrips: s((r) => r.sshRoundTrips),
    sshServerMs: s((r) => r.sshServerMs),
    apiConnects: s((r) => r.newConnections.api),
    bytes: s((r) => r.httpBytes + base.ssh.bytesPerRefresh),
    wireBytes: s((r) => r.wireBytes),
  };
}

/** The laptop's `.env` with the API and Spark behind the proxies (the host key known under the proxy's port). */
function linkEnvFile(sb: BenchSandbox, work: string, apiPort: number, sshPort: number, tag: string): string {
  const knownHosts = path.join(work, `known_hosts.${tag}`);
  writeFileSync(
    knownHosts,
    readFileSync(sb.info.spark.knownHosts, 'utf8').replace(
      `[127.0.0.1]:${sb.info.spark.port}`,
      `[127.0.0.1]:${sshPort}`,
    ),
  );
  const envFile = path.join(work, `laptop.${tag}.env`);
  writeFileSync(
    envFile,
    readFileSync(sb.envFile, 'utf8')
      .replaceAll(sb.info.cloud.url, `http://127.0.0.1:${apiPort}`)
      .replace(/^SPARK_PORT=.*$/m, `SPARK_PORT=${sshPort}`)
      .replace(/^SPARK_KNOWN_HOSTS=.*$/m, `SPARK_KNOWN_HOSTS=${knownHosts}`),
    { mode: 0o600 },
  );
  return envFile;
}

/** How a watch row is run: the link's RTT, how many refreshes (the first is not counted) and the interval. */
export interface WatchRowOptions {
  rttMs: number;
  /** Refreshes to measure after the first. */
  refreshes: number;
  /** The watch's own default (5 s): at that interval Node's fetch has closed its idle connections (4 s). */
  everySeconds: number;
  work: string;
  /** The runbook's environment (the bench's children's; with --sources, the TypeScript sources). */
  env?: NodeJS.ProcessEnv;
  log: (m: string) => void;
}

/** The row's default: the link model at 50 ms, the watch's default interval. */
export const WATCH_ROW_DEFAULTS = { rttMs: 50, everySeconds: 5 } as const;

/**
 * Runs `watch.mts --ci --every E --for F` once on a link with `rttMs` on both paths and measures each refresh. The
 * table and the worker are the caller's (the worker quiet, so the table holds still).
 */
export async function measureWatch(
  sb: BenchSandbox,
  label: string,
  jobs: number,
  o: WatchRowOptions,
): Promise<WatchRowResult> {
  const apiTrace: ProxyTrace = { connections: [], chunks: [] };
  const sshTrace: ProxyTrace = { connections: [], chunks: [] };
  const apiPort = Number(new URL(sb.info.cloud.url).port);
  const api = await startLatencyProxy({ targetPort: apiPort, rttMs: o.rttMs, trace: apiTrace });
  const ssh = await startLatencyProxy({ targetPort: sb.info.spark.port, rttMs: o.rttMs, trace: sshTrace });
  try {
    const envFile = linkEnvFile(sb, o.work, api.port, ssh.port, `watch-${label}`);
    // n + 1 refreshes: the loop waits min(--every, what is left of --for) after each, and stops past --for.
    const forSeconds = o.everySeconds * o.refreshes;
    const args = ['--ci', '--env-file', envFile, '--every', String(o.everySeconds), '--for', String(forSeconds)];
    o.log(
      `watch: ${jobs.toLocaleString('en')} jobs, link ${o.rttMs} ms, --every ${o.everySeconds} --for ${forSeconds}`,
    );
    await sb.resetStats();
    const r = await runTimed('npx', ['zx', 'runbooks/watch.mts', ...args], {
      cwd: ROOT,
      env: o.env ?? childEnv(),
      timeoutMs: (forSeconds + 120) * 1000,
      memory: false,
    });
    const stats = await sb.stats();
    if (r.code !== 0)
      throw new Error(
        `watch.mts exited ${r.code}: ${`${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-3).join(' / ')}`,
      );
    const paths: PathTrace[] = [
      { path: 'api', trace: apiTrace },
      { path: 'ssh', trace: sshTrace },
    ];
    const opened = { api: apiTrace.connections, ssh: sshTrace.connections };
    const all = splitRefreshes(paths, Math.min(400, (o.everySeconds * 1000) / 2)).map((g) =>
      refreshCost(g, opened, stats.events, o.rttMs),
    );
    const summaryLine = r.stdout.split('\n').findLast((l) => /^\s*watched /.test(l)) ?? '';
    const execs = stats.ssh.execChannels;
    return summarizeWatch(
      {
        label,
        jobs,
        rttMs: o.rttMs,
        everySeconds: o.everySeconds,
        exitCode: r.code,
        summaryLine: summaryLine.trim(),
        ssh: {
          connections: stats.ssh.connections,
          execs,
          bytesPerRefresh: all.length ? stats.ssh.bytesSent / all.length : 0,
        },
      },
      all,
    );
  } finally {
    await Promise.all([api.close(), ssh.close()]);
  }
}

/** The small table's jobs: the lists as full as at the large table (100 queued, 100 failed of 1,000). */
export const WATCH_SMALL_JOBS = 1_000;

/**
 * The small case on the bench's shared sandbox: 1,000 jobs seeded as the scale row seeds (but 10% queued and 10%
 * failed, so the backlog and failed lists are full as they are at 100,000 and more), measured, then the sandbox put
 * back to its healthy scenario for the sections after this one.
 */
export async function watchSmall(sb: BenchSandbox, o: WatchRowOptions): Promise<WatchRowResult> {
  await sb.latency(0);
  // Quiet before the seed: its first poll would claim a queued job (the scale row does the same).
  await sb.quietWorker();
  await sb.sql('truncate public.hd_assets, public.hd_ingestion_jobs');
  const seeded = await sandboxSeed(
    sb.dir,
    { jobs: WATCH_SMALL_JOBS, queuedPercent: 10, failedPercent: 10 },
    childEnv(),
  );
  o.log(`watch: ${seeded}`);
  try {
    return await measureWatch(sb, 'small', WATCH_SMALL_JOBS, o);
  } finally {
    await sb.scenario('healthy');
  }
}

/** A row that could not be measured: the reason, for the table and the goals. */
export function watchNotMeasured(label: string, jobs: number, o: WatchRowOptions, e: unknown): WatchRowResult {
  return {
    ...summarizeWatch(
      {
        label,
        jobs,
        rttMs: o.rttMs,
        everySeconds: o.everySeconds,
        exitCode: null,
        summaryLine: '',
        ssh: { connections: 0, execs: 0, bytesPerRefresh: 0 },
      },
      [],
    ),
    notMeasured: (e as Error).message.split('\n')[0],
  };
}

/** How the bound is made, for the results and the report. */
export function watchDerivation(rttMs: number): string[] {
  return [
    `a link with a ${rttMs} ms round trip on the laptop-Supabase and laptop-Spark paths (bench/latency-proxy.ts), no TLS`,
    "server time: the HTTP round's slowest request on the sandbox (endedAt - startedAt), and Spark's time on the SSH " +
      'path (from the proxy: each message reaching sshd to its last answer, summed over the refresh)',
    `the issue's bound: 1 RTT + max(HTTP server time, Spark's time) = ${rttMs} ms + server time; goal <= ${WATCH_WALL_GOAL}x`,
    "the design's bound: max(HTTP: 1 RTT + server time, SSH: N RTT + Spark's time). The watch keeps one exec channel " +
      '(bash -s) open across its refreshes and writes each refresh its script on it: N = 1 (fewer execs than ' +
      "refreshes). A new exec would be N = 2: the channel open (its confirmation names the server's channel, which " +
      'the exec request must carry), then the command until its output; the first refresh pays it',
    'a refresh: first byte the runbook sent to the last byte it received (proxy trace), refreshes told apart by the ' +
      '--every pause; the first (right after the SSH handshake) is left out',
  ];
}

const ms = (s: Summary) => fmt(s, ' ms');
const x = (s: Summary) => fmt({ ...s }, 'x', 2);

/** The row's table: one line per table size. */
export function watchReport(rows: readonly WatchRowResult[]): string[] {
  if (!rows.length) return [];
  const r0 = rows[0];
  const out = [
    `Watch refresh: watch.mts --every ${r0.everySeconds}, link ${r0.rttMs} ms RTT via proxy (median [min-max] over the refreshes after the first)`,
  ];
  out.push(
    table(
      [
        'jobs',
        'refreshes',
        'wall',
        'bound',
        'x bound',
        'x design',
        'HTTP',
        'rounds',
        'SSH RTs',
        'exec',
        'conn',
        'API connects',
        'bytes',
        'wire',
      ],
      rows.map((r) =>
        r.notMeasured
          ? [r.jobs.toLocaleString('en'), `not measured: ${r.notMeasured}`]
          : [
              r.jobs.toLocaleString('en'),
              String(r.refreshes.length),
              ms(r.wallMs),
              ms(r.boundMs),
              x(r.ratioToBound),
              x(r.ratioToDesignBound),
              fmt(r.requests),
              fmt(r.httpRounds),
              fmt(r.sshRoundTrips),
              `${r.ssh.execs}/${r.refreshCount}`,
              String(r.ssh.connections),
              fmt(r.apiConnects),
              kb(r.bytes),
              kb(r.wireBytes),
            ],
      ),
    ),
  );
  for (const r of rows.filter((x) => !x.notMeasured))
    out.push(
      `  ${r.jobs.toLocaleString('en')} jobs: HTTP path ${ms(r.httpWallMs)} (slowest request ${ms(r.httpServerMs)} on the server), ` +
        `SSH path ${ms(r.sshWallMs)} (Spark ${ms(r.sshServerMs)}); ${r.summaryLine}`,
    );
  out.push(...watchDerivation(r0.rttMs).map((l) => `  - ${l}`), '');
  return out;
}

type Goal = { goal: string; target: string; measured: string; met: boolean | null };

/**
 * The row's goals. The small table's are judged always; the large table's, and flatness, only at `fullJobs` or
 * more (scaled down is shown, not judged, as for the scale row).
 */
export function watchGoals(
  small: WatchRowResult | undefined,
  large: WatchRowResult | undefined,
  fullJobs: number,
): Goal[] {
  const goals: Goal[] = [];
  for (const r of [small, large]) {
    if (!r) continue;
    const judge = (met: boolean) => (r === small || r.jobs >= fullJobs ? met : null);
    const at = `watch refresh at ${r.jobs.toLocaleString('en')} jobs (link ${r.rttMs} ms)`;
    if (r.notMeasured || !r.refreshes.length) {
      goals.push({ goal: at, target: 'measured', measured: r.notMeasured ?? 'no refresh', met: judge(false) });
      continue;
    }
    goals.push(
      {
        goal: `${at}: wall / (1 RTT + server time)`,
        target: `<= ${WATCH_WALL_GOAL}x`,
        measured: `${x(r.ratioToBound)} (${ms(r.wallMs)} / ${ms(r.boundMs)})`,
        met: judge(r.ratioToBound.median <= WATCH_WALL_GOAL),
      },
      {
        goal: `${at}: bytes moved per refresh`,
        target: `<= ${WATCH_BYTES_GOAL / 1024} KB`,
        measured: kb(r.bytes),
        met: judge(r.bytes.max <= WATCH_BYTES_GOAL),
      },
      {
        goal: `${at}: HTTP rounds per refresh`,
        target: '<= 1',
        measured: fmt(r.httpRounds),
        met: judge(r.httpRounds.max <= 1),
      },
      {
        goal: `${at}: SSH execs per refresh, connections per watch`,
        target: '<= 1 exec, 1 connection',
        measured: `${r.ssh.execs} exec(s) in ${r.refreshCount} refreshes, ${r.ssh.connections} connection(s)`,
        met: judge(r.ssh.execs >= 1 && r.ssh.execs <= r.refreshCount && r.ssh.connections === 1),
      },
    );
  }
  if (small && large && !small.notMeasured && !large.notMeasured && small.refreshes.length && large.refreshes.length) {
    const judge = (met: boolean) => (large.jobs >= fullJobs ? met : null);
    const tag = `watch refresh flat from ${small.jobs.toLocaleString('en')} to ${large.jobs.toLocaleString('en')} jobs`;
    const ratio = large.wallMs.median / small.wallMs.median;
    goals.push(
      {
        goal: `${tag}: wall, large / small`,
        target: `<= ${WATCH_FLAT_GOAL}x`,
        measured: `${ratio.toFixed(2)}x (${ms(large.wallMs)} / ${ms(small.wallMs)})`,
        met: judge(ratio <= WATCH_FLAT_GOAL),
      },
      {
        goal: `${tag}: same requests per refresh`,
        target: `= ${small.requests.median}`,
        measured: fmt(large.requests),
        met: judge(large.requests.min === small.requests.max && large.requests.max === small.requests.min),
      },
    );
  }
  return goals;
}
