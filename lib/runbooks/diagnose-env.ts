/** diagnose-env: the environment doctor. Laptop config, keys, Supabase, Spark and the worker, the app; one verdict. */
import { runPlan } from '../checks.ts';
import { stuckRulesFrom } from '../config.ts';
import type { Ports } from '../context.ts';
import { diagnose } from '../diagnosis.ts';
import type { ExitCode } from '../exit-codes.ts';
import { appStep, closeSession, configStep, sparkStep, supabasePreflightStep } from '../gather.ts';
import { type CommonFlags, finishRun, showFindings, startRun } from './common.ts';

export { DIAGNOSE_ENV_HELP } from './usage.ts';

export async function runDiagnoseEnv(ports: Ports, flags: CommonFlags): Promise<ExitCode> {
  const state = startRun(ports, flags, (values) => stuckRulesFrom(values, {}));
  ports.out.heading(`diagnose-env · ${state.evidence.laptop.url?.origin} · ${state.evidence.now.toISOString()}`);
  try {
    const checks = await runPlan(state, [configStep, [supabasePreflightStep, sparkStep, appStep]], ports.out);
    const findings = diagnose(state.evidence, state.patterns, 'env');
    showFindings(ports, findings);
    return finishRun(state, 'diagnose-env', flags, findings, checks, []);
  } finally {
    await closeSession(state);
  }
}
