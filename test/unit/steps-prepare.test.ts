/**
 * What a plan starts before its steps run: each step's `prepare` (the Spark steps open TCP to Spark there, so the
 * handshake overlaps loading the SSH library), and the db port that loads supabase-js only at its first request.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_RULES } from '../../lib/core/stuck-rules.ts';
import { sparkStep } from '../../lib/evidence/gather.ts';
import { type GatherState, SPARK_HEAD_START_MS, sparkHeadStart } from '../../lib/evidence/gather-state.ts';
import { watchSparkStep } from '../../lib/evidence/watch-worker.ts';
import type { LoadedConfig } from '../../lib/io/config.ts';
import { lazyJobsDb } from '../../lib/io/context.ts';
import type { JobsDb } from '../../lib/io/jobs-db.ts';
import { check, runPlan, type Step } from '../../lib/io/steps.ts';
import { fakePorts, opaqueKey } from '../helpers/fake-ports.ts';

describe('runPlan: prepare', () => {
  function step(id: string, events: string[], skip?: string): Step<object> {
    return {
      id,
      title: id,
      skip: () => skip,
      prepare: () => events.push(`prepare ${id}`),
      run: async () => {
        events.push(`run ${id}`);
        return check(id, id, 'ok', '');
      },
    };
  }

  it('prepares every step that will run, later groups included, before the first step runs', async () => {
    const events: string[] = [];
    const { ports } = fakePorts();
    await runPlan(
      {},
      [step('a', events), [step('b', events), step('c', events, 'not today')], step('d', events)],
      ports.out,
    );
    expect(events).toEqual(['prepare a', 'prepare b', 'prepare d', 'run a', 'run b', 'run d']);
  });
});

describe('the Spark steps open TCP to Spark as the plan starts', () => {
  function state(
    values: Record<string, string>,
    files: Record<string, string> = {},
  ): {
    state: GatherState;
    preconnected: ReturnType<typeof fakePorts>['preconnected'];
  } {
    const { ports, preconnected } = fakePorts({ files, homeDir: '/home/op' });
    const config = { values, issues: [], laptop: {}, supabaseKey: 'k', secrets: [] } as unknown as LoadedConfig;
    const evidence = { now: new Date(0), rules: DEFAULT_RULES, laptop: {} } as unknown as GatherState['evidence'];
    return { state: { ports, config, evidence, db: {} as JobsDb }, preconnected };
  }

  it.each([
    ['the diagnosis', sparkStep],
    ['the watch', watchSparkStep],
  ])('%s: the target SPARK_* and ~/.ssh/config resolve to', (_, step) => {
    const s = state(
      { SPARK_HOST: 'spark', SPARK_SSH_KEY_PATH: '/keys/id' },
      { '/home/op/.ssh/config': 'Host spark\n  HostName 100.64.0.7\n  Port 2200\n', '/keys/id': 'key' },
    );
    expect(step.skip?.(s.state)).toBeUndefined();
    step.prepare?.(s.state);
    expect(s.preconnected).toMatchObject([{ host: '100.64.0.7', port: 2200 }]);
  });

  it('nothing without SPARK_HOST (the step is skipped), nor for a target that does not resolve', () => {
    const none = state({});
    expect(sparkStep.skip?.(none.state)).toBeDefined();
    const bad = state({ SPARK_HOST: 'spark', SPARK_PORT: '99999' });
    sparkStep.prepare?.(bad.state);
    expect(bad.preconnected).toEqual([]);
  });
});

describe('lazyJobsDb', () => {
  it('loads the client at the first request, then is the client: the same request, the key as apikey and bearer', async () => {
    const key = opaqueKey('secret');
    const requests: { url: string; headers: Headers }[] = [];
    const db = lazyJobsDb({
      url: 'https://abcdefghijklmnopqrst.supabase.co',
      key,
      timeoutMs: 5_000,
      sleep: async () => {},
      now: () => 0,
      fetch: (async (input: string | URL | Request, init?: RequestInit) => {
        requests.push({ url: String(input), headers: new Headers(init?.headers) });
        return new Response('[]', { status: 200, headers: { 'content-range': '*/0' } });
      }) as typeof fetch,
    });
    expect(db.url).toBe('https://abcdefghijklmnopqrst.supabase.co');
    expect(requests).toEqual([]);
    const r = await db.queuedSummary();
    expect(r).toMatchObject({ ok: true, value: { count: 0, oldest: null } });
    expect(requests).toHaveLength(1);
    expect(requests[0].url).toContain('/rest/v1/hd_ingestion_jobs?');
    expect(requests[0].headers.get('apikey')).toBe(key);
    expect(requests[0].headers.get('authorization')).toBe(`Bearer ${key}`);
    expect(requests[0].headers.get('x-client-info')).toMatch(/^supabase-js/);
  });
});

describe("the queue read gives the probe's command a head start", () => {
  it('waits until the command is out, at most SPARK_HEAD_START_MS, and not at all without Spark', async () => {
    const events: string[] = [];
    let release = () => {};
    const sent = new Promise<void>((r) => {
      release = r;
    });
    const waiting = sparkHeadStart({ sparkSent: { sent, release } }).then(() => events.push('read'));
    await Promise.resolve();
    events.push('sent');
    release();
    await waiting;
    expect(events).toEqual(['sent', 'read']);
    // Never released (a host-key question on a terminal, a slow link): the read goes ahead after the head start.
    await sparkHeadStart({ sparkSent: { sent: new Promise(() => {}), release: () => {} } });
    await sparkHeadStart({});
    expect(SPARK_HEAD_START_MS).toBeLessThanOrEqual(100);
  });

  it("the Spark step's prepare makes the gate and its run always opens it, even when the connect fails", async () => {
    const { ports } = fakePorts({ homeDir: '/home/op' });
    const config = {
      values: { SPARK_HOST: 'spark.example', SPARK_USER: 'op' },
      issues: [],
      laptop: {},
      supabaseKey: 'k',
      secrets: [],
    } as unknown as LoadedConfig;
    const evidence = { now: new Date(0), rules: DEFAULT_RULES, laptop: {} } as unknown as GatherState['evidence'];
    const s: GatherState = { ports, config, evidence, db: {} as JobsDb };
    sparkStep.prepare?.(s);
    expect(s.sparkSent).toBeDefined();
    let opened = false;
    void s.sparkSent!.sent.then(() => {
      opened = true;
    });
    await sparkStep.run(s);
    await Promise.resolve();
    expect(opened).toBe(true);
  });
});
