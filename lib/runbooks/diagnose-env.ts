/** diagnose-env: the environment doctor. Laptop config, keys, Supabase, Spark and the worker, the app; one verdict. */
import { runPlan } from '../checks.ts';
import { stuckRulesFrom } from '../config.ts';
import type { Ports } from '../context.ts';
import { diagnose } from '../diagnosis.ts';
import type { ExitCode } from '../exit-codes.ts';
import { appStep, closeSession, configStep, sparkStep, supabasePreflightStep } from '../gather.ts';
import { type CommonFlags, finishRun, showFindings, startRun } from './common.ts';

export const DIAGNOSE_ENV_HELP = `Usage: npx zx runbooks/diagnose-env.mts [options]

Checks every side's configuration in seconds: the laptop's .env and keys, Supabase from this machine, Spark over
SSH (the worker's folder, .env, key, process, log, clock, disk, and Supabase as seen from Spark), and the app's env.
Flags failure A (the app writing to a local Supabase) before it becomes an incident. Read-only.`;

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
