/**
 * Flags every runbook shares, and the wrapper that turns a runbook's outcome (or its error) into an exit code.
 * Parsing is strict: an unknown flag or a missing value is a usage error (exit 2), never ignored.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { AbortedError, EXIT, type ExitCode, RunbookError } from '../core/exit-codes.ts';
import { editDistance } from '../core/text.ts';
import { inert } from './inert.ts';

export const COMMON_OPTIONS = {
  config: { type: 'string' },
  'env-file': { type: 'string' },
  json: { type: 'string' },
  markdown: { type: 'string' },
  ci: { type: 'boolean', default: false },
  verbose: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  timeout: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

export const COMMON_HELP = `Common options:
  --config FILE       read the configuration from FILE (default: ./.env, after the environment); the older
                      --env-file FILE works too, but Node itself also reads --env-file (a missing FILE
                      ends the run before it starts): prefer --config
  --json FILE|-       write the result as JSON to FILE, or to stdout with - (human output then goes to stderr)
  --markdown FILE     write an incident report in markdown
  --ci                non-interactive: never prompt, never write unless told (requeue: --apply --yes);
                      also when CI is set or there is no terminal
  --timeout SECONDS   per network call (default 10)
  --verbose           show timings, ok details and stack traces
  -h, --help          this help`;

/**
 * The runbook's own arguments. `node runbook.mts a b` puts them at argv[2]; `npx zx runbook.mts a b` puts zx's
 * CLI first, so they start after the script's own path.
 */
export function scriptArgs(argv: readonly string[], importMetaUrl: string): string[] {
  const self = fileURLToPath(importMetaUrl);
  const i = argv.findIndex((a, n) => n > 0 && path.resolve(a) === self);
  const args = argv.slice(i === -1 ? 2 : i + 1);
  // `runbook.mts -- --config F`: a leading -- (which keeps Node and npx off the flags) is not the runbook's.
  return args[0] === '--' ? args.slice(1) : args;
}

/** The config file flag: --config, or the older --env-file; both naming different files is a usage error. */
export function configFileFlag(flags: { config?: string; 'env-file'?: string }): string | undefined {
  if (flags.config !== undefined && flags['env-file'] !== undefined && flags.config !== flags['env-file'])
    throw new RunbookError(
      `usage: --config ${flags.config} and --env-file ${flags['env-file']} name two different files`,
      'pass one of them: --config FILE',
    );
  return flags.config ?? flags['env-file'];
}

/** Parses argv with the runbook's own options added to the common ones. */
export function parseFlags<O extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  own: O,
): ReturnType<
  typeof parseArgs<{ options: typeof COMMON_OPTIONS & O; strict: true; allowPositionals: false }>
>['values'] {
  try {
    return parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...own }, strict: true, allowPositionals: false })
      .values as never;
  } catch (e) {
    const message = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '').split('\n')[0];
    const unknown = /Unknown option '--([^']+)'/.exec(message)?.[1];
    const near = unknown ? nearestOption(unknown, Object.keys({ ...COMMON_OPTIONS, ...own })) : undefined;
    throw new RunbookError(
      `usage: ${message}`,
      near ? `did you mean --${near}? (see --help)` : 'see --help for the options',
    );
  }
}

/** The option an unknown one was probably meant to be: at most two edits away, or a prefix of it. */
function nearestOption(typed: string, options: readonly string[]): string | undefined {
  const scored = options
    .map((o) => ({ o, d: o.startsWith(typed) && typed.length >= 3 ? 0 : editDistance(typed, o) }))
    .sort((x, y) => x.d - y.d);
  return scored[0] && scored[0].d <= 2 ? scored[0].o : undefined;
}

export function timeoutMsFrom(flag: string | undefined): number {
  if (flag === undefined) return 10_000;
  if (!/^\d{1,4}(\.\d+)?$/.test(flag) || Number(flag) <= 0 || Number(flag) > 600) {
    throw new RunbookError(
      `--timeout must be seconds between 0 and 600 (got "${flag.slice(0, 20)}")`,
      'e.g. --timeout 10',
    );
  }
  return Math.round(Number(flag) * 1000);
}

/**
 * Runs a runbook's main and exits with its code. A RunbookError prints one line and its fix; anything else is a
 * bug: one line, and the stack only with --verbose.
 */
export async function runMain(
  main: () => Promise<ExitCode>,
  io: {
    argv: string[];
    stderr: (text: string) => void;
    redact: () => (text: string) => string;
    exit: (code: number) => void;
    /** On a terminal: wraps a line to its width, continuation lines indented to `hang` (lib/io/wrap.ts). */
    wrap?: () => Promise<(text: string, hang: number) => string>;
  },
): Promise<void> {
  const verbose = io.argv.includes('--verbose');
  let code: number;
  try {
    code = await main();
  } catch (e) {
    // An error message can carry a server's or a file's text: inert, then redacted, like every other line.
    const redacted = io.redact();
    const fit = io.wrap ? await io.wrap().catch(() => undefined) : undefined;
    /** `label: text`, inert, redacted, then wrapped under its label on a terminal. */
    const line = (label: string, text: string) => {
      const l = redacted(inert(`${label}${text}`));
      return `${fit ? fit(l, label.length) : l}\n`;
    };
    if (e instanceof AbortedError) {
      io.stderr(line('stopped: ', e.message) + line('  next: ', e.fix));
      code = e.code;
    } else if (e instanceof RunbookError) {
      io.stderr(line('error: ', e.message) + line('  fix: ', e.fix));
      if (verbose && e.cause) io.stderr(redacted(inert(`${(e.cause as Error).stack ?? String(e.cause)}\n`)));
      code = e.code;
    } else {
      const err = e as Error;
      io.stderr(
        line('error: ', `unexpected failure: ${err?.message ?? String(e)}`) +
          line('  fix: ', 'run again with --verbose and report it'),
      );
      if (verbose) io.stderr(redacted(inert(`${err?.stack ?? ''}\n`)));
      code = EXIT.couldNotRun;
    }
  }
  io.exit(code);
}
