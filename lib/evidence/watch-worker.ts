/**
 * The worker's side of the watch view: ONE SSH connection opened for the whole watch (or the diagnosis's, handed
 * over), and per refresh one small command on it: the probe's own sections for the clock, the worker folder, the
 * worker process (the same identification as the probe) and the log's stat (no tail). A few KB, one round trip: the
 * command goes to the watch's shell (a channel kept open across refreshes) when the session has one, else one exec.
 */

import { randomBytes } from 'node:crypto';
import type { Clock, RemoteShell, SshSession } from '../core/ports.ts';
import type { SparkRemoteResult } from '../io/ssh/session.ts';
import { sshTargetLabel } from '../io/ssh/target.ts';
import { check, type Step } from '../io/steps.ts';
import type { GatherState } from './gather-state.ts';
import { clockSection } from './probe/clock.ts';
import type { ProbeOutput, ProbeSection } from './probe/section.ts';
import { type SparkEvidence, topLevelProcesses, type WorkerProcessInfo } from './probe/spark-evidence.ts';
import { workerDirSection } from './probe/worker-dir.ts';
import { workerLogSection } from './probe/worker-log.ts';
import { workerProcessSection } from './probe/worker-process.ts';
import { probePrelude } from './spark-probe.ts';
import { openSpark, preconnectSpark } from './spark-step.ts';

const DEFAULT_WORKER_DIR = '~/srv/hd-worker';
/** The most one refresh's command may print: a handful of process lines and stats. */
export const WATCH_WORKER_MAX_BYTES = 16 * 1024;

const SECTIONS: readonly ProbeSection[] = [clockSection, workerDirSection, workerProcessSection, workerLogSection];
/** The tools without which the process list would read as "no worker": checked as the probe checks them. */
const TOOLS = ['ps', 'pgrep', 'find', 'stat'];

/** What one refresh saw of the worker. */
export type WorkerReading =
  | {
      status: 'ok';
      dir: { path: string; exists: boolean };
      /** The worker candidates that are not children of another (one is the worker; two are ambiguous). */
      processes: WorkerProcessInfo[];
      /** When the log was last written; null when there is no logs/worker.log. */
      logWrittenAt: Date | null;
    }
  | { status: 'unknown'; reason: string };

/** The remote script: the probe's prelude (the folder resolved through symlinks), then its sections' lines. */
export function buildWatchWorkerScript(workerDir: string, marker: string): string {
  const o = { workerDir, marker, logTailBytes: 0, reachCheck: false, reachTimeoutSeconds: 1 };
  return [
    ...probePrelude(o),
    `section tools; for c in ${TOOLS.join(' ')}; do command -v "$c" >/dev/null 2>&1 || echo "$c"; done`,
    ...SECTIONS.flatMap((s) => s.script(o)),
    'section end',
    '',
  ].join('\n');
}

/** Splits the answer at the marker and reads it with the sections' own parsers. */
export function parseWatchWorker(stdout: string, marker: string, workerDir: string, midpoint: Date): WorkerReading {
  const parts = new Map<string, string>();
  for (const part of stdout.split(`\n${marker} `).slice(1)) {
    const nl = part.indexOf('\n');
    parts.set((nl === -1 ? part : part.slice(0, nl)).trim(), nl === -1 ? '' : part.slice(nl + 1));
  }
  if (!parts.has('end')) return { status: 'unknown', reason: 'the command on Spark was cut short' };
  const missing = (parts.get('tools') ?? '').split('\n').filter((t) => TOOLS.includes(t));
  if (missing.includes('ps') || (missing.includes('pgrep') && missing.includes('find')))
    return { status: 'unknown', reason: `${missing.join(', ')} not installed on Spark` };
  const out: ProbeOutput = { text: (n) => (parts.get(n) ?? '').replace(/\n$/, ''), has: (n) => parts.has(n) };
  const ctx = { workerDir, laptopMidpoint: midpoint, logTailBytes: 0 };
  const parsed = Object.assign({}, ...SECTIONS.map((s) => s.parse(out, ctx))) as SparkEvidence;
  return {
    status: 'ok',
    dir: { path: parsed.workerDir.path, exists: parsed.workerDir.exists },
    processes: topLevelProcesses(parsed.processes),
    logWrittenAt: parsed.log.status === 'ok' ? parsed.log.modifiedAt : null,
  };
}

/**
 * One refresh on the open connection, bounded in time and bytes: on `shell` (one round trip; after a failure it opens
 * a new channel) when given, else one exec (two). A timeout, a lost connection or an answer cut short is unknown.
 */
export async function readWorker(
  session: SshSession,
  clock: Clock,
  o: { workerDir?: string; timeoutMs: number; shell?: RemoteShell },
): Promise<WorkerReading> {
  const workerDir = o.workerDir ?? DEFAULT_WORKER_DIR;
  const marker = `@@hd-watch-${randomBytes(8).toString('hex')}@@`;
  const script = buildWatchWorkerScript(workerDir, marker);
  const bounds = { timeoutMs: o.timeoutMs, maxBytes: WATCH_WORKER_MAX_BYTES };
  const before = clock.now().getTime();
  const r = o.shell ? await o.shell.run(script, bounds) : await session.exec('bash -s', { stdin: script, ...bounds });
  const midpoint = new Date((before + clock.now().getTime()) / 2);
  const extra = r as Partial<SparkRemoteResult>;
  if (extra.connectionLost)
    return { status: 'unknown', reason: `the connection to Spark was lost${r.stderr ? `: ${r.stderr}` : ''}` };
  if (r.code === null && extra.timedOut)
    return { status: 'unknown', reason: `Spark did not answer within ${Math.round(o.timeoutMs / 1000)} s` };
  return parseWatchWorker(r.stdout, marker, workerDir, midpoint);
}

/**
 * Opens the watch's one SSH connection (kept in `state.session` until the watch ends). Connect only: the worker is
 * read by each refresh. A host key not yet known is asked about on a terminal, refused otherwise.
 */
export const watchSparkStep: Step<GatherState> = {
  id: 'spark',
  title: 'Connect to Spark (kept open for the watch)',
  skip: ({ config }) => (config.values.SPARK_HOST ? undefined : 'SPARK_HOST is not set: the queue only'),
  prepare: preconnectSpark,
  async run(state) {
    const opened = await openSpark(state, this.title);
    if (!opened.ok) return opened.result;
    const where = `${sshTargetLabel(opened.target)}, host key ${opened.session.hostKeyFingerprint}`;
    return check('spark-connect', this.title, 'ok', where);
  },
};
