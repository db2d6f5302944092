/**
 * The shape of a finding rule: one entry per finding id in the table (table.ts), grouped by area in rules/*.ts.
 * A rule is pure: it reads the evidence (and the findings the rules before it made) and drafts findings; the table
 * stamps each draft with the rule's id and severity, so neither is written twice.
 */

import type { Finding, Severity } from '../core/finding.ts';
import type { Evidence } from '../evidence/evidence.ts';
import type { ErrorPattern } from './error-patterns.ts';

/** What a rule reads. Nothing in it is to be changed. */
export interface RuleContext {
  ev: Evidence;
  /** The failure patterns (built in, and the user's file). */
  patterns: readonly ErrorPattern[];
  /** The findings the rules before this one made, in table order. */
  prior: readonly Finding[];
  /** Among `prior`, the finding a queue that does not move is blamed on (the lowest `rootCauseRank`), if any. */
  rootCause: Finding | undefined;
}

/** A finding as its rule drafts it: the table adds `id` and `severity`. */
export type Draft = Omit<Finding, 'id' | 'severity'>;

/** The connections a misspelled variable can leave at their defaults (see `shapedBy`). */
export type Connection = 'spark' | 'supabase';

/** The variables that shape each connection: a typo in one of them leaves it at its default. */
export const CONNECTION_VARS: Record<Connection, RegExp> = {
  spark: /^SPARK_(HOST|PORT|USER|SSH_KEY|SSH_KEY_PATH|KNOWN_HOSTS|HOST_KEY_SHA256|WORKER_DIR)$/,
  supabase: /^SUPABASE_(URL|SERVICE_ROLE_KEY|SECRET_KEY|PROJECT_REF)$/,
};

export interface FindingRule {
  /** Stable id, named in the README's findings list, the JSON and issues. */
  id: string;
  severity: Severity;
  /** `env`: diagnose-env reports it (the setup, and the worker's state); `all`: only debug-stuck-jobs (the queue). */
  scope: 'env' | 'all';
  /** The runbook could not look where it had to: the run exits 2 (could not run), not 1. */
  blocksRun?: boolean;
  /**
   * The finding explains a queue that does not move. Overdue queued jobs become evidence of the present finding with
   * the lowest rank (the first made, among equals) instead of a queue-stalled / queue-backlog finding of their own.
   */
  rootCauseRank?: number;
  /** A misspelled variable of this connection may explain the finding: then the typo is ranked first (rank.ts). */
  shapedBy?: Connection;
  detect(ctx: RuleContext): Draft[];
}

/**
 * A family of findings whose ids and severities are data elsewhere: the failure patterns (error-patterns.ts and the
 * user's file). It sits in the table where its findings are made, and makes whole findings.
 */
export interface FindingFamily {
  family: string;
  scope: 'env' | 'all';
  detect(ctx: RuleContext): Finding[];
}

export type TableEntry = FindingRule | FindingFamily;
