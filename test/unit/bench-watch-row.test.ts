// The watch row's reading of a proxy trace and its judgement (bench/watch-row.ts), on made-up traces: no sandbox.
// One real proxy (bench/latency-proxy.ts) on 127.0.0.1 checks what its trace records.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { type ProxyChunk, type ProxyTrace, startLatencyProxy } from '../../bench/latency-proxy.ts';
import {
  exchanges,
  refreshCost,
  serverTime,
  splitRefreshes,
  sshDesignRoundTrips,
  summarizeWatch,
  type WatchRefresh,
  watchGoals,
} from '../../bench/watch-row.ts';
import type { HttpEvent } from '../../sandbox/stats.ts';

const up = (conn: number, readAt: number, passedAt: number, bytes = 100): ProxyChunk => ({
  conn,
  dir: 'up',
  bytes,
  readAt,
  passedAt,
});
const down = (conn: number, readAt: number, passedAt: number, bytes = 1000): ProxyChunk => ({
  conn,
  dir: 'down',
  bytes,
  readAt,
  passedAt,
});
const trace = (chunks: ProxyChunk[], opened: Array<[number, number]> = []): ProxyTrace => ({
  chunks,
  connections: opened.map(([conn, openedAt]) => ({ conn, openedAt })),
});

describe('splitRefreshes', () => {
  it('starts a refresh after a pause on both paths, and keeps a refresh whole across its own round trips', () => {
    const api = trace([up(1, 0, 25), down(1, 40, 65), up(1, 5_000, 5_025), down(1, 5_040, 5_065)]);
    const ssh = trace([up(1, 1, 26), down(1, 27, 52), up(1, 53, 78), down(1, 150, 175)]);
    const groups = splitRefreshes(
      [
        { path: 'api', trace: api },
        { path: 'ssh', trace: ssh },
      ],
      400,
    );
    expect(groups.map((g) => g.length)).toEqual([6, 2]);
    expect(groups[1].every((c) => c.path === 'api')).toBe(true);
  });
});

describe('exchanges', () => {
  it('is one per message and its answers; a message never answered is left out', () => {
    const e = exchanges([
      up(1, 0, 25),
      down(1, 30, 55),
      down(1, 31, 56),
      up(1, 56, 81),
      down(1, 82, 107),
      up(1, 108, 133),
    ]);
    expect(e).toEqual([
      { startedAt: 0, endedAt: 56 },
      { startedAt: 56, endedAt: 107 },
    ]);
  });
});

describe('serverTime', () => {
  it("sums, per answer, the server's time from the message that reached it to its last answer", () => {
    // SSH on an open connection: channel open (1 ms to confirm), exec and its script (40 ms to the last output),
    // then the client's close, which is not answered.
    const chunks = [
      up(1, 0, 25),
      down(1, 26, 51),
      up(1, 52, 77),
      up(1, 52.5, 77.5),
      down(1, 100, 125),
      down(1, 117.5, 142.5),
      up(1, 143, 168),
    ];
    expect(serverTime(chunks)).toBeCloseTo(1 + 40);
  });
});

