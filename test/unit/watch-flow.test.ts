/**
 * The watch flow with fake ports, the memory db and a fake clock: --once and its exit code, --for, Ctrl-C (the stop
 * signal), the redraw on a screen, a failed read, the flags; and the worker's command on a session, run by bash on
 * this machine (the probe's own sections, against this machine's /proc).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT, RunbookError } from '../../lib/core/exit-codes.ts';
import type { RemoteResult, SshSession } from '../../lib/core/ports.ts';
import { configStep } from '../../lib/evidence/gather.ts';
import { buildWatchWorkerScript, parseWatchWorker, readWorker } from '../../lib/evidence/watch-worker.ts';
import { runWatch, WATCH_LIST_LIMIT, watchSettings } from '../../lib/flows/watch.ts';
import type { Job } from '../../lib/io/jobs-db.ts';
import { ChannelShell } from '../../lib/io/ssh/shell.ts';
import { check } from '../../lib/io/steps.ts';
import { fakePorts, opaqueKey } from '../helpers/fake-ports.ts';
import { FakeChannel, fakeLink, localBashLink } from '../helpers/local-shell.ts';
import { createMemoryJobsDb, type MemoryJobsDb, NETWORK_TIMEOUT } from '../helpers/memory-db.ts';
import { tempDir } from '../helpers/run.ts';

const NOW = '2026-03-10T12:00:00Z';
const ago = (s: number) => new Date(Date.parse(NOW) - s * 1000).toISOString();
const ENV = {
  SUPABASE_URL: 'https://abcdefghijklmnopqrst.supabase.co',
  SUPABASE_SERVICE_ROLE_KEY: opaqueKey('secret'),
};

let n = 0;
function job(db: MemoryJobsDb, over: Partial<Job>): Job {
  n++;
  return db.insert({ id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, attempts: 0, ...over });
}

function setup(db: MemoryJobsDb, env: Record<string, string> = {}) {
  return fakePorts({ env: { ...ENV, ...env }, now: NOW, openDb: () => db });
}

/** A backlog of `k` queued jobs that a fake worker finishes one per read. */
function drainingDb(k: number): MemoryJobsDb {
  const db = createMemoryJobsDb();
  for (let i = 0; i < k; i++) job(db, { status: 'queued', created_at: ago(120 - i) });
  db.afterRead = () => {
    const next = [...db.jobs.values()].find((j) => j.status === 'queued');
    if (next) Object.assign(next, { status: 'done', started_at: ago(5), finished_at: ago(1) });
  };
  return db;
}

describe('watch --once', () => {
  it('prints one refresh and exits 0; --json - writes the document to stdout', async () => {
    const db = drainingDb(3);
    const f = setup(db);
    const code = await runWatch(f.ports, { once: true, json: '-' });
    expect(code).toBe(EXIT.ok);
    expect(db.calls.filter((c) => c.method === 'watchReads')).toHaveLength(1);
    const text = f.output.text();
    expect(text).toContain('queued 3 · pending 0 · running 0 · failed 0 · done 0');
    expect(text).toContain('worker: Spark is not configured (SPARK_HOST unset): the queue only');
    expect(text).not.toContain('watched');
    const doc = JSON.parse(f.stdout.join(''));
    expect(doc).toMatchObject({ runbook: 'watch', exitCode: 0, stalled: false, counts: { queued: 3 }, backlog: 3 });
    expect(doc.worker).toEqual({ state: 'not-configured', line: expect.stringContaining('SPARK_HOST unset') });
  });

  it('exits 1 when the queue is stalled (queued over the rule, nothing done in the window)', async () => {
    const db = createMemoryJobsDb();
    job(db, { status: 'queued', created_at: ago(3600) });
    const f = setup(db);
    expect(await runWatch(f.ports, { once: true, json: '/out/watch.json' })).toBe(EXIT.findings);
    expect(f.output.text()).toContain('STALLED');
    expect(JSON.parse(f.files.store.get('/out/watch.json')!)).toMatchObject({ exitCode: 1, stalled: true });
  });

  it('a queue that cannot be read: one line and its fix (exit 2 by the entry)', async () => {
    const db = createMemoryJobsDb();
    db.failRead = () => NETWORK_TIMEOUT;
    const err = await runWatch(setup(db).ports, { once: true }).catch((e) => e);
    expect(err).toBeInstanceOf(RunbookError);
    expect(err).toMatchObject({ message: `the queue could not be read: ${NETWORK_TIMEOUT.message}`, code: 2 });
  });
});

