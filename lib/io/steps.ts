/** Checks and the step runner: a runbook is a list of titled steps; each step returns what it saw. */
import { type CheckResult, check } from '../core/check.ts';
import type { Output } from './output.ts';

export { type CheckResult, type CheckStatus, check } from '../core/check.ts';

export interface Step<C> {
  id: string;
  /** Short imperative, e.g. "Read the laptop config". */
  title: string;
  /** Skipped (with the reason shown) when this returns a string. */
  skip?: (ctx: C) => string | undefined;
  /** Shows the title as a progress line while the step runs (default); off for steps that print or ask. */
  progress?: boolean;
  /**
   * Called as the plan starts, for each step its `skip` does not skip then: starts what the step will wait on (a TCP
   * connection), so that it overlaps the steps before it. Quick, and never throws; `run` takes over what it started.
   */
  prepare?: (ctx: C) => void;
  run: (ctx: C) => Promise<CheckResult | CheckResult[]>;
}

/** Steps in an inner array run concurrently (their results are still shown in the order given). */
export type Plan<C> = ReadonlyArray<Step<C> | ReadonlyArray<Step<C>>>;

async function runOne<C>(ctx: C, step: Step<C>, now: () => number): Promise<CheckResult[]> {
  const reason = step.skip?.(ctx);
  if (reason !== undefined) return [check(step.id, step.title, 'skipped', reason)];
  const started = now();
  const result = await step.run(ctx);
  const results = Array.isArray(result) ? result : [result];
  const ms = now() - started;
  return results.map((r) => ({ ...r, durationMs: r.durationMs ?? ms }));
}

/**
 * Runs a plan, showing each result as it becomes available in plan order. A step that throws ends the run:
 * steps report failures as results and throw only when the runbook cannot go on.
 */
export async function runPlan<C>(
  ctx: C,
  plan: Plan<C>,
  out: Output,
  options: {
    now?: () => number;
    /** Checked before each group: the plan ends early (the rest neither run nor show) once this says so. */
    until?: (ctx: C) => boolean;
  } = {},
): Promise<CheckResult[]> {
  const { now = () => performance.now(), until } = options;
  for (const step of plan.flat() as Step<C>[]) if (step.prepare && step.skip?.(ctx) === undefined) step.prepare(ctx);
  const all: CheckResult[] = [];
  for (const entry of plan) {
    if (until?.(ctx)) break;
    const group = (Array.isArray(entry) ? entry : [entry]) as ReadonlyArray<Step<C>>;
    const titles = group.filter((s) => s.progress !== false).map((s) => s.title);
    const stop = titles.length ? out.progress(titles.join(' · ')) : () => {};
    let results: CheckResult[][];
    try {
      results = await Promise.all(group.map((s) => runOne(ctx, s, now)));
    } finally {
      stop();
    }
    for (const r of results.flat()) {
      out.check(r);
      all.push(r);
    }
  }
  return all;
}
