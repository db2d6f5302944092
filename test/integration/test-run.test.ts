/**
 * The test run itself: a sandbox that does not start fails the tests that need it (counted as failed in the
 * closing line, never as skipped), and a run that is killed leaves no sandbox process behind. Each case runs
 * the fixture file test/fixtures/run/needs-sandbox.fixture.ts in a vitest of its own, with its own TMPDIR.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { processesUnder } from '../../sandbox/processes.ts';
import { tempDir } from '../helpers/run.ts';
import { cleanEnv, ROOT } from '../helpers/sandbox.ts';

const VITEST = path.join(path.dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
const CONFIG = 'test/fixtures/run/vitest.config.ts';

function vitest(
  tmp: string,
  env: Record<string, string>,
): { child: ChildProcess; output: Promise<{ code: number | null; out: string }> } {
  const child = spawn(process.execPath, [VITEST, 'run', '--config', CONFIG], {
    cwd: ROOT,
    env: { ...cleanEnv(env), TMPDIR: tmp, XDG_STATE_HOME: path.join(tmp, 'state') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  const output = new Promise<{ code: number | null; out: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, out })),
  );
  return { child, output };
}

/** A folder for the inner run's TMPDIR that PostgreSQL (as the `postgres` user, when root) can pass through. */
function runHome(prefix: string): string {
  const dir = tempDir(prefix);
  chmodSync(dir, 0o711);
  return dir;
}

async function until(what: string, check: () => boolean, limitMs = 60_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${limitMs / 1000} s: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the test run', () => {
  it('fails the tests of a file whose sandbox did not start, with the setup error, and counts them as failed', async () => {
    const tmp = runHome('hd-run-broken-');
    const { output } = vitest(tmp, { HD_SANDBOX_FAIL_START: '1' });
    const { code, out } = await output;
    expect(code, out).toBe(1);
    expect(out).toMatch(
      /^did not run: test\/fixtures\/run\/needs-sandbox\.fixture\.ts: 3 tests counted as failed: the sandbox did not start: sandbox: could not start: HD_SANDBOX_FAIL_START is set/m,
    );
    expect(out).toMatch(/^tests: 0 passed, 3 failed$/m);
    // vitest's own summary says "3 skipped"; the closing line and what precedes it must not.
    expect(out.slice(out.indexOf('did not run:'))).not.toMatch(/skipped/);
    expect(processesUnder(tmp)).toEqual([]);
  }, 120_000);

  // SIGKILL: the sandbox sees its owner gone and stops itself; a test's own process waits for the next run's sweep.
  // SIGTERM: the run stops everything working in its folder before it goes.
  it.each(['SIGKILL', 'SIGTERM'] as const)(
    'leaves no sandbox process behind when it is killed (%s) while a sandbox runs',
    async (signal: 'SIGKILL' | 'SIGTERM') => {
      const tmp = runHome('hd-run-killed-');
      const marker = path.join(tmp, 'running');
      const { child, output } = vitest(tmp, { HD_FIXTURE_HANG: marker });
      await until('the fixture reports its sandbox', () => existsSync(marker) || child.exitCode !== null, 120_000);
      expect(existsSync(marker), (await Promise.race([output, Promise.resolve({ out: 'still running' })])).out).toBe(
        true,
      );
      const running = JSON.parse(readFileSync(marker, 'utf8')) as { sandbox: string; own: number };
      // PostgreSQL, the worker and the supervisor run now, in the run's folder, and the test's own process.
      expect(processesUnder(running.sandbox).length).toBeGreaterThanOrEqual(3);
      child.kill(signal);
      await output;
      if (signal === 'SIGKILL') {
        await until('every sandbox process has stopped', () => processesUnder(running.sandbox).length === 0);
        // Nothing of the run could act on SIGKILL: its own process is left to the next run, which sweeps it.
        process.kill(running.own, 'SIGKILL');
      } else {
        await until('every process of the run has stopped', () => processesUnder(tmp).length === 0);
      }
      await until('all gone', () => processesUnder(tmp).length === 0);
      expect(processesUnder(tmp)).toEqual([]);
    },
    180_000,
  );
});
