/**
 * Ranking by cause, not by symptom, as links computed between findings (none is changed in place):
 * - a misspelled variable (`SPARK_PROT`) leaves the one meant at its default (port 2222), and the connection then
 *   fails or meets another host's key: the typo is the cause. It goes first, as severe as what it explains, and each
 *   symptom says what it is probably because of (`byCause`);
 * - queued jobs that wait because of a root cause (the worker is down, polls another project, …) are that finding's
 *   evidence and jobs, not a queue-stalled finding of their own (`blameStall`).
 * Which findings are symptoms of which connection, and which are root causes, is read from the table.
 */

import { type Finding, sortFindings } from '../core/finding.ts';
import type { Evidence } from '../evidence/evidence.ts';
import { CONNECTION_VARS, type Connection } from './rule.ts';
import { stallOf } from './rules/queue.ts';
import { rootCauseOf, ruleFor } from './table.ts';

interface TypoLink {
  typo: Finding;
  /** The misspelled name, as the config warning's title gives it. */
  name: string;
  /** The variable meant, left at its default. */
  meant: string;
  symptoms: Finding[];
}

function connectionOf(variable: string): Connection | undefined {
  return (Object.keys(CONNECTION_VARS) as Connection[]).find((c) => CONNECTION_VARS[c].test(variable));
}

/** What a config warning explains among the findings, when it names a variable that shapes a connection. */
function typoLink(f: Finding, findings: readonly Finding[]): TypoLink | undefined {
  if (f.id !== 'config-warning') return undefined;
  const meant = /did you mean (\w+)\?/.exec(f.fix)?.[1];
  const connection = meant ? connectionOf(meant) : undefined;
  if (!meant || !connection) return undefined;
  const symptoms = findings.filter((g) => ruleFor(g.id)?.shapedBy === connection);
  return symptoms.length ? { typo: f, name: f.title.split(':')[0], meant, symptoms } : undefined;
}

function asCause(link: TypoLink): Finding {
  const { typo, name, meant, symptoms } = link;
  return {
    ...typo,
    evidence: [...typo.evidence],
    severity: sortFindings(symptoms)[0].severity,
    cause: `${name} is not a variable the runbooks read, so ${meant} kept its default: ${symptoms.map((g) => g.id).join(', ')} follow from it`,
  };
}

/** Findings ranked by cause: typos that explain a symptom first, as severe as it; the symptoms say so. */
export function byCause(findings: readonly Finding[]): Finding[] {
  const links = findings.map((f) => typoLink(f, findings)).filter((l): l is TypoLink => l !== undefined);
  const causes = links.map(asCause);
  const rest = findings
    .filter((f) => !links.some((l) => l.typo === f))
    .map((f) => ({
      ...f,
      evidence: [
        ...f.evidence,
        ...links
          .filter((l) => l.symptoms.includes(f))
          .map((l) => `probably because of ${l.name}: ${l.meant} is not set, so its default was used`),
      ],
    }));
  return [...causes, ...rest];
}

/** The findings, with the overdue queued jobs added to the root cause's evidence and jobs when there is one. */
export function blameStall(findings: readonly Finding[], ev: Evidence): Finding[] {
  const stall = stallOf(ev);
  const root = rootCauseOf(findings);
  if (!stall || !root) return [...findings];
  return findings.map((f) =>
    f === root
      ? { ...f, evidence: [...f.evidence, ...stall.lines], jobIds: [...(f.jobIds ?? []), ...stall.jobIds] }
      : f,
  );
}
