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
