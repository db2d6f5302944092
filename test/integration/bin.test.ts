/** `hd-runbooks`: the runbooks from any folder (Node 20 needs tsx's loader, which the bin registers itself). */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/run.ts';
import { cleanEnv, ROOT } from '../helpers/sandbox.ts';

const BIN = path.join(ROOT, 'bin', 'hd-runbooks.mjs');

/** Runs the bin from a folder outside the repository, with no NODE_OPTIONS (no loader from .npmrc). */
function hd(args: string[]) {
  const cwd = tempDir('hd-bin-');
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    env: cleanEnv({ NODE_OPTIONS: undefined, CI: '1' }),
    encoding: 'utf8',
    input: '',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('hd-runbooks, from a folder outside the repository', () => {
  it.each([
    ['debug', 'Usage: npx zx runbooks/debug-stuck-jobs.mts'],
    ['diagnose', 'Usage: npx zx runbooks/diagnose-env.mts'],
    ['requeue', 'Usage: npx zx runbooks/requeue.mts'],
  ])('%s --help prints the runbook’s own help', (name, first) => {
    const r = hd([name, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toContain(first);
    expect(r.stderr).toBe('');
  });

  it('runs the runbook itself: its own one-line error and exit code (a config file that does not exist)', () => {
    const r = hd(['diagnose', '--config', 'missing.env']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: config file \S*missing\.env: no such file\n {2}fix: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('an unknown runbook: one line with a suggestion, exit 2; no argument: the list', () => {
    const r = hd(['diagnos']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: no runbook "diagnos" (did you mean diagnose?)\n  fix: hd-runbooks diagnose --help; the runbooks are debug, requeue, diagnose, watch\n',
    );
    const list = hd([]);
    expect(list.code).toBe(2);
    expect(list.stdout).toContain('debug      which jobs are stuck');
  });
});
