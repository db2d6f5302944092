/** What a runbook's exit code means; the README and every --help list the same table. */
export const EXIT = {
  /** Healthy: no finding at warning level or above (or the requested action completed). */
  ok: 0,
  /** Findings at warning level or above (or some jobs were skipped). */
  findings: 1,
  /** Could not run: bad usage, bad config, a connection that failed. */
  couldNotRun: 2,
  /** The operator aborted (answered no where it matters, or pressed Ctrl-C). */
  aborted: 3,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_CODES_HELP = `Exit codes:
  0  healthy (nothing at warning level or above)
  1  findings at warning level or above
  2  could not run (usage, configuration, connection)
  3  aborted by the operator`;

/** An error that ends the run with a one-line message and a fix; `code` is the exit code. */
export class RunbookError extends Error {
  readonly fix: string;
  readonly code: ExitCode;

  constructor(message: string, fix: string, code: ExitCode = EXIT.couldNotRun, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RunbookError';
    this.fix = fix;
    this.code = code;
  }
}

/** The operator said no, or pressed Ctrl-C at a prompt. */
/**
 * The operator stopped the run (a No, Ctrl-C or Esc). Every such end reads "stopped: …" (one wording); the message
 * says what was and was not written when the stop came after a write.
 */
export class AbortedError extends RunbookError {
  constructor(message = 'at your request (Ctrl-C or Esc at a question)') {
    super(message, 'run the runbook again when ready', EXIT.aborted);
    this.name = 'AbortedError';
  }
}