describe('a live watch', () => {
  it('--for: refreshes every --every seconds, then the line saying what was seen', async () => {
    const db = drainingDb(4);
    const f = setup(db);
    const code = await runWatch(f.ports, { every: '5', for: '20' });
    expect(code).toBe(EXIT.ok);
    // At 0, 5, 10, 15 and 20 s; the worker finished one job after each read.
    expect(db.calls.filter((c) => c.method === 'watchReads')).toHaveLength(5);
    expect(f.clock.sleeps).toEqual([5000, 5000, 5000, 5000]);
    const text = f.output.text();
    expect(text.match(/^watch · /gm)).toHaveLength(5);
    expect(text).toContain('watched 20 s (5 refreshes): backlog 4 → 0, drained; 4 done, 0 failed meanwhile');
  });

  it('Ctrl-C (the stop signal) while it waits: the end line, exit 0, no further read', async () => {
    const db = drainingDb(10);
    const stop = new AbortController();
    const f = setup(db);
    const sleep = f.clock.sleep;
    f.ports.clock = {
      now: f.clock.now,
      sleep: async (ms) => {
        await sleep(ms);
        if (f.clock.sleeps.length === 2) stop.abort();
      },
    };
    expect(await runWatch(f.ports, {}, { stop: stop.signal })).toBe(EXIT.ok);
    expect(db.calls.filter((c) => c.method === 'watchReads')).toHaveLength(2);
    expect(f.output.text()).toContain(
      'watched 10 s (2 refreshes): backlog 10 → 9, draining; 1 done, 0 failed meanwhile',
    );
  });

  it('Ctrl-C during a refresh does not wait for it', async () => {
    const db = drainingDb(10);
    const stop = new AbortController();
    let reads = 0;
    db.afterRead = () => {
      if (++reads === 2) stop.abort();
    };
    const f = setup(db);
    expect(await runWatch(f.ports, {}, { stop: stop.signal })).toBe(EXIT.ok);
    expect(reads).toBe(2);
    // The second refresh was left unfinished: it is neither drawn nor counted.
    expect(f.output.text().match(/^watch · /gm)).toHaveLength(1);
    expect(f.output.text()).toContain('watched 5 s (1 refresh): backlog 10 → 10, not draining');
  });

  it('on a screen, clears it before each block; every line still goes through the output port', async () => {
    const db = drainingDb(1);
    let clears = 0;
    const f = setup(db);
    await runWatch(f.ports, { every: '1', for: '2' }, { screen: { clear: () => clears++ } });
    expect(clears).toBe(3);
    expect(f.stdout).toEqual([]);
    expect(f.output.text()).toContain('· every 1 s · Ctrl-C to leave');
  });

  it('a failed read mid-watch is shown, and the next refresh reads again', async () => {
    const db = drainingDb(2);
    let reads = 0;
    db.failRead = () => (++reads === 2 ? NETWORK_TIMEOUT : undefined);
    const f = setup(db);
    expect(await runWatch(f.ports, { every: '1', for: '2' })).toBe(EXIT.ok);
    const text = f.output.text();
    expect(text).toContain(`queue: could not read it: ${NETWORK_TIMEOUT.message}`);
    expect(text).toContain('(3 refreshes): backlog 2 → 1');
  });
});

