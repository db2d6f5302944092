/**
 * Which process is the worker, and which folder is its folder, on the sandbox's Spark (a real bash on this machine):
 * a process that only names the folder, another user's process in it, a second program of the same user there, a
 * release layout whose folder is a symlink (and a trailing slash), a worker .env with comments after values.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect } from 'vitest';
import { type Sandbox, startSandbox } from '../helpers/sandbox.ts';
import { envVariant, faultCase, insertFailed, observe, run, tempDir } from './harness.ts';

let sb: Sandbox;
const started: ChildProcess[] = [];

beforeAll(async () => {
  sb = await startSandbox();
});

afterEach(async () => {
  for (const c of started.splice(0)) c.kill('SIGKILL');
  await sb.worker('start');
});

afterAll(async () => {
  await sb?.down();
});

type Check = { id: string; status: string; summary: string };
const checksOf = (r: { report?: Record<string, unknown> }) => (r.report?.checks ?? []) as Check[];
const findingIds = (r: { report?: { findings: Array<{ id: string }> } }) => r.report?.findings.map((f) => f.id) ?? [];

/** An idle node process: `argv0` shown as its command line, in `cwd`, as `uid` when given. */
function idle(cwd: string, argv0?: string, uid?: number): ChildProcess {
  const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
    cwd,
    env: { PATH: process.env.PATH },
    stdio: 'ignore',
    ...(argv0 ? { argv0 } : {}),
    ...(uid === undefined ? {} : { uid, gid: uid }),
  });
  started.push(c);
  return c;
}

const settle = () => new Promise((r) => setTimeout(r, 300));

describe('the worker is the worker', () => {
  faultCase(
    {
      group: 'Worker identity',
      runbook: 'diagnose-env',
      name: 'worker stopped; a process elsewhere names a file in the folder (a spoof)',
      expected: 'not taken for the worker: worker-down',
    },
    async () => {
      await sb.worker('stop');
      idle(tempDir('elsewhere'), `python ${sb.info.spark.workerDir}/worker.py`);
      await settle();
      const r = await run('diagnose-env', ['--env-file', sb.envFile]);
      expect(checksOf(r).find((c) => c.id === 'worker-process')?.status).toBe('failed');
      expect(r.code, r.stdout).toBe(1);
      observe(`exit ${r.code}; worker process: failed`);
    },
  );

  faultCase(
    {
      group: 'Worker identity',
      runbook: 'diagnose-env',
      name: "worker stopped; another user's process works in the folder",
      expected: 'not taken for the worker: worker-down',
    },
    async () => {
      // The sandbox's folders are 0700 (root's); let the other user in, as a shared host would.
      for (let d = sb.info.spark.workerDir; d.startsWith(sb.dir); d = path.dirname(d)) chmodSync(d, 0o755);
      await sb.worker('stop');
      const other = idle(sb.info.spark.workerDir, undefined, 65534);
      await settle();
      expect(other.exitCode, 'the other user’s process runs').toBeNull();
      const r = await run('diagnose-env', ['--env-file', sb.envFile]);
      expect(checksOf(r).find((c) => c.id === 'worker-process')?.status).toBe('failed');
    },
  );

  faultCase(
    {
      group: 'Worker identity',
      runbook: 'debug-stuck-jobs, requeue',
      name: 'a second program of the worker’s user runs in the folder beside the worker',
      expected: 'worker-ambiguous (both shown); the fix gate cannot tell',
    },
    async () => {
      idle(sb.info.spark.workerDir, 'python3 -m http.server 8000');
      await settle();
      const r = await run('debug-stuck-jobs', ['--env-file', sb.envFile]);
      expect(findingIds(r)).toContain('worker-ambiguous');
      expect(r.stdout).toContain('python3 -m http.server 8000');
      await insertFailed(sb, 1, 'identity_case');
      const q = await run('requeue', ['--env-file', sb.envFile, '--job-type', 'identity_case']);
      expect(q.stdout).toContain(
        'fix gate: cannot tell whether the fix is deployed: 2 programs run in the worker folder',
      );
    },
  );

  faultCase(
    {
      group: 'Worker identity',
      runbook: 'diagnose-env',
      name: 'SPARK_WORKER_DIR is a symlink (a release layout), given with a trailing slash',
      expected: 'the real folder is shown and used: the worker is found, its .env read',
    },
    async () => {
      const link = path.join(sb.info.spark.home, 'current');
      symlinkSync(sb.info.spark.workerDir, link);
      const env = envVariant(sb, { SPARK_WORKER_DIR: `${link}/` });
      const r = await run('diagnose-env', ['--env-file', env]);
      const worker = checksOf(r).find((c) => c.id === 'worker-process');
      expect(worker?.status).toBe('ok');
      expect(r.code, r.stdout).toBe(0);
      expect(r.stdout).toContain(sb.info.spark.workerDir);
    },
  );

  faultCase(
    {
      group: 'Worker identity',
      runbook: 'diagnose-env',
      name: 'the worker .env has comments after its values, export and CRLF',
      expected: 'Spark reaches Supabase with exactly the values the laptop shows',
    },
    async () => {
      const file = path.join(sb.info.spark.workerDir, '.env');
      const saved = `${file}.saved`;
      renameSync(file, saved);
      try {
        const lines = readFileSync(saved, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => (l.startsWith('SUPABASE_') ? `export ${l}/ # the cloud project` : l).replace(/\/ #/, ' #'));
        writeFileSync(file, `${lines.join('\r\n')}\r\n`, { mode: 0o600 });
        const r = await run('diagnose-env', ['--env-file', sb.envFile]);
        expect(checksOf(r).find((c) => c.id === 'spark-reach')?.status).toBe('ok');
        expect(findingIds(r)).not.toContain('worker-key-rejected');
        expect(findingIds(r)).not.toContain('spark-supabase-unreachable');
      } finally {
        renameSync(saved, file);
      }
    },
  );
});
