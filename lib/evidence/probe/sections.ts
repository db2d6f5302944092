/**
 * The probe's sections, in the order their check lines show. Adding a remote check is one entry here (its own
 * module beside this one), a finding rule that reads its evidence, and tests.
 */
import { clockSection } from './clock.ts';
import { diskSection } from './disk.ts';
import { reachSection } from './reach.ts';
import type { ProbeSection } from './section.ts';
import type { SparkEvidence } from './spark-evidence.ts';
import { workerDirSection } from './worker-dir.ts';
import { workerEnvSection } from './worker-env.ts';
import { workerLogSection } from './worker-log.ts';
import { workerProcessSection } from './worker-process.ts';
import { workerSupervisorSection } from './worker-supervisor.ts';

export const PROBE_SECTIONS = [
  workerDirSection,
  workerEnvSection,
  reachSection,
  workerProcessSection,
  workerSupervisorSection,
  workerLogSection,
  clockSection,
  diskSection,
] as const;

type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;

/** What the sections' parsers fill together; the frame adds what it learns itself (sections and tools missing). */
export type ParsedEvidence = UnionToIntersection<ReturnType<(typeof PROBE_SECTIONS)[number]['parse']>>;

/** The evidence the sections must fill between them (parseProbeOutput checks it at compile time). */
export type SectionsEvidence = Omit<SparkEvidence, 'missingSections' | 'missingTools'>;

/** The sections in the order their scripts run: `first`, then the table's order, then `last`. */
export function scriptOrder(sections: readonly ProbeSection[] = PROBE_SECTIONS): ProbeSection[] {
  const at = (s: ProbeSection) => (s.runs === 'first' ? 0 : s.runs === 'last' ? 2 : 1);
  return [...sections].sort((a, b) => at(a) - at(b));
}
