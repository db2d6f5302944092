/**
 * watch: the live queue view. Every few seconds one refresh — one parallel round of bounded reads (the db port's
 * `watchReads`) and one small command on the watch's one SSH connection — drawn in place on a terminal, one block per
 * refresh otherwise. Ctrl-C (or `--for`) ends it with a line saying what was seen; `--once` judges one refresh.
 * Read-only. debug-stuck-jobs `--watch` hands over to {@link watchQueue} with the diagnosis's state and connection.
 */

import { EXIT, type ExitCode, RunbookError } from '../core/exit-codes.ts';
import type { RemoteShell } from '../core/ports.ts';
import { clip } from '../core/text.ts';
import { closeSession, configStep } from '../evidence/gather.ts';
import { readWorker, watchSparkStep } from '../evidence/watch-worker.ts';
import { stuckRulesFrom } from '../io/config.ts';
import type { Ports } from '../io/context.ts';
import { inertJson } from '../io/inert.ts';
import type { DbFailure, JobsDb } from '../io/jobs-db.ts';
import { keepAliveFor } from '../io/keep-alive.ts';
import { mdText } from '../io/report.ts';
import { sshTargetLabel } from '../io/ssh/target.ts';
import { type Plan, runPlan } from '../io/steps.ts';
import type { CommonFlags, RunState } from './run.ts';
import { startRun } from './run.ts';
import { summaryLine, viewLines, type WatchSummary, watchDocument } from './watch/render.ts';
import { buildView, type WatchView, WINDOW_MINUTES, type WorkerView, workerView } from './watch/view.ts';

export { WATCH_HELP, WATCH_OPTIONS } from './usage.ts';

/** Rows per list read: with the narrow columns, a refresh stays under 32 KB whatever the table holds. */
export const WATCH_LIST_LIMIT = 100;
/** Home, then clear the screen: the block is rewritten in place. A constant, never built from data. */
export const CLEAR_SCREEN = '\x1b[H\x1b[2J';

export interface WatchFlags extends CommonFlags {
  every?: string;
  for?: string;
  once?: boolean;
  'queued-minutes'?: string;
  'running-minutes'?: string;
  'job-type-rule'?: string[];
}

export interface WatchSettings {
  everyMs: number;
  /** Stop after this long (`--for`); undefined: until Ctrl-C. */
  forMs?: number;
  once: boolean;
}

/** Where the block is redrawn: a terminal's screen. */
export interface WatchScreen {
  clear(): void;
}

export interface WatchOptions {
  /** Ends the watch (Ctrl-C): the final line, then exit 0. */
  stop?: AbortSignal;
  /** Default: the terminal when the run is interactive and its human output is on stdout; null: never redraw. */
  screen?: WatchScreen | null;
  /** The steps before the first refresh; default {@link WATCH_STEPS}. */
  steps?: Plan<RunState>;
  /**
   * Called when the refresh loop starts (after the steps, which may ask about a host key); returns what to call when
   * it ends. watch.mts reads Ctrl-C and q from the terminal here.
   */
  listen?: () => () => void;
  /** Writes `--json` / `--markdown` at the end (watch.mts: yes; a hand-over from a diagnosis: its own report stays). */
  reports?: boolean;
}

/** Read the laptop config, then open the one SSH connection the whole watch uses. */
export const WATCH_STEPS: Plan<RunState> = [configStep, watchSparkStep];

function seconds(flag: string | undefined, name: string, max: number): number | undefined {
  if (flag === undefined) return undefined;
  if (!/^\d{1,6}(\.\d+)?$/.test(flag) || Number(flag) < 1 || Number(flag) > max)
    throw new RunbookError(`${name} must be seconds between 1 and ${max} (got "${clip(flag, 20)}")`, `e.g. ${name} 5`);
  return Math.round(Number(flag) * 1000);
}

/** --every, --for and --once, checked before anything is read. */
export function watchSettings(flags: Pick<WatchFlags, 'every' | 'for' | 'once'>): WatchSettings {
  const everyMs = seconds(flags.every, '--every', 3600) ?? 5_000;
  const forMs = seconds(flags.for, '--for', 86_400);
  if (flags.once && forMs !== undefined)
    throw new RunbookError('usage: --once and --for both given', 'pass --once for one refresh, or --for SECONDS');
  return { everyMs, forMs, once: Boolean(flags.once) };
}

