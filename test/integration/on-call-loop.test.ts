/**
 * The on-call loop in a real pseudo-terminal, as an operator walks it: hand over too early, the jobs fail again,
 * the fix is deployed, hand over again, the queue drains and the end line says so; the worker down; a misspelled
 * variable; Ctrl-C at every phase; and the demo's first screen at 80 columns.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processesUnder } from '../../sandbox/processes.ts';
import { tempDir } from '../helpers/run.ts';
import { cleanEnv, ROOT, type Sandbox, startSandbox } from '../helpers/sandbox.ts';

interface Step {
  when: RegExp;
  send: string;
}

const strip = (s: string) =>
  s
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    .replace(/\x1b\][^\x07]*\x07/g, '')
    .replace(/\r/g, '');

/**
 * Runs a command in a pseudo-terminal of `cols` × `rows` (script(1) and stty), answering as it goes: each step waits
 * for its pattern in what came AFTER the previous answer, so a question asked twice is answered twice.
 */
function pty(
  argv: string[],
  steps: Step[],
  opts: { env?: Record<string, string>; cols?: number; rows?: number; limitMs?: number } = {},
): Promise<{ code: number | null; screen: string; unanswered: number }> {
  const { cols = 120, rows = 50, limitMs = 120_000 } = opts;
  return new Promise((resolve, reject) => {
    const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const child = spawn('script', ['-q', '-e', '-c', `stty cols ${cols} rows ${rows}; exec ${quoted}`, '/dev/null'], {
      cwd: ROOT,
      env: cleanEnv({ TERM: 'xterm', ...opts.env }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let screen = '';
    let from = 0;
    const pending = [...steps];
    const onData = (d: Buffer) => {
      screen += d.toString();
      const next = pending[0];
      if (!next) return;
      const m = next.when.exec(strip(screen).slice(from));
      if (m) {
        pending.shift();
        from += m.index + m[0].length;
        setTimeout(() => child.stdin.write(next.send), 300);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pty run did not finish:\n${strip(screen)}`));
    }, limitMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, screen: strip(screen), unanswered: pending.length });
    });
  });
}

const runbook = (name: string, ...args: string[]) => [
  process.execPath,
  '--import',
  'tsx',
  path.join(ROOT, 'runbooks', `${name}.mts`),
  ...args,
];

const lastLine = (screen: string) => screen.trimEnd().split('\n').at(-1) ?? '';

describe('the on-call loop in a terminal', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startSandbox();
  });
  afterAll(async () => {
    await sb?.down();
  });

  const statuses = async (ids: string[]) =>
    (await sb.sql<{ status: string }>('select status from hd_ingestion_jobs where id = any($1::uuid[])', [ids])).map(
      (r) => r.status,
    );

  it('hand over too early, failed again; fix deployed, hand over again: done, and the end line says so (exit 0)', async () => {
    await sb.scenario('circular-metadata');
    const failed = (await sb.sql<{ id: string }>("select id from hd_ingestion_jobs where status = 'failed'")).map(
      (r) => r.id,
    );
    const handOver = [
      { when: /over to requeue \(preview first\)\?/, send: 'y' },
      { when: /Requeue \d+ jobs? in project/, send: 'y' },
    ];
    const early = await pty(runbook('debug-stuck-jobs', '--config', sb.envFile), handOver);
    expect(early.unanswered).toBe(0);
    // The gate said the fix is not deployed; the operator went ahead anyway: the jobs failed again, exit 1.
    expect(early.screen).toContain('the fix is probably not deployed yet');
    expect(early.screen).toMatch(/requeue-failed-again|failed again/);
    expect(early.code).toBe(1);
    expect(await statuses(failed)).toEqual(failed.map(() => 'failed'));

    await sb.worker('fix');
    const late = await pty(runbook('debug-stuck-jobs', '--config', sb.envFile), handOver);
    expect(late.unanswered).toBe(0);
    expect(late.screen).toContain('requeued before, and failed again since');
    expect(late.screen).toContain('resolved: ');
    expect(lastLine(late.screen)).toMatch(/\(exit 0\)$/);
    expect(late.code).toBe(0);
    expect(await statuses(failed)).toEqual(failed.map(() => 'done'));
  });

  it('the worker down: the requeue is written, nothing picks it up, verify says so (exit 1)', async () => {
    await sb.scenario('circular-metadata');
    await sb.worker('fix');
    await sb.worker('stop');
    const ids = (await sb.sql<{ id: string }>("select id from hd_ingestion_jobs where status = 'failed'")).map(
      (r) => r.id,
    );
    const r = await pty(
      runbook(
        'requeue',
        '--config',
        sb.envFile,
        '--id',
        ids.join(','),
        '--reason',
        'fix deployed',
        '--apply',
        '--verify',
        '4',
      ),
      [{ when: /Requeue \d+ jobs? in project/, send: 'y' }],
    );
    expect(r.screen).toContain('[requeue-not-picked-up]');
    expect(lastLine(r.screen)).toMatch(
      /requeued \d+ of \d+ jobs; watched \d+ s: 0 done, 0 failed again, \d+ still queued \(exit 1\)$/,
    );
    expect(r.code).toBe(1);
    await sb.worker('start');
  });

  it('SPARK_PROT for SPARK_PORT: the misspelling is the first finding, the connection failure comes after it', async () => {
    await sb.scenario('healthy');
    const config = path.join(tempDir('hd-loop-'), '.env');
    // On 127.0.0.2 nothing of this sandbox listens on the default port (in real life: another host, or none).
    const text = readFileSync(sb.envFile, 'utf8').replace(/^SPARK_PORT=/m, 'SPARK_PROT=');
    writeFileSync(config, text.replace(/^SPARK_HOST=.*$/m, 'SPARK_HOST=127.0.0.2'), { mode: 0o600 });
    const r = await pty(runbook('debug-stuck-jobs', '--config', config), [
      // Whatever answers on the default port is not trusted blindly: No.
      { when: /Trust SHA256:\S+ for this run\?/, send: 'n' },
    ]);
    const findings = r.screen.slice(r.screen.indexOf('\nFindings'));
    expect(findings).toMatch(/\n1\. \S+ .*\[config-warning\]/);
    expect(findings).toContain('SPARK_PROT');
    expect(findings).toContain('probably because of SPARK_PROT');
    expect(r.code, r.screen).toBe(2);
  });

  describe('Ctrl-C', () => {
    it('while gathering: what was gathered is shown, nothing is asked, exit 3', async () => {
      await sb.scenario('circular-metadata');
      await sb.controls({ latencyMs: 2500 });
      try {
        const r = await pty(runbook('debug-stuck-jobs', '--config', sb.envFile), [
          { when: /debug-stuck-jobs · /, send: '\x03' },
        ]);
        expect(r.screen).toContain('stopping: finishing what is in flight');
        expect(r.screen).not.toContain('over to requeue');
        expect(r.code).toBe(3);
      } finally {
        await sb.controls({ latencyMs: 0 });
      }
    });

    it('twice: quits at once, exit 130', async () => {
      await sb.scenario('circular-metadata');
      await sb.controls({ latencyMs: 4000 });
      try {
        const r = await pty(runbook('diagnose-env', '--config', sb.envFile), [
          { when: /diagnose-env · /, send: '\x03' },
          { when: /stopping: finishing what is in flight/, send: '\x03' },
        ]);
        expect(r.code).toBe(130);
      } finally {
        await sb.controls({ latencyMs: 0 });
      }
    });

    it('at the requeue confirmation: stopped, nothing written, exit 3', async () => {
      await sb.scenario('circular-metadata');
      await sb.resetStats();
      const ids = (await sb.sql<{ id: string }>("select id from hd_ingestion_jobs where status = 'failed'")).map(
        (r) => r.id,
      );
      const r = await pty(
        runbook('requeue', '--config', sb.envFile, '--id', ids.join(','), '--reason', 'x', '--apply'),
        [{ when: /Requeue \d+ jobs? in project/, send: '\x03' }],
      );
      expect(r.screen).toContain('stopped: at your request');
      expect(r.code).toBe(3);
      expect((await sb.stats()).httpWrites).toBe(0);
    });

    it('while the requeue watches its jobs: the writes stand, the end line says stopped, exit 3', async () => {
      await sb.scenario('circular-metadata');
      await sb.worker('stop');
      const ids = (await sb.sql<{ id: string }>("select id from hd_ingestion_jobs where status = 'failed'")).map(
        (r) => r.id,
      );
      const r = await pty(
        runbook('requeue', '--config', sb.envFile, '--id', ids.join(','), '--reason', 'x', '--apply', '--verify', '60'),
        [
          { when: /Requeue \d+ jobs? in project/, send: 'y' },
          { when: /Verify: watching/, send: '\x03' },
        ],
      );
      expect(r.code).toBe(3);
      expect(await statuses(ids)).toEqual(ids.map(() => 'queued'));
      await sb.worker('start');
    });
  });
});

describe('the demo in an 80-column terminal', () => {
  it('the first finding, its fix and the next steps fit on the screen the question is asked on', async () => {
    const r = await pty(
      [process.execPath, '--import', 'tsx', path.join(ROOT, 'sandbox', 'demo.mts')],
      [{ when: /over to requeue \(preview first\)\?/, send: 'n' }],
      { cols: 80, rows: 50, limitMs: 240_000 },
    );
    expect(r.unanswered).toBe(0);
    const upToQuestion = r.screen.slice(0, r.screen.search(/\? Hand the \d+ job/));
    // The rows a terminal of 80 columns shows: a longer line (a pasteable command) folds onto the next rows.
    const rows = upToQuestion.split('\n').flatMap((l) => (l.length <= 80 ? [l] : (l.match(/.{1,80}/g) ?? [])));
    // The question takes the last rows of the 50 (it may wrap); what is above it is what the operator sees.
    const question = /\? Hand the [^\n]*?\(y\/N\)/.exec(r.screen)?.[0] ?? '';
    expect(question).not.toBe('');
    const screen = rows.slice(-(50 - Math.ceil(question.length / 80))).join('\n');
    expect(screen).toMatch(/(?:^|\n)1\. CRITICAL /);
    const first = screen.slice(screen.search(/(?:^|\n)1\. CRITICAL /));
    expect(first).toMatch(/\n {3}fix: /);
    const steps = screen.slice(screen.indexOf('\nNext steps\n'));
    expect(steps).toMatch(/\n1\. Fix \[local-supabase-target\]: /);
    expect(steps).toMatch(/\n\d\. Requeue the \d+ job\(s\) of \[circular-metadata\]:/);
    // Nothing the runbook prints is cut mid-word: only a pasteable command may be longer than the terminal.
    const runbookOutput = upToQuestion.slice(upToQuestion.indexOf('debug-stuck-jobs · '));
    for (const l of runbookOutput.split('\n')) if (l.length > 80) expect(l).toMatch(/npx zx |ssh /);
    expect(r.code).toBe(1);
  });

  it('Ctrl-C at its question: the runbook stops (exit 3), the sandbox is stopped and its folder gone', async () => {
    const r = await pty(
      [process.execPath, '--import', 'tsx', path.join(ROOT, 'sandbox', 'demo.mts')],
      [{ when: /over to requeue \(preview first\)\?/, send: '\x03' }],
      { limitMs: 240_000 },
    );
    const dir = /Starting a sandbox with both known failures in (\S+) \.\.\./.exec(r.screen)?.[1] ?? '';
    expect(dir).not.toBe('');
    expect(r.screen).toContain('stopped: at your request');
    expect(r.code).toBe(3);
    expect(existsSync(dir)).toBe(false);
    expect(processesUnder(dir)).toEqual([]);
  });

  it('Ctrl-C while the sandbox starts: stopped, its folder gone, nothing left running (exit 130)', async () => {
    const r = await pty(
      [process.execPath, '--import', 'tsx', path.join(ROOT, 'sandbox', 'demo.mts')],
      [{ when: /Starting a sandbox with both known failures in \S+ \.\.\./, send: '\x03' }],
      { limitMs: 240_000 },
    );
    const dir = /Starting a sandbox with both known failures in (\S+) \.\.\./.exec(r.screen)?.[1] ?? '';
    expect(dir).not.toBe('');
    expect(r.code).toBe(130);
    expect(existsSync(dir)).toBe(false);
    expect(processesUnder(dir)).toEqual([]);
  });
});
