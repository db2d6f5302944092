/**
 * The corpus's score: each incident through the pure diagnosis (what debug-stuck-jobs runs on its evidence, with the
 * built-in patterns), judged against what the incident expects. Named right = the top finding, the exit code, the
 * jobs each expected finding claims, requeue-safety, and no finding the incident rules out. Pure and fast (the bench
 * prints it).
 */
import { atLeastWarning, type Finding } from '../../lib/core/finding.ts';
import { diagnose } from '../../lib/findings/diagnosis.ts';
import { BUILTIN_ERROR_PATTERNS } from '../../lib/findings/error-patterns.ts';
import { exitCodeFor } from '../../lib/flows/run.ts';
import type { Incident } from './incident.ts';
import { listIncidents, loadEvidence, readIncident } from './load.ts';

export interface Judgement {
  name: string;
  incident: Incident;
  findings: Finding[];
  /** The first finding at warning level or above; null when healthy. */
  top: string | null;
  exit: number;
  topRight: boolean;
  /** Everything the incident expects holds. */
  right: boolean;
  /** What does not hold, one line each. */
  problems: string[];
}

const sorted = (ids: readonly string[]) => [...new Set(ids)].sort();

/** Runs one incident through the diagnosis and compares with its expectation. */
export function judge(name: string, incident: Incident = readIncident(name)): Judgement {
  const findings = diagnose(loadEvidence(name, incident), BUILTIN_ERROR_PATTERNS, 'all');
  const top = findings.find(atLeastWarning)?.id ?? null;
  const exit = exitCodeFor(findings);
  const want = incident.expect;
  const problems: string[] = [];
  if (top !== want.top) problems.push(`top finding ${top ?? 'none'}, expected ${want.top ?? 'none'}`);
  if (exit !== want.exit) problems.push(`exit ${exit}, expected ${want.exit}`);
  for (const [id, exp] of Object.entries(want.findings)) {
    const made = findings.filter((f) => f.id === id);
    if (!made.length) {
      problems.push(`no ${id} finding`);
      continue;
    }
    const claimed = sorted(made.flatMap((f) => f.jobIds ?? []));
    const expected = sorted(exp.jobs);
    if (claimed.join() !== expected.join())
      problems.push(`${id} claims [${claimed.join(', ')}], expected [${expected.join(', ')}]`);
    const unsafe = made.filter((f) => (f.requeueSafe === true) !== exp.requeueSafe);
    if (unsafe.length) problems.push(`${id} requeueSafe ${!exp.requeueSafe}, expected ${exp.requeueSafe}`);
  }
  for (const id of want.absent ?? []) {
    if (findings.some((f) => f.id === id)) problems.push(`${id} was made; it must not be`);
  }
  return {
    name,
    incident,
    findings,
    top,
    exit,
    topRight: top === want.top,
    right: problems.length === 0,
    problems,
  };
}

export interface CorpusScore {
  total: number;
  /** Incidents named right (everything they expect holds). */
  right: number;
  /** Incidents whose top finding is right. */
  topRight: number;
  mixed: { total: number; right: number };
  misses: Array<{ name: string; problems: string[] }>;
}

/** Named right / total over the whole corpus. */
export function scoreCorpus(names: readonly string[] = listIncidents()): CorpusScore {
  const judged = names.map((n) => judge(n));
  const mixed = judged.filter((j) => j.incident.tags.includes('mixed'));
  return {
    total: judged.length,
    right: judged.filter((j) => j.right).length,
    topRight: judged.filter((j) => j.topRight).length,
    mixed: { total: mixed.length, right: mixed.filter((j) => j.right).length },
    misses: judged.filter((j) => !j.right).map((j) => ({ name: j.name, problems: j.problems })),
  };
}