/** The worker's state for this refresh: one command on the open connection (its shell if any), or why there is none. */
async function workerNow(state: RunState, shell: RemoteShell | undefined): Promise<WorkerView> {
  const { ports, config, evidence } = state;
  const now = ports.clock.now();
  if (state.session) {
    const reading = await readWorker(state.session, ports.clock, {
      workerDir: config.values.SPARK_WORKER_DIR,
      timeoutMs: ports.timeoutMs,
      shell,
    });
    return workerView(reading, now);
  }
  if (!config.values.SPARK_HOST)
    return workerView(
      { status: 'not-configured', reason: 'Spark is not configured (SPARK_HOST unset): the queue only' },
      now,
    );
  const why = evidence.spark && !evidence.spark.ok ? evidence.spark.failure.message : 'no connection';
  return workerView({ status: 'not-connected', reason: `not connected to Spark (${why}): the queue only` }, now);
}

/** One refresh: the reads and the worker's command (on `shell` when given) at once. */
export async function refresh(
  state: RunState,
  shell?: RemoteShell,
): Promise<{ view: WatchView } | { failure: DbFailure; worker: WorkerView }> {
  const now = state.ports.clock.now();
  const since = new Date(now.getTime() - WINDOW_MINUTES * 60_000);
  const [reads, worker] = await Promise.all([
    state.db.watchReads({ since, limit: WATCH_LIST_LIMIT }),
    workerNow(state, shell),
  ]);
  if (!reads.ok) return { failure: reads.failure, worker };
  return { view: buildView(reads.value, worker, state.evidence.rules, now) };
}

function title(state: RunState, settings: WatchSettings, at: Date, live: boolean): string {
  const laptop = state.evidence.laptop;
  const ref = laptop.url?.projectRef ?? laptop.declaredRef;
  const every = settings.once ? '' : ` · every ${settings.everyMs / 1000} s${live ? ' · Ctrl-C to leave' : ''}`;
  return `watch · ${laptop.url?.origin}${ref ? ` (project ${ref})` : ''} · ${at.toISOString().replace(/\.\d+Z$/, 'Z')}${every}`;
}

/** Draws one refresh: on a screen, in place; otherwise as the next block. Every line goes through the output port. */
function draw(
  state: RunState,
  settings: WatchSettings,
  screen: WatchScreen | null,
  result: Awaited<ReturnType<typeof refresh>>,
): void {
  const { out, clock } = state.ports;
  screen?.clear();
  out.heading(title(state, settings, clock.now(), screen !== null));
  if ('view' in result) {
    for (const l of viewLines(result.view)) out.line(l);
    return;
  }
  out.line(`queue: could not read it: ${result.failure.message}`);
  out.line(`  fix: ${result.failure.fix}`);
  out.line(`worker: ${result.worker.line}`);
}

function defaultScreen(ports: Ports, flags: CommonFlags): WatchScreen | null {
  return ports.prompt.interactive && flags.json !== '-' ? { clear: () => ports.stdout(CLEAR_SCREEN) } : null;
}

/** Resolves when `signal` aborts (at once if it has); never without one. */
function whenStopped(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) resolve();
    signal?.addEventListener('abort', () => resolve(), { once: true });
  });
}

/**
 * The refresh loop over an open run state: until Ctrl-C, `--for`, or after one refresh with `--once`. Returns what
 * was seen; a Ctrl-C during a refresh does not wait for it. The worker's commands go to one shell channel on the
 * connection (one round trip a refresh), closed when the loop ends however it ends.
 */
export async function watchLoop(
  state: RunState,
  settings: WatchSettings,
  options: Pick<WatchOptions, 'stop'> & { screen: WatchScreen | null },
): Promise<{ first?: WatchView; last?: WatchView; refreshes: number; seconds: number; failure?: DbFailure }> {
  const { clock } = state.ports;
  const stopped = whenStopped(options.stop);
  const startedAt = clock.now().getTime();
  const seen: { first?: WatchView; last?: WatchView; failure?: DbFailure; refreshes: number } = { refreshes: 0 };
  const shell = state.session?.shell?.();
  try {
    for (;;) {
      const result = await Promise.race([refresh(state, shell), stopped.then(() => undefined)]);
      if (!result) break;
      seen.refreshes++;
      if ('view' in result) {
        seen.first ??= result.view;
        seen.last = result.view;
        seen.failure = undefined;
      } else seen.failure = result.failure;
      draw(state, settings, options.screen, result);
      const elapsed = clock.now().getTime() - startedAt;
      if (settings.once || options.stop?.aborted) break;
      if (settings.forMs !== undefined && elapsed >= settings.forMs) break;
      const wait = Math.min(settings.everyMs, (settings.forMs ?? Number.POSITIVE_INFINITY) - elapsed);
      await Promise.race([clock.sleep(wait), stopped]);
      if (options.stop?.aborted) break;
    }
  } finally {
    // Ends the remote bash of the worker's commands (a refresh cut short by Ctrl-C included).
    shell?.close();
  }
  return { ...seen, seconds: (clock.now().getTime() - startedAt) / 1000 };
}

