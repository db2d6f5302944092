// The benchmark's pure helpers (bench/stats.ts, bench/table.ts). The benchmark itself never runs in `npm test`.
import { describe, expect, it } from 'vitest';
import { httpRounds, originOf, queueReads, readTimes, runCost, summarize } from '../../bench/stats.ts';
import { fmt, table } from '../../bench/table.ts';
import type { HttpEvent, StatsSnapshot } from '../../sandbox/stats.ts';

const ev = (startedAt: number, endedAt: number, client: string, method = 'GET', bytesOut = 100): HttpEvent => ({
  api: 'cloud',
  method,
  role: 'service_role',
  path: '/rest/v1/hd_ingestion_jobs',
  client,
  status: 200,
  startedAt,
  endedAt,
  bytesOut,
});

describe('summarize', () => {
  it.each([
    [[3, 1, 2], { median: 2, min: 1, max: 3, n: 3 }],
    [[4, 1, 3, 2], { median: 2.5, min: 1, max: 4, n: 4 }],
    [[7], { median: 7, min: 7, max: 7, n: 1 }],
  ])('%j', (values, expected) => expect(summarize(values)).toEqual(expected));

  it('has no median without runs', () => expect(summarize([]).n).toBe(0));
});

describe('originOf', () => {
  it.each([
    ['supabase-js-node/2.109.0', 'laptop'],
    ['curl/8.5.0', 'spark'],
    ['python-requests/2.34.2', 'spark'],
    ['node', 'worker'],
    [undefined, 'other'],
  ])('%s is %s', (client, origin) => expect(originOf(client)).toBe(origin));
});

describe('httpRounds', () => {
  it('counts requests in flight together as one round', () => {
    expect(httpRounds([ev(0, 60, ''), ev(2, 55, ''), ev(5, 58, '')])).toBe(1);
  });
  it('counts requests that start after the previous ended as a new round', () => {
    expect(httpRounds([ev(0, 50, ''), ev(51, 100, ''), ev(60, 90, ''), ev(200, 250, '')])).toBe(3);
  });
  it('is zero without requests', () => expect(httpRounds([])).toBe(0));
});

describe('runCost', () => {
  const stats: StatsSnapshot = {
    http: {},
    httpTotal: 7,
    httpWrites: 0,
    httpBytesOut: 0,
    httpConnections: { cloud: 7 },
    ssh: { connections: 1, authFailures: 0, execChannels: 1, bytesSent: 2_000 },
    events: [
      ev(0, 55, 'supabase-js-node/2.109.0'),
      ev(1, 56, 'supabase-js-node/2.109.0'),
      ev(1, 57, 'supabase-js-node/2.109.0'),
      ev(2, 58, 'supabase-js-node/2.109.0'),
      ev(120, 175, 'curl/8.5.0', 'GET', 10),
      ev(130, 180, 'node', 'GET', 5_000),
      ev(300, 350, 'node', 'PATCH', 5_000),
    ],
  };

  it('leaves the worker out and counts Spark requests inside the exec round', () => {
    expect(runCost(stats)).toEqual({
      laptopRequests: 4,
      sparkRequests: 1,
      workerRequests: 2,
      requests: 5,
      writes: 0,
      rounds: 2,
      sshConnections: 1,
      execChannels: 1,
      bytesMoved: 410 + 2_000,
      httpBytes: 410,
      sshBytes: 2_000,
    });
  });
});

describe('table output', () => {
  it('shows one value when every run gave the same, else median [min–max]', () => {
    expect(fmt(summarize([5, 5]), ' ms')).toBe('5 ms');
    expect(fmt(summarize([4, 5, 9]), ' ms')).toBe('5 ms [4–9]');
  });
  it('aligns numbers right and the first column left', () => {
    expect(
      table(
        ['run', 'ms'],
        [
          ['a', '5'],
          ['long name', '1234'],
        ],
      ),
    ).toBe(['run          ms', '---------  ----', 'a             5', 'long name  1234'].join('\n'));
  });
});

describe('queueReads and readTimes', () => {
  const read = (startedAt: number, endedAt: number, query: string, over: Partial<HttpEvent> = {}): HttpEvent => ({
    ...ev(startedAt, endedAt, 'supabase-js-node/2.109.0'),
    query,
    ...over,
  });
  const events = [
    read(10, 2_510, 'select=id&status=eq.done&order=finished_at.desc&limit=1'),
    read(0, 40, 'select=id&status=in.(queued,pending)&order=created_at.asc&limit=50'),
    read(5, 1_005, 'select=id&status=eq.running'),
    read(20, 25, 'select=id', { client: 'node' }),
    read(30, 3_030, '', { method: 'POST', path: '/rest/v1/rpc/hd_requeue_jobs' }),
    read(40, 45, 'select=id', { method: 'PATCH' }),
    read(50, 1_250, 'select=id', { method: 'HEAD', client: 'curl/8.5.0' }),
  ];

  it("keeps the runbook's and Spark's GET and HEAD of the queue, in order, with their server time", () => {
    expect(queueReads(events)).toEqual([
      {
        method: 'GET',
        query: 'select=id&status=in.(queued,pending)&order=created_at.asc&limit=50',
        status: 200,
        serverMs: 40,
      },
      { method: 'GET', query: 'select=id&status=eq.running', status: 200, serverMs: 1_000 },
      { method: 'GET', query: 'select=id&status=eq.done&order=finished_at.desc&limit=1', status: 200, serverMs: 2_500 },
      { method: 'HEAD', query: 'select=id', status: 200, serverMs: 1_200 },
    ]);
  });

  it('names the slowest and those over the budget, slowest first (exactly the budget is within it)', () => {
    const t = readTimes(queueReads(events), 1_000);
    expect(t.n).toBe(4);
    expect(t.maxMs).toBe(2_500);
    expect(t.over.map((r) => r.serverMs)).toEqual([2_500, 1_200]);
  });

  it('has nothing over the budget without reads', () =>
    expect(readTimes([], 1_000)).toEqual({ n: 0, maxMs: 0, over: [] }));
});
