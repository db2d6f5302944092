import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RemoteResult, SshSession } from '../../lib/core/ports.ts';
import { buildProbeScript, parseProbeOutput, probeSpark, remotePathExpr } from '../../lib/evidence/spark-probe.ts';
import { parseEnvText } from '../../lib/io/env-file.ts';
import { fakeClock } from '../helpers/fake-ports.ts';
import { tempDir } from '../helpers/run.ts';

const MARKER = '@@hd-probe-0123456789abcdef@@';
const MIDPOINT = new Date('2026-01-15T12:00:00Z');
const NOW_NS = `${MIDPOINT.getTime() + 3_000}000000`; // Spark 3 s ahead
const OPTS = { workerDir: '~/srv/hd-worker', laptopMidpoint: MIDPOINT, logTailBytes: 1000 };
const WORKER_DIR = '/home/sparkuser/srv/hd-worker';

/** The probe's stdout as the script prints it: each section is "\n<marker> <name>\n" then the command's output. */
function probeOutput(sections: Record<string, string>, marker = MARKER): string {
  return Object.entries(sections)
    .map(([name, body]) => `\n${marker} ${name}\n${body}`)
    .join('');
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

const HEALTHY: Record<string, string> = {
  now: `${NOW_NS}\n`,
  dir: `${WORKER_DIR}\n`,
  env: `${b64('SUPABASE_URL=https://abcdefghijklmnopqrst.supabase.co\nWORKER_POLL_MS=2000\n')}\n`,
  process: ` 4242     1    3600 sparkuser                        node worker.mjs\n 4243  4242      60 sparkuser                        python -m hd_worker --dir /home/sparkuser/srv/hd-worker\n`,
  procstart: '',
  // As the supervisor section prints it for a process under a systemd unit: pid, unit, user unit, container, parents.
  supervisor: '4242\thd-worker.service\t0\t-\tsystemd\n',
  logstat: '500 1768478340\n',
  logtail: '2026-01-15T11:59:00Z INFO poll queued=0\n2026-01-15T11:59:02Z INFO poll queued=0\n',
  disk: '/dev/nvme0n1p2 960000000 480000000 480000000 50% /\n',
  reach: 'http 200 0.123\n',
  end: '',
};

describe('parseProbeOutput', () => {
  it('reads every section of a healthy probe', () => {
    const ev = parseProbeOutput(probeOutput(HEALTHY), MARKER, OPTS);
    expect(ev.sparkNow?.toISOString()).toBe('2026-01-15T12:00:03.000Z');
    expect(ev.clockSkewMs).toBe(3_000);
    expect(ev.workerDir).toEqual({ path: WORKER_DIR, exists: true });
    expect(ev.env).toEqual({
      status: 'ok',
      vars: { SUPABASE_URL: 'https://abcdefghijklmnopqrst.supabase.co', WORKER_POLL_MS: '2000' },
    });
    expect(ev.processes).toEqual([
      {
        pid: 4242,
        ppid: 1,
        user: 'sparkuser',
        elapsedSeconds: 3600,
        startedAt: new Date('2026-01-15T11:00:03Z'),
        args: 'node worker.mjs',
      },
      {
        pid: 4243,
        ppid: 4242,
        user: 'sparkuser',
        elapsedSeconds: 60,
        startedAt: new Date('2026-01-15T11:59:03Z'),
        args: 'python -m hd_worker --dir /home/sparkuser/srv/hd-worker',
      },
    ]);
    expect(ev.log).toEqual({
      status: 'ok',
      size: 500,
      modifiedAt: new Date(1_768_478_340_000),
      tail: ['2026-01-15T11:59:00Z INFO poll queued=0', '2026-01-15T11:59:02Z INFO poll queued=0'],
      truncated: false,
    });
    expect(ev.disk).toEqual({ availableKb: 480_000_000, usedPercent: 50, mount: '/' });
    expect(ev.reach).toEqual({ status: 'ok', httpStatus: 200, seconds: 0.123 });
    expect(ev.missingSections).toEqual([]);
  });

  it('lists the sections a cut-short output did not deliver, and assumes nothing from them', () => {
    const { now, dir, env, process } = HEALTHY;
    const ev = parseProbeOutput(probeOutput({ now, dir, env, process }), MARKER, OPTS);
    expect(ev.missingSections).toEqual(['procstart', 'supervisor', 'logstat', 'logtail', 'disk', 'reach', 'end']);
    expect(ev.log).toEqual({ status: 'missing', tail: [] });
    expect(ev.disk).toBeUndefined();
    expect(ev.reach).toEqual({ status: 'skipped', reason: 'not reached' });
    expect(ev.processes).toHaveLength(2);
  });

  it('makes nothing of an empty output', () => {
    const ev = parseProbeOutput('', MARKER, OPTS);
    expect(ev.missingSections).toHaveLength(11);
    expect(ev.sparkNow).toBeUndefined();
    expect(ev.clockSkewMs).toBeUndefined();
    expect(ev.workerDir).toEqual({ path: '~/srv/hd-worker', exists: false });
    expect(ev.env.status).toBe('missing');
    expect(ev.processes).toEqual([]);
  });

  it('drops the first, partial line of a log tail cut by bytes', () => {
    const ev = parseProbeOutput(
      probeOutput({
        ...HEALTHY,
        logstat: '250000 1768478340\n',
        logtail: 'queued=0\n2026-01-15T11:59:00Z INFO a\n2026-01-15T11:59:02Z INFO b\n',
      }),
      MARKER,
      OPTS,
    );
    expect(ev.log.status).toBe('ok');
    expect(ev.log.tail).toEqual(['2026-01-15T11:59:00Z INFO a', '2026-01-15T11:59:02Z INFO b']);
    expect(ev.log.status === 'ok' && ev.log.truncated).toBe(true);
  });

  it('keeps the first line of a log that fits in the tail', () => {
    const ev = parseProbeOutput(
      probeOutput({ ...HEALTHY, logstat: '60 1768478340\n', logtail: 'first\nsecond\n' }),
      MARKER,
      OPTS,
    );
    expect(ev.log.tail).toEqual(['first', 'second']);
  });

  it('reads a missing log, a missing worker folder and a missing or unreadable .env', () => {
    const missing = parseProbeOutput(
      probeOutput({ ...HEALTHY, dir: '-\n', env: 'missing\n', logstat: 'missing\n', logtail: '' }),
      MARKER,
      OPTS,
    );
    expect(missing.workerDir).toEqual({ path: '~/srv/hd-worker', exists: false });
    expect(missing.env).toEqual({ status: 'missing' });
    expect(missing.log).toEqual({ status: 'missing', tail: [] });
    const unreadable = parseProbeOutput(probeOutput({ ...HEALTHY, env: 'unreadable\n' }), MARKER, OPTS);
    expect(unreadable.env).toEqual({ status: 'unreadable' });
  });

  it('decodes a .env with quotes, export and a multi-line value', () => {
    const text =
      'export SUPABASE_URL="https://x.supabase.co"\n# comment\nSUPABASE_SERVICE_ROLE_KEY=\'abc def\'\nPEM="a\nb"\n';
    const ev = parseProbeOutput(probeOutput({ ...HEALTHY, env: `${b64(text)}\n` }), MARKER, OPTS);
    expect(ev.env).toEqual({
      status: 'ok',
      vars: { SUPABASE_URL: 'https://x.supabase.co', SUPABASE_SERVICE_ROLE_KEY: 'abc def', PEM: 'a\nb' },
    });
  });

  const reaches: [name: string, body: string, expected: unknown][] = [
    [
      'a curl error line before http 000',
      'curl: (6) Could not resolve host: abcdefghijklmnopqrst.supabase.co\nhttp 000 0.004\n',
      { status: 'failed', message: 'Could not resolve host: abcdefghijklmnopqrst.supabase.co' },
    ],
    ['http 000 without a curl line', 'http 000 0.000\n', { status: 'failed', message: 'no HTTP answer' }],
    ['http 401', 'http 401 0.080\n', { status: 'http-error', httpStatus: 401, seconds: 0.08 }],
    ['http 503', 'http 503 1.5\n', { status: 'http-error', httpStatus: 503, seconds: 1.5 }],
    ['http 204', 'http 204 0.01\n', { status: 'ok', httpStatus: 204, seconds: 0.01 }],
    ['a skip without a URL', 'skipped no-url\n', { status: 'skipped', reason: 'no-url' }],
    ['a skip without curl', 'skipped no-curl\n', { status: 'skipped', reason: 'no-curl' }],
    [
      'a bare curl error',
      'curl: (28) Operation timed out after 5001 milliseconds\n',
      { status: 'failed', message: 'Operation timed out after 5001 milliseconds' },
    ],
    ['an empty section', '', { status: 'failed', message: 'no answer' }],
  ];
  it.each(reaches)('reads the reach section with %s', (_name, body, expected) => {
    expect(parseProbeOutput(probeOutput({ ...HEALTHY, reach: body }), MARKER, OPTS).reach).toEqual(expected);
  });

  it('dates a process precisely from /proc when procstart has it, and from etimes otherwise', () => {
    // 100 ticks a second; uptime 5000.5 s; pid 4242 started at tick 140000 (1400 s after boot).
    const ev = parseProbeOutput(
      probeOutput({ ...HEALTHY, procstart: `100\n5000.50\n${NOW_NS}\n4242 140000\n` }),
      MARKER,
      OPTS,
    );
    expect(ev.processes[0].elapsedSeconds).toBeCloseTo(3600.5, 6);
    expect(ev.processes[0].startedAt).toEqual(new Date('2026-01-15T11:00:02.500Z'));
    expect(ev.processes[1].elapsedSeconds).toBe(60);
  });

  it("does not count an operator's shell or tail -f in the worker folder as the worker", () => {
    const ev = parseProbeOutput(
      probeOutput({
        ...HEALTHY,
        process: `  900   899      30 sparkuser                        -bash\n  901   900      20 sparkuser                        tail -f logs/worker.log\n`,
        procstart: `100\n5000\n${NOW_NS}\n900 100 bash\n901 200 tail\n`,
      }),
      MARKER,
      OPTS,
    );
    expect(ev.processes).toEqual([]);
    expect(ev.ignoredProcesses).toEqual([
      { pid: 900, comm: 'bash' },
      { pid: 901, comm: 'tail' },
    ]);
  });

  it('keeps the worker when a shell sits beside it, whatever its name on the command line', () => {
    const ev = parseProbeOutput(
      probeOutput({
        ...HEALTHY,
        process: `  900   899      30 sparkuser                        -bash\n 4242     1    3600 sparkuser                        /usr/bin/python3 -m hd_worker\n`,
        procstart: `100\n5000\n${NOW_NS}\n900 100 bash\n4242 140000 python3\n`,
      }),
      MARKER,
      OPTS,
    );
    expect(ev.processes.map((p) => p.pid)).toEqual([4242]);
  });

  it('anchors a precise start to the clock read with the uptime, not to the start of the probe', () => {
    // The probe began at NOW (3 s ahead of the laptop); /proc/uptime was read 2 s later.
    const later = `${MIDPOINT.getTime() + 5_000}000000`;
    const ev = parseProbeOutput(
      probeOutput({ ...HEALTHY, procstart: `100\n5000.00\n${later}\n4242 490000\n` }),
      MARKER,
      OPTS,
    );
    // Started 100 s before the uptime reading: 5 s - 100 s after the midpoint.
    expect(ev.processes[0].startedAt).toEqual(new Date(MIDPOINT.getTime() + 5_000 - 100_000));
  });

  it('falls back to etimes when procstart is garbled', () => {
    const ev = parseProbeOutput(probeOutput({ ...HEALTHY, procstart: 'getconf: error\n\n4242 x\n' }), MARKER, OPTS);
    expect(ev.processes[0].elapsedSeconds).toBe(3600);
  });

  it('ignores process lines that are not "pid ppid elapsed user args"', () => {
    const ev = parseProbeOutput(
      probeOutput({
        ...HEALTHY,
        process: `ps: error\n\n   77     1      12 sparkuser                        node w.mjs\n`,
      }),
      MARKER,
      OPTS,
    );
    expect(ev.processes.map((p) => p.pid)).toEqual([77]);
  });

  it('dates processes from the laptop clock when Spark sent no time', () => {
    const ev = parseProbeOutput(probeOutput({ ...HEALTHY, now: 'date: invalid option\n' }), MARKER, OPTS);
    expect(ev.sparkNow).toBeUndefined();
    expect(ev.processes[0].startedAt).toEqual(new Date(MIDPOINT.getTime() - 3_600_000));
  });

  it('reads a disk line whose mount point has spaces, and ignores a garbled one', () => {
    const spaced = parseProbeOutput(
      probeOutput({ ...HEALTHY, disk: '/dev/sdb1 1000 990 10 99% /mnt/big disk\n' }),
      MARKER,
      OPTS,
    );
    expect(spaced.disk).toEqual({ availableKb: 10, usedPercent: 99, mount: '/mnt/big disk' });
    expect(
      parseProbeOutput(probeOutput({ ...HEALTHY, disk: 'df: no such file\n' }), MARKER, OPTS).disk,
    ).toBeUndefined();
  });

  it('keeps a log line that imitates a section marker as log text', () => {
    const forged = [
      '2026-01-15T11:59:00Z INFO a',
      '@@hd-probe-ffffffffffffffff@@ reach',
      'http 200 0.001',
      `${MARKER}x end`,
      `prefix ${MARKER} disk`,
      '2026-01-15T11:59:02Z INFO b',
    ];
    const ev = parseProbeOutput(
      probeOutput({ ...HEALTHY, reach: 'http 503 0.2\n', logtail: `${forged.join('\n')}\n` }),
      MARKER,
      OPTS,
    );
    expect(ev.log.tail).toEqual(forged);
    expect(ev.reach).toEqual({ status: 'http-error', httpStatus: 503, seconds: 0.2 });
    expect(ev.disk).toEqual({ availableKb: 480_000_000, usedPercent: 50, mount: '/' });
    expect(ev.missingSections).toEqual([]);
  });
});

describe('remotePathExpr', () => {
  const cases: [input: string, expected: string][] = [
    ['~', '"$HOME"'],
    ['~/srv/hd-worker', '"$HOME"/srv/hd-worker'],
    ['~/my worker', `"$HOME"/'my worker'`],
    ['/srv/hd-worker', '/srv/hd-worker'],
    ['~user/x', `'~user/x'`],
    ["'; rm -rf / #", `''\\''; rm -rf / #'`],
  ];
  it.each(cases)('quotes %s as %s', (input, expected) => {
    expect(remotePathExpr(input)).toBe(expected);
  });
});

describe('the probe script, run by bash', () => {
  const tmp = tempDir('probe-test-');
  const home = path.join(tmp, 'home');
  mkdirSync(home);
  const canary = path.join(tmp, 'CANARY');
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  /** Paths an operator (or an attacker who controls SPARK_WORKER_DIR) might pass. Each names the canary file. */
  const HOSTILE = [
    `'; touch ${canary} #`,
    `~/'; touch ${canary} #`,
    `$(touch ${canary})`,
    `~/$(touch ${canary})`,
    `\`touch ${canary}\``,
    `"; touch ${canary}; echo "`,
    `a\ntouch ${canary}\nb`,
    `~/x'\n touch ${canary} \n'`,
    `$HOME/\${IFS}$(touch ${canary})`,
    `* ; touch ${canary} & `,
    `-n; touch ${canary}`,
  ];
  const ORDINARY = ['~', '~/srv/hd-worker', "~/it's here", '/srv/hd worker', '~user/x', '$HOME', '*'];

  const expand = (p: string) => (p === '~' ? home : p.startsWith('~/') ? `${home}/${p.slice(2)}` : p);
  // A script on stdin runs as sshd runs a command: in a session (and process group) of its own, apart from the
  // processes this test starts, as a worker is apart from the SSH session that probes it.
  const bash = (script: string, input?: string) =>
    execFileSync(input === undefined ? 'bash' : 'setsid', input === undefined ? ['-c', script] : ['bash', '-s'], {
      env: { PATH: process.env.PATH, HOME: home, LC_ALL: 'C' },
      cwd: tmp,
      input,
      encoding: 'utf8',
    });

  it.each([...HOSTILE, ...ORDINARY])('assigns W the literal path, with ~/ as $HOME: %j', (p) => {
    const w = bash(`W=${remotePathExpr(p)}; printf %s "$W"`);
    expect(w).toBe(expand(p));
    expect(existsSync(canary)).toBe(false);
  });

  it.each([...HOSTILE, ...ORDINARY])('builds a script bash can parse: %j', (p) => {
    const script = buildProbeScript({
      workerDir: p,
      logTailBytes: 1000,
      reachCheck: true,
      reachTimeoutSeconds: 5,
      marker: MARKER,
    });
    expect(() => execFileSync('bash', ['-n'], { input: script })).not.toThrow();
    expect(script).toContain(`\nW=${remotePathExpr(p)}\n`);
  });

  it.each(HOSTILE)('puts a hostile path nowhere in the script but the quoted W= assignment: %j', (p) => {
    const script = buildProbeScript({
      workerDir: p,
      logTailBytes: 1000,
      reachCheck: true,
      reachTimeoutSeconds: 5,
      marker: MARKER,
    });
    const assignment = `\nW=${remotePathExpr(p)}\n`;
    expect(script.replace(assignment, '\n')).not.toContain(`touch ${canary}`);
  });

  it('gathers what the parser expects from a real worker folder, and does not count itself as the worker', () => {
    const worker = path.join(home, 'srv', 'hd-worker');
    mkdirSync(path.join(worker, 'logs'), { recursive: true });
    writeFileSync(path.join(worker, '.env'), 'SUPABASE_URL=https://abcdefghijklmnopqrst.supabase.co\n');
    writeFileSync(path.join(worker, 'logs', 'worker.log'), 'line one\nline two\n');
    const stdout = bash(
      '',
      buildProbeScript({
        workerDir: '~/srv/hd-worker',
        logTailBytes: 1000,
        reachCheck: false,
        reachTimeoutSeconds: 5,
        marker: MARKER,
      }),
    );
    const ev = parseProbeOutput(stdout, MARKER, { ...OPTS, laptopMidpoint: new Date() });
    expect(ev.missingSections).toEqual([]);
    expect(ev.workerDir).toEqual({ path: worker, exists: true });
    expect(ev.env).toEqual({ status: 'ok', vars: { SUPABASE_URL: 'https://abcdefghijklmnopqrst.supabase.co' } });
    expect(ev.log).toMatchObject({ status: 'ok', size: 18, tail: ['line one', 'line two'], truncated: false });
    expect(ev.reach).toEqual({ status: 'skipped', reason: 'not-asked' });
    expect(ev.sparkNow).toBeInstanceOf(Date);
    expect(ev.disk?.mount).toMatch(/^\//);
    expect(ev.processes).toEqual([]);
  });

  describe('which process is the worker', () => {
    const real = path.join(home, 'releases', 'r1');
    const link = path.join(home, 'srv', 'current');
    mkdirSync(path.join(real, 'logs'), { recursive: true });
    mkdirSync(path.dirname(link), { recursive: true });
    symlinkSync(real, link);
    const started: ChildProcess[] = [];
    afterAll(() => {
      for (const c of started) c.kill('SIGKILL');
    });
    const idle = (cwd: string, extra: string[] = [], uid?: number) => {
      const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', ...extra], {
        cwd,
        env: { PATH: process.env.PATH },
        stdio: 'ignore',
        ...(uid === undefined ? {} : { uid, gid: uid }),
      });
      started.push(c);
      return c;
    };
    const probeOf = (workerDir: string) =>
      parseProbeOutput(
        bash(
          '',
          buildProbeScript({ workerDir, logTailBytes: 100, reachCheck: false, reachTimeoutSeconds: 5, marker: MARKER }),
        ),
        MARKER,
        { ...OPTS, laptopMidpoint: new Date() },
      );

    it('resolves a symlinked folder and a trailing slash to the real folder, and finds the worker running there', async () => {
      const worker = idle(real);
      await new Promise((r) => setTimeout(r, 200));
      for (const given of ['~/srv/current', '~/srv/current/', `${link}//`]) {
        const ev = probeOf(given);
        expect(ev.workerDir).toMatchObject({ path: real, exists: true });
        // The folder as given is kept beside it, for the evidence line.
        expect(ev.workerDir.given).toMatch(/current\/*$/);
        expect(ev.processes.map((p) => p.pid)).toContain(worker.pid);
      }
      worker.kill('SIGKILL');
    });

    it('finds a worker working in a subfolder of the folder, not one in a sibling folder named like it', async () => {
      const sub = path.join(real, 'jobs');
      const sibling = `${real}-old`;
      mkdirSync(sub, { recursive: true });
      mkdirSync(sibling, { recursive: true });
      const inside = idle(sub);
      const beside = idle(sibling);
      await new Promise((r) => setTimeout(r, 200));
      const pids = probeOf('~/srv/current').processes.map((p) => p.pid);
      expect(pids).toContain(inside.pid);
      expect(existsSync(`/proc/${beside.pid}`), 'the sibling ran while the probe looked').toBe(true);
      expect(pids).not.toContain(beside.pid);
      inside.kill('SIGKILL');
      beside.kill('SIGKILL');
    });

    it('finds a worker started from elsewhere by the script in the folder it runs', async () => {
      const script = path.join(real, 'worker.js');
      writeFileSync(script, 'setInterval(() => {}, 1000);\n');
      const c = spawn(process.execPath, [script], { cwd: tmp, env: { PATH: process.env.PATH }, stdio: 'ignore' });
      started.push(c);
      await new Promise((r) => setTimeout(r, 200));
      expect(probeOf('~/srv/current').processes.map((p) => p.pid)).toContain(c.pid);
      c.kill('SIGKILL');
    });

    it('does not take a process that only names the folder, from elsewhere, for the worker', async () => {
      const namer = idle(tmp, [real, `${real}-old`]);
      // A \`sleep\` whose command line names a file in the folder (argv[0] set, as a spoof would).
      const sleeper = spawn('bash', ['-c', `exec -a "sleep ${real}/x" sleep 300`], { cwd: tmp, stdio: 'ignore' });
      started.push(sleeper);
      await new Promise((r) => setTimeout(r, 200));
      const ev = probeOf('~/srv/current');
      // Both ran while the probe looked: not found because they are not the worker, not because they were gone.
      expect([existsSync(`/proc/${namer.pid}`), existsSync(`/proc/${sleeper.pid}`)]).toEqual([true, true]);
      expect(ev.processes.map((p) => p.pid)).not.toContain(namer.pid);
      expect(ev.processes.map((p) => p.pid)).not.toContain(sleeper.pid);
    });

    it("does not count another user's process working in the folder", async (ctx) => {
      if (process.getuid?.() !== 0) return ctx.skip('needs root to start a process as another user');
      chmodSync(tmp, 0o711);
      chmodSync(home, 0o755);
      for (const d of [path.join(home, 'releases'), real]) chmodSync(d, 0o755);
      const other = idle(real, [], 65534);
      await new Promise((r) => setTimeout(r, 200));
      const ev = probeOf('~/srv/current');
      expect(existsSync(`/proc/${other.pid}`), "the other user's process ran while the probe looked").toBe(true);
      expect(ev.processes.map((p) => p.pid)).not.toContain(other.pid);
    });
  });

  describe("the worker's .env as the reach check reads it on Spark", () => {
    const script = buildProbeScript({
      workerDir: '~/w',
      logTailBytes: 10,
      reachCheck: true,
      reachTimeoutSeconds: 1,
      marker: MARKER,
    });
    const fn = (name: string) => script.split('\n').find((l) => l.startsWith(`${name}() {`))!;
    const remote = (text: string, key: string) => {
      const w = path.join(tmp, 'envw');
      mkdirSync(w, { recursive: true });
      writeFileSync(path.join(w, '.env'), text);
      return bash(`W=${w}\n${fn('envvals')}\nenvvals ${key}`);
    };
    // The values the laptop shows come from dotenv (parseEnvText); Spark's reach check must use the same ones.
    it.each([
      ['plain', 'SUPABASE_URL=https://a.supabase.co\n'],
      ['export and spaces', '  export SUPABASE_URL = https://a.supabase.co  \n'],
      ['a comment after the value', 'SUPABASE_URL=https://a.supabase.co # the cloud project\n'],
      ['double quotes with a # inside', 'SUPABASE_URL="https://a.supabase.co/#x" # note\n'],
      ['single quotes', "SUPABASE_URL='https://a.supabase.co'\n"],
      ['CRLF line ends', 'A=1\r\nSUPABASE_URL=https://a.supabase.co\r\nB=2\r\n'],
      ['the last assignment wins', 'SUPABASE_URL=https://old.supabase.co\nSUPABASE_URL=https://new.supabase.co\n'],
      [
        'a longer name with the same start',
        'SUPABASE_URL_OLD=https://old.supabase.co\nSUPABASE_URL=https://a.supabase.co\n',
      ],
      ['absent', 'OTHER=1\n'],
    ])('%s', (_name, text) => {
      expect(remote(text, 'SUPABASE_URL')).toBe(`${parseEnvText(text).SUPABASE_URL ?? ''}\n`);
    });
  });

  it("reads the reach check's three names in one pass, each value on its line in the order asked", () => {
    const script = buildProbeScript({
      workerDir: '~/w',
      logTailBytes: 10,
      reachCheck: true,
      reachTimeoutSeconds: 1,
      marker: MARKER,
    });
    const envvals = script.split('\n').find((l) => l.startsWith('envvals() {'))!;
    const w = path.join(tmp, 'envw3');
    mkdirSync(w, { recursive: true });
    const text = "SUPABASE_SECRET_KEY=sb_secret_x\nexport SUPABASE_URL='https://a.supabase.co/'\nSUPABASE_URL_OLD=x\n";
    writeFileSync(path.join(w, '.env'), text);
    const env = parseEnvText(text);
    expect(bash(`W=${w}\n${envvals}\nenvvals SUPABASE_URL SUPABASE_SERVICE_ROLE_KEY SUPABASE_SECRET_KEY`)).toBe(
      `${env.SUPABASE_URL}\n\n${env.SUPABASE_SECRET_KEY}\n`,
    );
    // No .env: nothing, and the three reads find them empty.
    expect(bash(`W=${path.join(tmp, 'none')}\n${envvals}\nenvvals SUPABASE_URL`)).toBe('');
  });

  it('never runs the canary, whichever path was tried', () => {
    expect(existsSync(canary)).toBe(false);
  });
});

describe('probeSpark', () => {
  it('sends the script on stdin to `bash -s` (no path on the command line) and parses the answer', async () => {
    const calls: { command: string; stdin?: string; timeoutMs?: number; maxBytes?: number }[] = [];
    const session: SshSession = {
      target: { host: 'spark', port: 2222, user: 'sparkuser', source: 'test' },
      hostKeyFingerprint: 'SHA256:test',
      exec: async (command, options = {}): Promise<RemoteResult> => {
        calls.push({ command, ...options });
        return { code: 0, stdout: probeOutput(HEALTHY), stderr: '', truncated: false };
      },
      close: async () => {},
    };
    const clock = fakeClock('2026-01-15T12:00:00Z');
    const r = await probeSpark(session, clock, {
      workerDir: "~/srv/it's",
      logTailBytes: 1000,
      reachCheck: true,
      reachTimeoutSeconds: 5,
      marker: MARKER,
    });
    expect(calls).toHaveLength(1);
    expect(calls[0].command).toBe('bash -s');
    expect(calls[0].stdin).toContain(`W="$HOME"/'srv/it'\\''s'`);
    expect(calls[0].timeoutMs).toBe(20_000);
    expect(r.exitCode).toBe(0);
    expect(r.evidence.workerDir.exists).toBe(true);
    expect(r.evidence.clockSkewMs).toBe(3_000);
  });

  it('uses a fresh random marker when none is given', async () => {
    const markers: string[] = [];
    const session: SshSession = {
      target: { host: 'spark', port: 2222, user: 'u', source: 'test' },
      hostKeyFingerprint: 'SHA256:test',
      exec: async (_c, o) => {
        markers.push(/^M=(.*)$/m.exec(o?.stdin ?? '')![1]);
        return { code: 0, stdout: '', stderr: '', truncated: false };
      },
      close: async () => {},
    };
    const options = { workerDir: '~/w', logTailBytes: 10, reachCheck: false, reachTimeoutSeconds: 1 };
    await probeSpark(session, fakeClock(), options);
    await probeSpark(session, fakeClock(), options);
    expect(markers[0]).toMatch(/^@@hd-probe-[0-9a-f]{16}@@$/);
    expect(markers[1]).not.toBe(markers[0]);
  });
});
