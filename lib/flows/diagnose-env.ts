/** diagnose-env: the environment doctor. Laptop config, keys, Supabase, Spark and the worker, the app; one verdict. */

import type { ExitCode } from '../core/exit-codes.ts';
import { catalogStep } from '../evidence/catalog-step.ts';
import { appStep, closeSession, configStep, sparkStep, supabasePreflightStep } from '../evidence/gather.ts';
import { diagnose } from '../findings/diagnosis.ts';
import { stuckRulesFrom } from '../io/config.ts';
import type { Ports } from '../io/context.ts';
import { type Plan, runPlan } from '../io/steps.ts';
import { type CommonFlags, finishRun, type RunState, showFindings, startRun } from './run.ts';

export { DIAGNOSE_ENV_HELP } from './usage.ts';

/** Check the config; then Supabase, Spark, the app's env and (with SUPABASE_DB_URL) the catalog, at once. */
export const DIAGNOSE_GATHER: Plan<RunState> = [configStep, [supabasePreflightStep, sparkStep, appStep, catalogStep]];

export async function runDiagnoseEnv(
  ports: Ports,
  flags: CommonFlags,
  gather: Plan<RunState> = DIAGNOSE_GATHER,
): Promise<ExitCode> {
  const state = startRun(ports, flags, (values) => stuckRulesFrom(values, {}));
  ports.out.heading(`diagnose-env · ${state.evidence.laptop.url?.origin} · ${state.evidence.now.toISOString()}`);
  try {
    const checks = await runPlan(state, gather, ports.out);
    const findings = diagnose(state.evidence, state.patterns, 'env');
    showFindings(ports, findings);
    return finishRun(state, 'diagnose-env', flags, findings, checks, []);
  } finally {
    await closeSession(state);
  }
}
