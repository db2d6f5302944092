/**
 * Starts and stops a real sandbox for integration tests, through the same CLI an operator uses
 * (`npm run sandbox -- up|down|scenario|...`, with the shared client of sandbox/client.ts), and runs runbooks
 * against it as child processes.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { PREBUILT_ENV } from '../../lib/io/prebuilt.ts';
import {
  ROOT,
  type SandboxClient,
  type SandboxStartOptions,
  sandboxClient,
  sandboxDown,
  sandboxUp,
  TSX,
} from '../../sandbox/client.ts';
import { BUNDLE_DIR_ENV, holdUntilFileEnd, ownerPid, released, tempDir } from './run.ts';

export { ROOT } from '../../sandbox/client.ts';

/**
 * An environment for child processes: no inherited config, no CI leakage unless asked, no loader. The run's own
 * TMPDIR and state folder (test/setup/global.ts) pass through, so children never write the operator's files, and
 * so do the switch that makes a sandbox refuse to start (for the suite's own setup-failure check) and the one
 * that runs every sandbox as another PostgREST version (HD_SANDBOX_POSTGREST=12|14).
 */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LANG: 'C.UTF-8',
    NO_COLOR: '1',
    // A runbook started from its .mts runs its sources, even beside an up-to-date dist/ (npm's prepare): the
    // end-to-end tests are about the sources; the run's bundle is tested apart (`from: 'bundle'`, bundle.test.ts).
    [PREBUILT_ENV]: 'off',
  };
  for (const k of ['TMPDIR', 'XDG_STATE_HOME', 'HD_SANDBOX_FAIL_START', 'HD_SANDBOX_POSTGREST'])
    if (process.env[k]) env[k] = process.env[k];
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** A test's sandbox: the shared client, with SQL answering its rows, and `down` for a test that stops it itself. */
export interface Sandbox extends Omit<SandboxClient, 'sql'> {
  sql<T = Record<string, unknown>>(sql: string, params?: unknown[], db?: 'cloud' | 'local'): Promise<T[]>;
  down(): Promise<void>;
}

/**
 * Starts a sandbox in a fresh folder, owned by the test run (it stops by itself if the run is killed) and held
 * by the file (stopped and removed when the file ends, if the test did not stop it). A sandbox that does not
 * start throws with the CLI's own error, so the tests that needed it fail with it.
 */
export async function startSandbox(opts: Omit<SandboxStartOptions, 'ownerPid'> = {}): Promise<Sandbox> {
  const dir = tempDir('hd-sandbox-');
  const hold = holdUntilFileEnd(() => sandboxDown(dir, cleanEnv()));
  try {
    await sandboxUp(dir, { ...opts, ownerPid: ownerPid() }, cleanEnv());
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`the sandbox did not start: ${(err.stderr ?? '').trim() || err.message}`);
  }
  const client = sandboxClient(dir);
  return {
    ...client,
    async sql<T>(sql: string, params: unknown[] = [], db: 'cloud' | 'local' = 'cloud') {
      return (await client.sql<T>(sql, params, db)).rows;
    },
    async down() {
      released(hold);
      await sandboxDown(dir, cleanEnv());
    },
  };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a runbook the way CI does: `node --import tsx runbooks/<name>.mts ...` with stdin closed. */
export function runRunbook(
  name: string,
  args: string[],
  opts: {
    env?: Record<string, string | undefined>;
    cwd?: string;
    timeoutMs?: number;
    stdin?: string;
    /**
     * `source` (default): runbooks/NAME.mts through tsx, as an operator runs it. `bundle`: the same sources bundled
     * once for this test run (test/setup/bundle.ts), ~0.3 s less CPU per start, for suites that start hundreds.
     */
    from?: 'source' | 'bundle';
  } = {},
): Promise<RunResult> {
  const bundles = process.env[BUNDLE_DIR_ENV];
  const script =
    opts.from === 'bundle' && bundles
      ? [path.join(bundles, `${name}.mjs`)]
      : ['--import', TSX, path.join(ROOT, 'runbooks', `${name}.mts`)];
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [...script, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: cleanEnv(opts.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => {
      stdout += d;
    });
    child.stderr!.on('data', (d) => {
      stderr += d;
    });
    if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
    else child.stdin!.end();
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`${name} ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 60_000} ms\n${stdout}\n${stderr}`),
      );
    }, opts.timeoutMs ?? 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
