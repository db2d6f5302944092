/**
 * Every threshold a check line (✔/✖) or a finding judges by, in one place, so a step and the finding it leads to
 * never disagree. Stuck-job thresholds (per job_type) live in stuck-rules.ts beside their parser.
 */

/** Spark's clock and the laptop's may differ by this much before times compared across them are doubted. */
export const SKEW_WARN_MS = 120_000;

/** Spark's disk: a warning at this much used … */
export const DISK_WARN_PERCENT = 95;
/** … or below this much free (1 GiB, in KiB as df reports it). */
export const DISK_WARN_KB = 1_048_576;

/** Whether Spark's disk is low enough to warn about (the check line and the `disk-low` finding both ask this). */
export function diskLow(disk: { usedPercent: number; availableKb: number }): boolean {
  return disk.usedPercent >= DISK_WARN_PERCENT || disk.availableKb < DISK_WARN_KB;
}

/** The worker's log may be quiet this long (or the queued rule's minutes, when longer) before it is called stale. */
export const LOG_QUIET_MINUTES = 5;

/** A crash loop: at least this many worker starts in the log's tail … */
export const CRASH_LOOP_MIN_STARTS = 3;
/** … within this many minutes of the latest one (when the log has times) … */
export const CRASH_LOOP_WINDOW_MINUTES = 10;
/** … while the worker process is younger than this (or none runs, and the latest start is within the window). */
export const CRASH_LOOP_YOUNG_MINUTES = 10;

/**
 * A log line written this long before the worker process started is the previous process's: the start time is read
 * to the clock tick, the log's times to the millisecond (or the second), so a line of this process never falls before.
 */
export const PROCESS_START_SLACK_MS = 1_000;

/**
 * A queue read slower than this has used a quarter of Supabase's 8 s statement timeout for service_role: the table
 * outgrew its indexes (finding `queue-read-slow`).
 */
export const SLOW_QUEUE_READ_MS = 1_000;
/** Supabase's statement timeout for service_role; a read past it is cancelled (500, SQLSTATE 57014). */
export const STATEMENT_TIMEOUT_MS = 8_000;
/** The migration that adds the indexes the queue reads need. */
export const READ_INDEXES_MIGRATION = 'sandbox/migrations/004_queue_read_indexes.sql';
