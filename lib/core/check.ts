/** A check's result: what was checked, how it went, what was seen, what to do (shown by the output, kept in reports). */

export type CheckStatus = 'ok' | 'warning' | 'failed' | 'skipped';

/** One line of a runbook's progress: what was checked, how it went, what was seen, what to do. */
export interface CheckResult {
  id: string;
  title: string;
  status: CheckStatus;
  summary: string;
  details?: string[];
  fix?: string;
  durationMs?: number;
}

export function check(
  id: string,
  title: string,
  status: CheckStatus,
  summary: string,
  extra: Partial<Pick<CheckResult, 'details' | 'fix'>> = {},
): CheckResult {
  return { id, title, status, summary, ...extra };
}
