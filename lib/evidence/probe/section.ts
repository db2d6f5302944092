/**
 * One section of the Spark probe: the bash lines it adds to the one remote script, the tools it needs, how its
 * output becomes evidence, and the check lines it shows. The table of sections is sections.ts; the frame that
 * joins them into one script and splits the answer is ../spark-probe.ts.
 */
import { type CheckResult, check } from '../../io/steps.ts';
import type { SparkEvidence } from './spark-evidence.ts';

export interface ProbeOptions {
  workerDir: string;
  /** Bytes of the log's end to read, whatever the log's size. */
  logTailBytes: number;
  /** Ask Spark to make the worker's own request to its SUPABASE_URL. */
  reachCheck: boolean;
  reachTimeoutSeconds: number;
  marker?: string;
}

export type ScriptOptions = ProbeOptions & { marker: string };

/** A tool a section runs on Spark; a list names alternatives (the section is unknown only without all of them). */
export type ToolNeed = string | readonly string[];

/** The probe's answer, split at its markers. */
export interface ProbeOutput {
  /** An output section's text without its last newline; '' when it did not arrive. */
  text(name: string): string;
  has(name: string): boolean;
}

export interface ParseContext {
  /** SPARK_WORKER_DIR as configured. */
  workerDir: string;
  /** When (laptop time) the remote command ran: the middle of the exec. */
  laptopMidpoint: Date;
  logTailBytes: number;
}

export interface ShowContext {
  probe: SparkEvidence;
  /** The run's time. */
  now: Date;
  /** Whether the probe failed to deliver an output section (cut short, or a tool missing on Spark). */
  unseen(name: string): boolean;
}

/**
 * A remote check. Its script prints each of its `outputs` as `section NAME` (the shell function the frame defines),
 * then what the commands print; `parse` turns those outputs into its fields of {@link SparkEvidence}.
 */
export interface ProbeSection<P extends Partial<SparkEvidence> = Partial<SparkEvidence>> {
  /** A name for readers and tests. */
  name: string;
  /** The output sections its script prints, in order, each with the tools without which it is unknown. */
  outputs: Readonly<Record<string, readonly ToolNeed[]>>;
  /** Where its script runs when not in table order: `first` before the others, `last` after them. */
  runs?: 'first' | 'last';
  /** Lines that run before every section (a slow request started in the background). */
  setup?(o: ScriptOptions): string[];
  script(o: ScriptOptions): string[];
  /** The most its output can take, when more than a few lines (the exec's byte limit is the sum). */
  outputBytes?(o: ScriptOptions): number;
  parse(out: ProbeOutput, ctx: ParseContext): P;
  /** Its lines in the Spark step, in table order. */
  show(view: ShowContext): CheckResult[];
  /** True when the checks after this one would be about nothing (no worker folder): they are not shown. */
  endsChecks?(probe: SparkEvidence): boolean;
}

/** Keeps a section's parsed fields in its type, so the table can prove every field of the evidence is filled. */
export function defineSection<P extends Partial<SparkEvidence>>(section: ProbeSection<P>): ProbeSection<P> {
  return section;
}

/** What the probe did not deliver is unknown, not absent: said so instead of "missing" or "not running". */
export function notReceived(id: string, title: string): CheckResult {
  return check(id, title, 'failed', 'unknown: the probe did not deliver it (see above)');
}

/** `date -u +%s%N` (nanoseconds) as a Date; undefined when it is not one. */
export function dateOfNanoseconds(text: string | undefined): Date | undefined {
  const ns = text?.trim() ?? '';
  return /^\d{10,}$/.test(ns) ? new Date(Number(BigInt(ns) / 1_000_000n)) : undefined;
}
