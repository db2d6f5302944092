/** Findings: what the evidence means, as plain data made by pure functions. */

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

/** What a connection failure may be the symptom of: the variables that shape each connection. */
const SHAPED_BY: Array<{ vars: RegExp; symptoms: readonly string[] }> = [
  {
    vars: /^SPARK_(HOST|PORT|USER|SSH_KEY|SSH_KEY_PATH|KNOWN_HOSTS|HOST_KEY_SHA256|WORKER_DIR)$/,
    symptoms: ['spark-unreachable', 'host-key-mismatch', 'host-key-unknown', 'worker-dir-missing'],
  },
  {
    vars: /^SUPABASE_(URL|SERVICE_ROLE_KEY|SECRET_KEY|PROJECT_REF)$/,
    symptoms: ['supabase-unreachable', 'supabase-key-rejected', 'jobs-table-missing', 'wrong-key-role'],
  },
];

/**
 * Findings ranked by cause, not by symptom. A misspelled variable (`SPARK_PROT`) leaves the one meant at its
 * default (port 2222), and the connection then fails or meets another host's key: the typo is the cause. It goes
 * first, as severe as what it explains, and the symptom says what it is probably because of.
 */
export function byCause(findings: readonly Finding[]): Finding[] {
  const out = findings.map((f) => ({ ...f, evidence: [...f.evidence] }));
  const causes: Finding[] = [];
  for (const f of out) {
    if (f.id !== 'config-warning') continue;
    const meant = /did you mean (\w+)\?/.exec(f.fix)?.[1];
    const shaped = meant ? SHAPED_BY.find((s) => s.vars.test(meant)) : undefined;
    const symptoms = shaped ? out.filter((g) => shaped.symptoms.includes(g.id)) : [];
    if (!symptoms.length) continue;
    const name = f.title.split(':')[0];
    for (const g of symptoms)
      g.evidence.push(`probably because of ${name}: ${meant} is not set, so its default was used`);
    const worst = sortFindings(symptoms)[0]!;
    f.severity = worst.severity;
    f.cause = `${name} is not a variable the runbooks read, so ${meant} kept its default: ${symptoms.map((g) => g.id).join(', ')} follow from it`;
    causes.push(f);
  }
  return [...causes, ...out.filter((f) => !causes.includes(f))];
}
