/**
 * From evidence to findings: the table's rules (table.ts, one entry per id, rules/*.ts by area), then the links
 * between findings (rank.ts: the typo before the symptom it explains, a stalled queue blamed on its root cause), most
 * severe first. The ids are stable (README, JSON, issues).
 */

import { type Finding, sortFindings } from '../core/finding.ts';
import type { Evidence } from '../evidence/evidence.ts';
import type { ErrorPattern } from './error-patterns.ts';
import { blameStall, byCause } from './rank.ts';
import type { TableEntry } from './rule.ts';
import { REACH_RULES } from './rules/reach.ts';
import { SETUP_RULES } from './rules/setup.ts';
import { FINDING_TABLE, ruleFor, runEntries } from './table.ts';

export { logContextFor } from './rules/failures.ts';

/** What environmentFindings makes: reach and setup (the worker's process and log are queueFindings', as before). */
const ENVIRONMENT: readonly TableEntry[] = [...REACH_RULES, ...SETUP_RULES];

/** Findings about configuration and reachability, as their rules make them (not ranked, not linked). */
export function environmentFindings(ev: Evidence): Finding[] {
  return runEntries(
    FINDING_TABLE.filter((e) => ENVIRONMENT.includes(e)),
    ev,
    [],
  );
}

/**
 * Findings about the worker, the queue and the failed jobs, as their rules make them after `env`. `env` is read
 * (a root cause there means no queue-stalled finding), never changed: `diagnose` adds the stalled jobs to it.
 */
export function queueFindings(ev: Evidence, patterns: readonly ErrorPattern[], env: readonly Finding[]): Finding[] {
  return runEntries(
    FINDING_TABLE.filter((e) => !ENVIRONMENT.includes(e)),
    ev,
    patterns,
    env,
  );
}

/**
 * Every finding, most severe first. `env` (diagnose-env): the setup, and the worker's state (a ✖ on the worker
 * process is a finding there too, never "healthy"); `all` (debug-stuck-jobs): the queue as well.
 */
export function diagnose(ev: Evidence, patterns: readonly ErrorPattern[], scope: 'env' | 'all'): Finding[] {
  const ranked = blameStall(byCause(runEntries(FINDING_TABLE, ev, patterns)), ev);
  return sortFindings(scope === 'env' ? ranked.filter((f) => ruleFor(f.id)?.scope === 'env') : ranked);
}
