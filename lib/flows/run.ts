/** What every runbook does around its steps: load config, build the run state, show findings, write reports. */

import { EXIT, type ExitCode, RunbookError } from '../core/exit-codes.ts';
import { atLeastWarning, type Finding, verdictLine } from '../core/finding.ts';
import type { StuckRules } from '../core/stuck-rules.ts';
import type { Evidence } from '../evidence/evidence.ts';
import type { GatherState } from '../evidence/gather.ts';
import { BUILTIN_ERROR_PATTERNS, compilePatternFile, type ErrorPattern } from '../findings/error-patterns.ts';
import { BLOCKS_RUN_IDS } from '../findings/table.ts';
import { configFileFlag } from '../io/cli.ts';
import { loadConfig } from '../io/config.ts';
import type { Ports } from '../io/context.ts';
import { buildReport, type Report, writeReports } from '../io/report.ts';
import { expandTilde, sshTargetLabel } from '../io/ssh/target.ts';
import type { CheckResult } from '../io/steps.ts';

/** Findings that mean the runbook could not look where it had to: exit 2, not 1. */
export const COULD_NOT_RUN_IDS: ReadonlySet<string> = BLOCKS_RUN_IDS;

export function exitCodeFor(findings: readonly Finding[]): ExitCode {
  if (findings.some((f) => COULD_NOT_RUN_IDS.has(f.id))) return EXIT.couldNotRun;
  return findings.some(atLeastWarning) ? EXIT.findings : EXIT.ok;
}

/** What a flow carries through its steps: the gathered state and the failure patterns the findings use. */
export interface RunState extends GatherState {
  patterns: readonly ErrorPattern[];
}

export interface CommonFlags {
  config?: string;
  'env-file'?: string;
  json?: string;
  markdown?: string;
  patterns?: string;
}

/** Loads the config, registers its secrets, opens the db port and builds the evidence skeleton. */
export function startRun(
  ports: Ports,
  flags: CommonFlags,
  rules: (values: Record<string, string>) => StuckRules,
): RunState {
  const config = loadConfig({
    envFileFlag: configFileFlag(flags),
    cwd: ports.cwd,
    env: ports.env,
    readFile: ports.files.read,
  });
  for (const s of config.secrets) ports.out.addSecret(s);
  if (!config.laptop.url) {
    throw new RunbookError(
      `SUPABASE_URL: ${config.laptop.urlProblem ?? 'not a usable URL'}`,
      'set SUPABASE_URL to the project URL, e.g. https://<ref>.supabase.co',
    );
  }
  const evidence: Evidence = {
    now: ports.clock.now(),
    rules: rules(config.values),
    laptop: { ...config.laptop, envFile: config.envFile, issues: config.issues },
  };
  return {
    ports,
    config,
    evidence,
    db: ports.openDb(config.laptop.url.origin, config.supabaseKey),
    patterns: loadPatterns(ports, flags.patterns ?? config.values.HD_RUNBOOKS_PATTERNS_FILE),
  };
}

/** Built-in patterns, then the user's (a user pattern can refine a built-in by coming first? no: built-ins win ties). */
export function loadPatterns(ports: Ports, file: string | undefined): ErrorPattern[] {
  if (!file) return [...BUILTIN_ERROR_PATTERNS];
  const resolved = expandTilde(file, ports.homeDir);
  const text = ports.files.read(resolved);
  if (text === undefined) {
    throw new RunbookError(
      `patterns file ${file} does not exist`,
      'fix --patterns or HD_RUNBOOKS_PATTERNS_FILE (see README: "Adding a failure pattern")',
    );
  }
  const compiled = compilePatternFile(text, file);
  if (!compiled.ok)
    throw new RunbookError(compiled.error, 'fix the patterns file (see README: "Adding a failure pattern")');
  const builtinIds = new Set(BUILTIN_ERROR_PATTERNS.map((p) => p.id));
  const clash = compiled.patterns.find((p) => builtinIds.has(p.id));
  if (clash) throw new RunbookError(`${file}: pattern id "${clash.id}" is built in`, 'give your pattern its own id');
  return [...BUILTIN_ERROR_PATTERNS, ...compiled.patterns];
}

export function showFindings(ports: Ports, findings: readonly Finding[]): void {
  const { out } = ports;
  out.heading(findings.length ? `Findings (${findings.length})` : 'Findings');
  if (!findings.length) out.line('none');
  for (const [i, f] of findings.entries()) out.finding(f, i);
}

export function finishRun(
  state: RunState,
  runbook: string,
  flags: CommonFlags,
  findings: readonly Finding[],
  checks: CheckResult[],
  actions: Report['actions'],
  extra?: Record<string, unknown>,
  exitOverride?: ExitCode,
): ExitCode {
  const { ports, evidence, config } = state;
  const code = exitOverride ?? exitCodeFor(findings);
  const spark = evidence.spark?.target;
  const report = () =>
    buildReport({
      runbook,
      exitCode: code,
      generatedAt: evidence.now.toISOString(),
      operator: ports.operator(config.values.RUNBOOK_OPERATOR),
      target: {
        supabase: evidence.laptop.url?.origin,
        projectRef: evidence.laptop.url?.projectRef ?? evidence.laptop.declaredRef ?? evidence.laptop.key?.ref,
        spark: spark ? sshTargetLabel(spark) : undefined,
      },
      findings,
      checks,
      actions,
      extra,
    });
  writeReports(ports, report, flags);
  ports.out.line();
  ports.out.line(`${verdictLine(findings)} (exit ${code})`);
  return code;
}
