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

/**
 * Shell functions the frame defines before any section runs (the probe's and the watch's). They do in bash what a
 * process would do, because the probe runs on every diagnosis and starting a process costs more than its read:
 * - `now_ns` prints the time as `date -u +%s%N` does, in nanoseconds: from bash 5's EPOCHREALTIME (seconds, the
 *   locale's decimal separator, six digits of microseconds), or from date where bash has no such variable (bash 4);
 * - `slurp FILE` puts a small file's text in V as `$(cat FILE)` gives it (its last newlines dropped; empty when it
 *   cannot be read);
 * - `statfield PID N` puts in V field N of /proc/PID/stat after the process's name (1 the state, 2 the parent's pid,
 *   20 the start time in clock ticks after boot), as `sed 's/^.*) //' | cut -d' ' -fN` reads it: the name may hold
 *   spaces and parentheses, its last `) ` ends it (and a newline, which that pipeline stopped at). Empty when the
 *   process is gone.
 */
export const PROBE_HELPERS: readonly string[] = [
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's own ${…} expansions, in a bash line
  'now_ns() { local t=${EPOCHREALTIME:-}; if [ -n "$t" ]; then printf \'%s000\\n\' "${t//[!0-9]/}"; else date -u +%s%N; fi; }',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's own ${…} expansions, in a bash line
  "slurp() { V=; IFS= read -r -d '' V 2>/dev/null < \"$1\"; while [[ $V == *$'\\n' ]]; do V=${V%?}; done; }",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's own ${…} expansions, in a bash line
  'statfield() { local i; slurp "/proc/$1/stat"; V=${V##*\') \'}; for ((i = 1; i < $2; i++)); do V=${V#* }; done; V=${V%% *}; }',
];

/** `date -u +%s%N` (nanoseconds) as a Date; undefined when it is not one. */
export function dateOfNanoseconds(text: string | undefined): Date | undefined {
  const ns = text?.trim() ?? '';
  return /^\d{10,}$/.test(ns) ? new Date(Number(BigInt(ns) / 1_000_000n)) : undefined;
}