describe('flags', () => {
  it.each([
    [{ every: '0' }, /--every must be seconds between 1 and 3600/],
    [{ every: '5s' }, /--every must be seconds/],
    [{ for: '-1' }, /--for must be seconds between 1 and 86400/],
    [{ once: true, for: '10' }, /--once and --for both given/],
  ])('%j is a usage error', (flags, message) => {
    expect(() => watchSettings(flags)).toThrow(message);
  });

  it('defaults to every 5 s, until stopped', () => {
    expect(watchSettings({})).toEqual({ everyMs: 5000, forMs: undefined, once: false });
  });
});

/** A stand-in worker's environment: without the test runner's NODE_OPTIONS (its loader), which would end it at once. */
const WORKER_ENV = { ...process.env, NODE_OPTIONS: '' };

/** A session whose commands run in bash on this machine: the worker's command against this machine's /proc. */
function localSession(): SshSession & { execs: number } {
  const s = {
    execs: 0,
    target: { host: 'localhost', port: 22, user: 'me', source: 'test' },
    hostKeyFingerprint: 'SHA256:test',
    exec: (command: string, o: { stdin?: string; maxBytes?: number } = {}) =>
      new Promise<RemoteResult>((resolve) => {
        s.execs++;
        // In a session of its own, as sshd runs a command: apart from the stand-in worker this test starts.
        const r = spawnSync('setsid', ['bash', '-s'], { input: o.stdin, encoding: 'utf8' });
        expect(command).toBe('bash -s');
        expect(Buffer.byteLength(r.stdout)).toBeLessThanOrEqual(o.maxBytes ?? Number.POSITIVE_INFINITY);
        resolve({ code: r.status, stdout: r.stdout, stderr: r.stderr, truncated: false });
      }),
    close: async () => {},
  };
  return s;
}

/** A worker folder with a log, and a stand-in worker running its script there (kill it when done). */
function standInWorker() {
  const dir = tempDir('hd-watch-worker-');
  mkdirSync(path.join(dir, 'logs'));
  writeFileSync(path.join(dir, 'logs', 'worker.log'), 'poll\n');
  writeFileSync(path.join(dir, 'worker.mjs'), 'setInterval(() => {}, 1000);\n');
  const child = spawn(process.execPath, [path.join(dir, 'worker.mjs')], { cwd: dir, stdio: 'ignore', env: WORKER_ENV });
  return { dir, child };
}