describe('refreshCost', () => {
  it('reads the wall, the rounds, the round trips and the connections opened from one refresh', () => {
    const rtt = 50;
    // API: two connections, one kept (1 RTT) and one opened now (held a further RTT, as a TCP connect).
    const api = trace(
      [up(1, 1_000, 1_025), down(1, 1_035, 1_060), up(2, 1_001, 1_076), down(2, 1_086, 1_111)],
      [
        [1, 0],
        [2, 1_001],
      ],
    );
    // SSH: channel open, then exec until the output (Spark 40 ms), then the client's close.
    const ssh = trace(
      [up(1, 1_000, 1_025), down(1, 1_026, 1_051), up(1, 1_052, 1_077), down(1, 1_117, 1_142)],
      [[1, 0]],
    );
    const [g] = splitRefreshes(
      [
        { path: 'api', trace: api },
        { path: 'ssh', trace: ssh },
      ],
      400,
    );
    const ev = (startedAt: number, endedAt: number, client = 'supabase-js-node/2.109.0'): HttpEvent => ({
      api: 'cloud',
      method: 'GET',
      role: 'service_role',
      path: '/rest/v1/hd_ingestion_jobs',
      client,
      status: 200,
      startedAt,
      endedAt,
      bytesOut: 500,
    });
    const events = [ev(1_025, 1_035), ev(1_076, 1_086), ev(1_030, 1_031, 'node'), ev(5_000, 5_010)];
    const r = refreshCost(g, { api: api.connections, ssh: ssh.connections }, events, rtt);
    expect(r).toMatchObject({
      wallMs: 142,
      newConnections: { api: 1, ssh: 0 },
      requests: 2,
      httpRounds: 1,
      httpServerMs: 10,
      httpBytes: 1_000,
      httpWallMs: 111,
      sshWallMs: 142,
      sshRoundTrips: 2,
    });
    expect(r.sshServerMs).toBeCloseTo(41);
  });
});

const refresh = (over: Partial<WatchRefresh> = {}): WatchRefresh => ({
  startAt: 0,
  endAt: 170,
  wallMs: 170,
  newConnections: { api: 7, ssh: 0 },
  requests: 7,
  httpRounds: 1,
  httpServerMs: 20,
  httpBytes: 12_000,
  httpWallMs: 120,
  sshWallMs: 170,
  sshRoundTrips: 2,
  sshServerMs: 70,
  wireBytes: 24_000,
  ...over,
});

const base = (jobs: number, ssh = { connections: 1, execs: 4, bytesPerRefresh: 600 }) => ({
  label: jobs > 1_000 ? 'large' : 'small',
  jobs,
  rttMs: 50,
  everySeconds: 5,
  exitCode: 0,
  summaryLine: 'watched 15 s (4 refreshes)',
  ssh,
});

describe('summarizeWatch', () => {
  it("leaves the first refresh out and sets each refresh against the issue's bound and the design's (an exec each)", () => {
    const r = summarizeWatch(base(1_000), [refresh({ wallMs: 450 }), refresh(), refresh(), refresh()]);
    expect(r.refreshes).toHaveLength(3);
    expect(r.first?.wallMs).toBe(450);
    expect(r.refreshCount).toBe(4);
    // 1 RTT + max(20, 70) = 120 ms; the design: max(50 + 20, 100 + 70) = 170 ms.
    expect(r.boundMs.median).toBe(120);
    expect(r.ratioToBound.median).toBeCloseTo(170 / 120);
    expect(r.designBoundMs.median).toBe(170);
    expect(r.ratioToDesignBound.median).toBe(1);
    expect(r.bytes.median).toBe(12_600);
  });

  it("with one exec channel kept for the watch, the design's bound is the issue's: one round trip", () => {
    const r = summarizeWatch(base(1_000, { connections: 1, execs: 1, bytesPerRefresh: 600 }), [
      refresh({ wallMs: 450 }),
      refresh(),
      refresh(),
      refresh(),
    ]);
    expect(sshDesignRoundTrips(1, 4)).toBe(1);
    expect(sshDesignRoundTrips(4, 4)).toBe(2);
    // max(50 + 20, 50 + 70) = 120 ms, the bound.
    expect(r.designBoundMs.median).toBe(120);
    expect(r.boundMs.median).toBe(120);
    expect(r.bytes.median).toBe(12_600);
  });
});

