/** Spark's clock, read first: the skew against the laptop, and the time processes are dated from. */
import { SKEW_WARN_MS } from '../../core/thresholds.ts';
import { check } from '../../io/steps.ts';
import { dateOfNanoseconds, defineSection, type ProbeOutput } from './section.ts';
import type { SparkEvidence } from './spark-evidence.ts';

/** Spark's time as the probe read it. */
export function sparkNowOf(out: ProbeOutput): Date | undefined {
  return dateOfNanoseconds(out.text('now'));
}

export const clockSection = defineSection({
  name: 'clock',
  outputs: { now: [] },
  runs: 'first',
  // now_ns: the frame's helper, `date -u +%s%N` without a process where bash has EPOCHREALTIME.
  script: () => ['section now; now_ns'],
  parse: (out, ctx): Pick<SparkEvidence, 'sparkNow' | 'clockSkewMs'> => {
    const sparkNow = sparkNowOf(out);
    return { sparkNow, clockSkewMs: sparkNow ? sparkNow.getTime() - ctx.laptopMidpoint.getTime() : undefined };
  },
  show: ({ probe }) => {
    if (probe.clockSkewMs === undefined) return [];
    const s = Math.round(probe.clockSkewMs / 1000);
    const status = Math.abs(probe.clockSkewMs) > SKEW_WARN_MS ? 'warning' : 'ok';
    return [check('clock', 'Clock skew', status, `Spark is ${Math.abs(s)} s ${s >= 0 ? 'ahead' : 'behind'}`)];
  },
});