describe("the worker's command on the open connection", () => {
  it('finds the process working in the folder and the log, with the probe’s own identification', async () => {
    const { dir, child } = standInWorker();
    try {
      const session = localSession();
      const reading = await readWorker(
        session,
        { now: () => new Date(), sleep: async () => {} },
        {
          workerDir: dir,
          timeoutMs: 10_000,
        },
      );
      expect(session.execs).toBe(1);
      expect(reading).toMatchObject({ status: 'ok', dir: { exists: true } });
      if (reading.status !== 'ok') return;
      expect(reading.processes.map((p) => p.pid)).toEqual([child.pid]);
      expect(reading.logWrittenAt).toBeInstanceOf(Date);
    } finally {
      child.kill();
    }
  });

  it('on a shell: refreshes in a row on one channel and no exec, the same reading as the exec gives', async () => {
    const { dir, child } = standInWorker();
    const link = localBashLink();
    const shell = new ChannelShell(link, 10_000);
    const clock = { now: () => new Date(), sleep: async () => {} };
    try {
      const session = localSession();
      const readings = [];
      for (let i = 0; i < 3; i++)
        readings.push(await readWorker(session, clock, { workerDir: dir, timeoutMs: 10_000, shell }));
      const viaExec = await readWorker(session, clock, { workerDir: dir, timeoutMs: 10_000 });
      expect(session.execs).toBe(1);
      expect(link.children).toHaveLength(1);
      for (const reading of [...readings, viaExec]) {
        expect(reading).toMatchObject({ status: 'ok', dir: { exists: true }, logWrittenAt: expect.any(Date) });
        if (reading.status === 'ok') expect(reading.processes.map((p) => p.pid)).toEqual([child.pid]);
      }
    } finally {
      shell.close();
      child.kill();
    }
  });

  it('on a shell: a timeout, a lost connection, too much output are unknown with the reasons of the exec', async () => {
    const link = fakeLink();
    const shell = new ChannelShell(link, 10_000);
    const clock = { now: () => new Date(), sleep: async () => {} };
    const session = localSession();
    const read = () => readWorker(session, clock, { workerDir: '/srv/w', timeoutMs: 30, shell });
    expect(await read()).toEqual({ status: 'unknown', reason: 'Spark did not answer within 0 s' });
    const flooded = read();
    await new Promise((r) => setImmediate(r));
    link.channels[1].emit('data', Buffer.alloc(20_000, 0x61));
    expect(await flooded).toEqual({ status: 'unknown', reason: 'the command on Spark was cut short' });
    const lost = read();
    await new Promise((r) => setImmediate(r));
    link.lose('connection lost: read ECONNRESET');
    expect(await lost).toMatchObject({
      status: 'unknown',
      reason: expect.stringMatching(/^the connection to Spark was lost: [\s\S]*ECONNRESET/),
    });
    expect(link.channels.map((c) => c.closed)).toEqual([true, true, true]);
    expect(session.execs).toBe(0);
  });

  it('an answer cut short is unknown, never "no worker"', () => {
    const marker = '@@m@@';
    const script = buildWatchWorkerScript('/srv/hd-worker', marker);
    expect(script).toContain('M=@@m@@');
    expect(parseWatchWorker(`\n${marker} tools\n\n${marker} process\n`, marker, '/x', new Date())).toEqual({
      status: 'unknown',
      reason: 'the command on Spark was cut short',
    });
    expect(parseWatchWorker(`\n${marker} tools\nps\n\n${marker} end\n`, marker, '/x', new Date())).toMatchObject({
      status: 'unknown',
      reason: 'ps not installed on Spark',
    });
  });

  it('a live watch sends every refresh’s command to one shell, closed when the watch ends; no shell: exec', async () => {
    for (const withShell of [true, false]) {
      const link = fakeLink();
      const opened: ChannelShell[] = [];
      let closed = 0;
      const session: SshSession & { execs: number } = localSession();
      if (withShell)
        session.shell = () => {
          const shell = new ChannelShell(link, 10_000);
          const close = shell.close.bind(shell);
          shell.close = () => {
            closed++;
            close();
          };
          opened.push(shell);
          return shell;
        };
      if (withShell)
        link.open = (input, done) => {
          // Spark answers each script at once with a whole, empty reading.
          const channel = new FakeChannel();
          link.channels.push(channel);
          channel.write = (data: string) => {
            channel.written.push(data);
            const marker = /M='?(@@hd-watch-[0-9a-f]+@@)/.exec(data)?.[1];
            setImmediate(() => channel.answer(`\n${marker} tools\n\n${marker} end\n`));
            return true;
          };
          channel.write(input);
          queueMicrotask(() => done(undefined, channel));
        };
      const f = setup(drainingDb(2), { SPARK_HOST: 'spark' });
      const steps = [
        configStep,
        {
          id: 'spark',
          title: 'Connect to Spark',
          run: async (state: { session?: SshSession }) => {
            state.session = session;
            return check('spark-connect', 'Connect to Spark', 'ok', 'fake');
          },
        },
      ];
      expect(await runWatch(f.ports, { every: '1', for: '3' }, { steps })).toBe(EXIT.ok);
      expect(f.output.text()).toContain('(4 refreshes)');
      if (withShell) {
        expect({ shells: opened.length, closed, channels: link.channels.length, execs: session.execs }).toEqual({
          shells: 1,
          closed: 1,
          channels: 1,
          execs: 0,
        });
        expect(link.channels[0].tokens()).toHaveLength(4);
      } else expect(session.execs).toBe(4);
    }
  });

  it('lists at most WATCH_LIST_LIMIT rows per read', () => {
    expect(WATCH_LIST_LIMIT).toBeLessThanOrEqual(100);
  });
});