describe('watchGoals', () => {
  const met = (goals: ReturnType<typeof watchGoals>) => Object.fromEntries(goals.map((g) => [g.goal, g.met]));

  it("judges the small table: the issue's bound missed at 1.42x, bytes, rounds and the one exec met", () => {
    const small = summarizeWatch(base(1_000), [refresh(), refresh(), refresh(), refresh()]);
    expect(Object.values(met(watchGoals(small, undefined, 10_000_000)))).toEqual([false, true, true, true]);
    // One exec for the whole watch (its channel kept open) is within "<= 1 exec per refresh".
    const kept = summarizeWatch(base(1_000, { connections: 1, execs: 1, bytesPerRefresh: 600 }), [
      refresh(),
      refresh(),
      refresh(),
      refresh(),
    ]);
    expect(met(watchGoals(kept, undefined, 10_000_000))).toMatchObject({
      'watch refresh at 1,000 jobs (link 50 ms): SSH execs per refresh, connections per watch': true,
    });
  });

  it('misses on a second HTTP round, on a second SSH connection, and on more than 32 KB', () => {
    const small = summarizeWatch(base(1_000, { connections: 2, execs: 3, bytesPerRefresh: 600 }), [
      refresh(),
      refresh({ httpRounds: 2 }),
      refresh({ httpBytes: 40_000 }),
      refresh(),
    ]);
    expect(Object.values(met(watchGoals(small, undefined, 10_000_000))).slice(1)).toEqual([false, false, false]);
  });

  it('shows a scaled-down large table without judging it, and judges flatness at full scale', () => {
    const small = summarizeWatch(base(1_000), [refresh(), refresh(), refresh(), refresh()]);
    const large = (jobs: number, wallMs: number) =>
      summarizeWatch(base(jobs), [refresh(), refresh({ wallMs }), refresh({ wallMs }), refresh({ wallMs })]);
    const quick = watchGoals(small, large(100_000, 300), 10_000_000);
    expect(quick.filter((g) => g.goal.includes('100,000')).map((g) => g.met)).toEqual([
      null,
      null,
      null,
      null,
      null,
      null,
    ]);
    const full = met(watchGoals(small, large(10_000_000, 180), 10_000_000));
    expect(full['watch refresh flat from 1,000 to 10,000,000 jobs: wall, large / small']).toBe(true);
    expect(full['watch refresh flat from 1,000 to 10,000,000 jobs: same requests per refresh']).toBe(true);
    const slow = met(watchGoals(small, large(10_000_000, 300), 10_000_000));
    expect(slow['watch refresh flat from 1,000 to 10,000,000 jobs: wall, large / small']).toBe(false);
  });

  it('misses a row that could not be measured', () => {
    const r = { ...summarizeWatch(base(1_000), []), notMeasured: 'watch.mts exited 2' };
    expect(watchGoals(r, undefined, 10_000_000)).toEqual([
      expect.objectContaining({ measured: 'watch.mts exited 2', met: false }),
    ]);
  });
});

describe('the latency proxy trace', () => {
  it('records each connection, and each chunk when it was read and when it was passed on', async () => {
    const server = net.createServer((s) => s.on('data', (d) => s.write(d)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const t = trace([]);
    const proxy = await startLatencyProxy({
      targetPort: (server.address() as net.AddressInfo).port,
      rttMs: 20,
      trace: t,
    });
    try {
      const client = net.connect({ port: proxy.port, host: '127.0.0.1' });
      const echoed = new Promise<Buffer>((resolve) => client.once('data', resolve));
      client.write('ping');
      expect(String(await echoed)).toBe('ping');
      client.destroy();
      expect(t.connections).toHaveLength(1);
      expect(t.chunks.map((c) => [c.dir, c.bytes])).toEqual([
        ['up', 4],
        ['down', 4],
      ]);
      // Each held at least half an RTT (lower bounds only: the link never passes a chunk early), in order.
      const [sent, answer] = t.chunks;
      expect(sent.passedAt! - sent.readAt).toBeGreaterThanOrEqual(10 - 1);
      expect(answer.passedAt! - answer.readAt).toBeGreaterThanOrEqual(10 - 1);
      expect(answer.readAt).toBeGreaterThanOrEqual(sent.passedAt! - 1);
    } finally {
      await proxy.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
