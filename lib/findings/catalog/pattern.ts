/** The shape of a failure pattern: data that names a failure, where it applies, and what to do about it. */
import type { Severity } from '../../core/finding.ts';

/** What a pattern reads of a failed job: its `error`, its `debug` (as JSON text), its lines in the worker log. */
export type PatternField = 'error' | 'debug' | 'log';
export const PATTERN_FIELDS: readonly PatternField[] = ['error', 'debug', 'log'];
/** What a pattern reads when it does not say: the job's error and its traceback in the log. */
export const DEFAULT_FIELDS: readonly PatternField[] = ['error', 'log'];

export interface ErrorPattern {
  id: string;
  title: string;
  severity: Severity;
  cause: string;
  fix: string;
  /** Whether requeueing the matched jobs is safe once the fix is deployed. */
  requeueSafe: boolean;
  /** Any of these in the fields the pattern reads (by default the job's error and its traceback in the log). */
  error: RegExp[];
  /** Any of these in the log tail counts as evidence even without a failed job row. */
  log: RegExp[];
  /** Only jobs of this type (or of one of these types), when set. */
  jobType?: string | readonly string[];
  /** The job's fields the `error` regexes are tried against; {@link DEFAULT_FIELDS} when unset. */
  fields?: readonly PatternField[];
  /** A job whose text matches any of these is not this pattern's, even when `error` matches (it falls through). */
  unless?: RegExp[];
}