/** `--json` (a file, or stdout with -) and `--markdown`: the last refresh, redacted like every report. */
function writeWatchReports(state: RunState, flags: CommonFlags, view: WatchView, doc: Record<string, unknown>): void {
  const { ports } = state;
  const json = ports.out.redact(inertJson(`${JSON.stringify(doc, null, 2)}\n`));
  const summary = (doc.summary as { line?: string } | undefined)?.line;
  const md = [
    `# watch: ${mdText(view.stalled ? 'stalled' : `backlog ${view.backlog}, ETA ${view.eta.state}`)}`,
    '',
    `- time: ${mdText(view.at)}`,
    ...viewLines(view).map((l) => `- ${mdText(l.trim())}`),
    ...(summary ? ['', mdText(summary)] : []),
    '',
  ].join('\n');
  try {
    if (flags.json === '-') ports.stdout(json);
    else if (flags.json) ports.files.write(flags.json, json);
    if (flags.markdown) ports.files.write(flags.markdown, ports.out.redact(md));
  } catch (e) {
    throw new RunbookError(
      `could not write the report: ${(e as Error).message}`,
      'check the path given to --json / --markdown',
    );
  }
}

/**
 * The watch's own db client, which keeps its connections from one refresh to the next (lib/io/keep-alive.ts); closed
 * when the watch ends. `--once` reads once: the run's client (undefined here).
 */
function keptConnections(state: RunState, settings: WatchSettings): JobsDb | undefined {
  const origin = state.evidence.laptop.url?.origin;
  if (settings.once || !origin) return undefined;
  return state.ports.openDb(origin, state.config.supabaseKey, { keepAliveMs: keepAliveFor(settings.everyMs) });
}

/**
 * Watches with an open run state (a diagnosis's, or the watch runbook's own) and ends it: the summary line, the
 * reports, the exit code (`--once`: 1 when stalled; a watch that never read the queue: 2; otherwise 0).
 */
export async function watchQueue(
  state: RunState,
  flags: CommonFlags,
  settings: WatchSettings,
  options: WatchOptions = {},
): Promise<ExitCode> {
  const { ports } = state;
  const screen = options.screen === undefined ? defaultScreen(ports, flags) : options.screen;
  const unlisten = options.listen?.() ?? (() => {});
  const runDb = state.db;
  state.db = keptConnections(state, settings) ?? runDb;
  let seen: Awaited<ReturnType<typeof watchLoop>>;
  try {
    seen = await watchLoop(state, settings, { stop: options.stop, screen });
  } finally {
    unlisten();
    const watchDb = state.db;
    state.db = runDb;
    if (watchDb !== runDb) await watchDb.close?.();
  }
  if (!seen.last) {
    const f = seen.failure;
    if (f) throw new RunbookError(`the queue could not be read: ${f.message}`, f.fix);
    ports.out.line('stopped before the first refresh');
    return EXIT.ok;
  }
  const summary: WatchSummary | undefined = settings.once
    ? undefined
    : { seconds: seen.seconds, refreshes: seen.refreshes, first: seen.first!, last: seen.last };
  if (summary) {
    ports.out.line();
    ports.out.line(summaryLine(summary));
  }
  const code = settings.once && seen.last.stalled ? EXIT.findings : EXIT.ok;
  if (options.reports !== false) {
    const spark = state.evidence.spark?.target ?? state.session?.target;
    const target = {
      supabase: state.evidence.laptop.url?.origin,
      projectRef: state.evidence.laptop.url?.projectRef ?? state.evidence.laptop.declaredRef,
      ...(spark ? { spark: sshTargetLabel(spark) } : {}),
    };
    writeWatchReports(state, flags, seen.last, watchDocument(seen.last, { target, exitCode: code, summary }));
  }
  return code;
}

/** The watch runbook: its steps, then the refresh loop; the SSH connection is closed however it ends. */
export async function runWatch(ports: Ports, flags: WatchFlags, options: WatchOptions = {}): Promise<ExitCode> {
  const settings = watchSettings(flags);
  const state = startRun(ports, flags, (values) =>
    stuckRulesFrom(values, {
      queuedMinutes: flags['queued-minutes'],
      runningMinutes: flags['running-minutes'],
      jobTypeRules: flags['job-type-rule'],
    }),
  );
  try {
    await runPlan(state, options.steps ?? WATCH_STEPS, ports.out);
    return await watchQueue(state, flags, settings, options);
  } finally {
    await closeSession(state);
  }
}
