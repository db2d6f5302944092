/**
 * Spark broken on purpose, for every runbook: the SSH connection refused, silent, stalled, unauthorised, with a
 * changed host key, dropped in the middle of the probe; and on the host a missing tool, a missing log, an unreadable
 * or malformed worker .env. The debugging runbooks must exit 2 (or name the finding); requeue, for which Spark only
 * feeds the fix gate, must say what failed and that it cannot tell whether the fix is deployed.
 */

import { execFileSync } from 'node:child_process';
import {
  accessSync,
  chmodSync,
  constants,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { generateSparkKeys, knownHostsLine } from '../../sandbox/spark/keys.ts';
import type { SshFault } from '../../sandbox/stats.ts';
import { type Sandbox, startSandbox } from '../helpers/sandbox.ts';
import {
  closedPort,
  envVariant,
  expectClear,
  faultCase,
  observe,
  RUNBOOKS,
  type RunbookName,
  run,
  runbookWrites,
  tempDir,
  withControls,
} from './harness.ts';

let sb: Sandbox;
let workerEnv: string;

beforeAll(async () => {
  sb = await startSandbox({ scenario: 'circular-metadata' });
  workerEnv = path.join(sb.info.spark.workerDir, '.env');
});

afterAll(async () => {
  await sb?.down();
});

/** What the debugging runbooks must show, and what requeue must show. */
interface Expect {
  code: number;
  says: RegExp;
  finding?: string;
}

interface SshCase {
  name: string;
  fault?: SshFault;
  env?: () => Promise<Record<string, string>>;
  /** Breaks something on the Spark host; returns how to put it back. */
  host?: () => () => void;
  debug: Expect;
  diagnose: Expect;
  requeue: Expect;
  /** Arguments requeue needs to reach the broken part (e.g. --from-worker for the worker's .env). */
  requeueArgs?: string[];
  /** Nothing may run on Spark (a refused host key). */
  noExec?: boolean;
}

/** Requeue with Spark down: the dry run completes, says what failed and that the fix gate cannot tell. */
const gateUnknown = (says: RegExp): Expect => ({ code: 0, says });

const unreachable = (says: RegExp): Expect => ({ code: 2, says, finding: 'spark-unreachable' });

/**
 * A worker .env that cannot be read. As root (CI) no file mode stops a read, so a folder stands in its place: the
 * probe must call both "unreadable", not "missing".
 */
function unreadableEnv(): () => void {
  const saved = readFileSync(workerEnv);
  chmodSync(workerEnv, 0o000);
  let readable = true;
  try {
    accessSync(workerEnv, constants.R_OK);
  } catch {
    readable = false;
  }
  if (readable) {
    rmSync(workerEnv, { force: true });
    mkdirSync(workerEnv);
  }
  return () => {
    rmSync(workerEnv, { recursive: true, force: true });
    writeFileSync(workerEnv, saved, { mode: 0o600 });
  };
}

function replaceEnv(write: () => void): () => () => void {
  return () => {
    const saved = readFileSync(workerEnv);
    rmSync(workerEnv, { force: true });
    write();
    return () => {
      rmSync(workerEnv, { recursive: true, force: true });
      writeFileSync(workerEnv, saved, { mode: 0o600 });
    };
  };
}

/** The worker keeps running but its log is gone: logs/worker.log is a link to nowhere, so it cannot be recreated. */
function missingLog(): () => void {
  const log = path.join(sb.info.spark.workerDir, 'logs', 'worker.log');
  const saved = `${log}.saved`;
  renameSync(log, saved);
  symlinkSync('/nonexistent/hd-worker/worker.log', log);
  return () => {
    rmSync(log, { force: true });
    renameSync(saved, log);
  };
}

const CASES: SshCase[] = [
  {
    name: 'SSH refused (nothing listens on SPARK_PORT)',
    env: async () => ({ SPARK_PORT: String(await closedPort()) }),
    debug: unreachable(/refused the connection/),
    diagnose: unreachable(/refused the connection/),
    requeue: gateUnknown(/refused the connection/),
  },
  {
    name: 'SSH timeout: a black hole (no SSH banner)',
    fault: { kind: 'silent' },
    debug: unreachable(/did not answer in 2s/),
    diagnose: unreachable(/did not answer in 2s/),
    requeue: gateUnknown(/did not answer in 2s/),
  },
  {
    name: 'SSH timeout: the handshake stalls',
    fault: { kind: 'slow-handshake', delayMs: 60_000 },
    debug: unreachable(/did not answer in 2s/),
    diagnose: unreachable(/did not answer in 2s/),
    requeue: gateUnknown(/did not answer in 2s/),
  },
  {
    name: 'SSH authentication failure',
    fault: { kind: 'auth-fail' },
    debug: unreachable(/accepted none of the keys offered/),
    diagnose: unreachable(/accepted none of the keys offered/),
    requeue: gateUnknown(/accepted none of the keys offered/),
  },
  {
    name: 'a changed host key (known_hosts holds another)',
    env: async () => {
      const file = path.join(tempDir('kh'), 'known_hosts');
      writeFileSync(file, `${knownHostsLine('127.0.0.1', sb.info.spark.port, generateSparkKeys().host.public)}\n`);
      return { SPARK_KNOWN_HOSTS: file };
    },
    debug: { code: 2, says: /possible man-in-the-middle/, finding: 'host-key-mismatch' },
    diagnose: { code: 2, says: /possible man-in-the-middle/, finding: 'host-key-mismatch' },
    requeue: gateUnknown(/possible man-in-the-middle/),
    noExec: true,
  },
  {
    name: 'the connection dropped in the middle of the probe',
    fault: { kind: 'drop-mid-command', afterBytes: 200 },
    debug: { code: 2, says: /the probe's output was cut short/, finding: 'spark-probe-incomplete' },
    diagnose: { code: 2, says: /the probe's output was cut short/, finding: 'spark-probe-incomplete' },
    requeue: gateUnknown(/the probe's output was cut short/),
  },
  {
    name: 'a remote command missing (no procps: ps, pgrep)',
    fault: { kind: 'missing-command', commands: ['ps', 'pgrep'] },
    debug: { code: 2, says: /ps, pgrep not installed on Spark/, finding: 'spark-probe-incomplete' },
    diagnose: { code: 2, says: /ps, pgrep not installed on Spark/, finding: 'spark-probe-incomplete' },
    requeue: gateUnknown(/ps, pgrep not installed on Spark/),
  },
  {
    name: 'a remote command missing (no curl)',
    fault: { kind: 'missing-command', commands: ['curl'] },
    // Only Spark's own reach to Supabase goes unchecked: a warning with its fix, nothing else is wrong.
    debug: { code: 1, says: /curl is not installed on Spark/ },
    diagnose: { code: 0, says: /curl is not installed on Spark/ },
    requeue: { code: 0, says: /curl is not installed on Spark/ },
  },
  {
    name: 'the worker log file is missing',
    host: missingLog,
    debug: { code: 1, says: /logs\/worker\.log does not exist/, finding: 'worker-log-missing' },
    diagnose: { code: 1, says: /logs\/worker\.log does not exist/, finding: 'worker-log-missing' },
    // The fix gate reads the process, not the log.
    requeue: { code: 0, says: /logs\/worker\.log does not exist/ },
  },
  {
    name: "the worker's .env unreadable",
    host: unreadableEnv,
    debug: { code: 1, says: /\.env is unreadable/, finding: 'worker-env-unreadable' },
    diagnose: { code: 1, says: /\.env is unreadable/, finding: 'worker-env-unreadable' },
    requeue: { code: 2, says: /--from-worker: .*its \.env is unreadable/ },
    requeueArgs: ['--from-worker'],
  },
  {
    name: "the worker's .env a FIFO (a read would block)",
    host: replaceEnv(() => execFileSync('mkfifo', [workerEnv])),
    debug: { code: 1, says: /\.env is unreadable/, finding: 'worker-env-unreadable' },
    diagnose: { code: 1, says: /\.env is unreadable/, finding: 'worker-env-unreadable' },
    requeue: { code: 2, says: /--from-worker: .*its \.env is unreadable/ },
    requeueArgs: ['--from-worker'],
  },
  {
    name: "the worker's .env malformed (binary, no assignments)",
    host: replaceEnv(() =>
      writeFileSync(
        workerEnv,
        Buffer.from('\x00\x01\xfe\xffgarbage\n=novalue\nSUPABASE_URL\n"unterminated\n', 'latin1'),
      ),
    ),
    debug: { code: 1, says: /the worker has no Supabase key/, finding: 'worker-key-missing' },
    diagnose: { code: 1, says: /the worker has no Supabase key/, finding: 'worker-key-missing' },
    requeue: { code: 2, says: /--from-worker: .*SUPABASE_URL or the key is missing/ },
    requeueArgs: ['--from-worker'],
  },
];

function expectationFor(c: SshCase, runbook: RunbookName): Expect {
  return runbook === 'debug-stuck-jobs' ? c.debug : runbook === 'diagnose-env' ? c.diagnose : c.requeue;
}

describe('SSH and Spark faults', () => {
  for (const c of CASES) {
    for (const runbook of RUNBOOKS) {
      const e = expectationFor(c, runbook);
      faultCase(
        {
          group: 'SSH',
          runbook,
          name: c.name,
          expected: `exit ${e.code}${e.finding ? ` · ${e.finding}` : runbook === 'requeue' && e.code === 0 ? ' · fix gate unknown' : ''}`,
        },
        async () => {
          const env = c.env ? envVariant(sb, await c.env()) : sb.envFile;
          const restore = c.host?.();
          try {
            await sb.resetStats();
            const r = await withControls(sb, c.fault ? { sshFault: c.fault } : {}, () =>
              run(runbook, ['--env-file', env, ...(runbook === 'requeue' ? (c.requeueArgs ?? []) : [])]),
            );
            expectClear(r, e);
            if (runbook === 'requeue' && e.code === 0 && !c.requeueArgs) {
              expect(r.stdout).toMatch(/^fix gate: /m);
            }
            const stats = await sb.stats();
            if (c.noExec) expect(stats.ssh.execChannels).toBe(0);
            expect(runbookWrites(stats.events)).toEqual([]);
            observe(`${stats.ssh.connections} ssh connection(s), ${stats.ssh.execChannels} command(s)`);
          } finally {
            restore?.();
          }
        },
      );
    }
  }
});
