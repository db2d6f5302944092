/**
 * The finding table: every finding the runbooks make, one entry per id, in catalog order (among findings of equal
 * severity, the order they are shown in). Each area's rules live in rules/*.ts; adding a finding is one entry there
 * (and its tests). What the run makes of an id (exit 2, the scope, the root-cause rank) is read from here only.
 *
 * Adding a finding: one entry in the area's list (rules/reach.ts: could the runbook look; setup.ts: config, keys,
 * projects, Spark's host; worker.ts: the worker's process and log; queue.ts; failures.ts: failed jobs and the log),
 * placed where it should come among findings of its severity, e.g. in SETUP_RULES:
 *   { id: 'worker-env-world-readable', severity: 'warning', scope: 'env',
 *     detect: ({ ev }) => (probeOf(ev)?.env.mode === '644' ? [{ title, evidence, cause, fix }] : []) },
 * then its line in README.md's findings list (test/unit/finding-table.test.ts checks both ways).
 */

import type { Finding } from '../core/finding.ts';
import type { Evidence } from '../evidence/evidence.ts';
import type { ErrorPattern } from './error-patterns.ts';
import type { FindingRule, RuleContext, TableEntry } from './rule.ts';
import { CATALOG_RULES } from './rules/catalog.ts';
import { FAILURE_RULES, PATTERN_FAMILY } from './rules/failures.ts';
import { QUEUE_RULES } from './rules/queue.ts';
import { REACH_RULES } from './rules/reach.ts';
import { SETUP_RULES } from './rules/setup.ts';
import { WORKER_RULES } from './rules/worker.ts';
import { DEATH_RULES } from './rules/worker-deaths.ts';

/** Reach, setup and the worker (diagnose-env's scope), then the queue and the failed jobs. */
export const FINDING_TABLE: readonly TableEntry[] = [
  ...REACH_RULES,
  ...SETUP_RULES,
  // A crash loop before worker-down: between two restarts no process runs, and the loop is the cause.
  ...DEATH_RULES,
  ...WORKER_RULES,
  // diagnose-env with SUPABASE_DB_URL: what the migrations create that the project lacks.
  ...CATALOG_RULES,
  ...QUEUE_RULES,
  PATTERN_FAMILY,
  ...FAILURE_RULES,
];

export const isRule = (e: TableEntry): e is FindingRule => 'id' in e;

export const FINDING_RULES: readonly FindingRule[] = FINDING_TABLE.filter(isRule);

const RULE_BY_ID: ReadonlyMap<string, FindingRule> = new Map(FINDING_RULES.map((r) => [r.id, r]));

/** The rule that makes a finding id; undefined for a failure pattern's id. */
export function ruleFor(id: string): FindingRule | undefined {
  return RULE_BY_ID.get(id);
}

/** Findings that mean the runbook could not look where it had to: exit 2, not 1. */
export const BLOCKS_RUN_IDS: ReadonlySet<string> = new Set(FINDING_RULES.filter((r) => r.blocksRun).map((r) => r.id));

/** The finding a queue that does not move is blamed on: the lowest root-cause rank, the first made among equals. */
export function rootCauseOf(findings: readonly Finding[]): Finding | undefined {
  let best: { f: Finding; rank: number } | undefined;
  for (const f of findings) {
    const rank = ruleFor(f.id)?.rootCauseRank;
    if (rank !== undefined && (!best || rank < best.rank)) best = { f, rank };
  }
  return best?.f;
}

/** One entry's findings: a rule's drafts stamped with its id and severity, or a family's own findings. */
function make(entry: TableEntry, ctx: RuleContext): Finding[] {
  if (!isRule(entry)) return entry.detect(ctx);
  return entry.detect(ctx).map((d) => ({ id: entry.id, severity: entry.severity, ...d }));
}

/**
 * Runs entries in order. Each sees the findings made before it (`prior`, starting with `before`) and never changes
 * them; the result holds only the findings these entries made.
 */
export function runEntries(
  entries: readonly TableEntry[],
  ev: Evidence,
  patterns: readonly ErrorPattern[],
  before: readonly Finding[] = [],
): Finding[] {
  const made: Finding[] = [];
  for (const entry of entries) {
    const prior = [...before, ...made];
    made.push(...make(entry, { ev, patterns, prior, rootCause: rootCauseOf(prior) }));
  }
  return made;
}
