/** What the probe of Spark yields, as plain data: the shape the findings read. */

export interface WorkerProcessInfo {
  pid: number;
  /** The parent: a worker's own children (multiprocessing, a reloader) share its folder. */
  ppid?: number;
  /** The process's user on Spark. */
  user?: string;
  elapsedSeconds: number;
  startedAt: Date;
  args: string;
}

/**
 * The worker candidates that are not children of another candidate: one is the worker; two or more are different
 * programs in the folder, and which of them is the worker cannot be told (shown as ambiguous, never guessed).
 */
export function topLevelProcesses(processes: readonly WorkerProcessInfo[]): WorkerProcessInfo[] {
  const pids = new Set(processes.map((p) => p.pid));
  return processes.filter((p) => p.ppid === undefined || !pids.has(p.ppid));
}

export interface SparkEvidence {
  sparkNow?: Date;
  /** Spark's clock minus the laptop's, in ms (positive: Spark is ahead). */
  clockSkewMs?: number;
  /** The worker folder as Spark resolved it (symlinks, a trailing slash); `given` when that differs. */
  workerDir: { path: string; exists: boolean; given?: string };
  env:
    | { status: 'ok'; vars: Record<string, string> }
    | { status: 'missing' | 'unreadable' | 'malformed'; vars?: undefined };
  processes: WorkerProcessInfo[];
  log:
    | { status: 'ok'; size: number; modifiedAt: Date; tail: string[]; truncated: boolean }
    | { status: 'missing'; tail: string[] };
  disk?: { availableKb: number; usedPercent: number; mount: string };
  reach:
    | { status: 'ok' | 'http-error'; httpStatus: number; seconds: number }
    | { status: 'failed'; message: string }
    | { status: 'skipped'; reason: string };
  /** Processes in the worker folder that are people's tools (shells, pagers, editors), not the worker. */
  ignoredProcesses?: Array<{ pid: number; comm: string }>;
  /** Sections the script did not deliver (a dropped connection, a missing command). */
  missingSections: string[];
  /** Tools the probe needs that Spark does not have (their sections are in `missingSections`). */
  missingTools?: string[];
}
