/**
 * Findings: what the evidence means, as plain data made by pure functions (lib/findings: the rule table, the ranking
 * by cause). Here: the shape, the severity order and the verdict line.
 */

export type Severity = 'info' | 'warning' | 'critical';

export interface Finding {
  /** Stable id, named in the issues and the README (e.g. `local-supabase-target`). */
  id: string;
  severity: Severity;
  title: string;
  /** What was seen, one fact per line, never a secret. */
  evidence: string[];
  cause: string;
  fix: string;
  /** The jobs this finding concerns, when any. */
  jobIds?: string[];
  /** Whether requeueing the concerned jobs is safe once the fix is deployed. */
  requeueSafe?: boolean;
}

const RANK: Record<Severity, number> = { critical: 2, warning: 1, info: 0 };

/** Most severe first; among equals, the order the findings were made in (catalog order). */
export function sortFindings(findings: readonly Finding[]): Finding[] {
  return findings
    .map((f, i) => ({ f, i }))
    .sort((a, b) => RANK[b.f.severity] - RANK[a.f.severity] || a.i - b.i)
    .map(({ f }) => f);
}

export function atLeastWarning(f: Finding): boolean {
  return RANK[f.severity] >= RANK.warning;
}

/** One line that says how things stand. */
export function verdictLine(findings: readonly Finding[]): string {
  const serious = findings.filter(atLeastWarning);
  if (serious.length === 0) return 'healthy: no finding at warning level or above';
  const top = sortFindings(serious)[0];
  const more = serious.length > 1 ? ` (+${serious.length - 1} more)` : '';
  return `${top.severity === 'critical' ? 'CRITICAL' : 'WARNING'}: ${top.title} [${top.id}]${more}`;
}
