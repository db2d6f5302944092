/**
 * The one entry point every runbook script calls: clears the loader from the environment, parses flags, prints
 * --help, builds the real ports, turns Ctrl-C outside a prompt into "finish what is in flight, then exit 3", and
 * exits only after stdout has drained (a `--json -` report is never cut off).
 */
import { fileURLToPath } from 'node:url';
import type { ParseArgsConfig } from 'node:util';
import { EXIT, EXIT_CODES_HELP, type ExitCode } from '../core/exit-codes.ts';
import { COMMON_HELP, parseFlags, runMain, scriptArgs, timeoutMsFrom } from './cli.ts';
import type { Ports } from './context.ts';
import { prebuiltRunbook, runPrebuiltScript } from './prebuilt.ts';

export interface RunbookEntry<O extends NonNullable<ParseArgsConfig['options']>> {
  importMetaUrl: string;
  options: O;
  help: string;
  exitCodesHelp?: string;
  run: (
    ports: Ports,
    flags: ReturnType<typeof parseFlags<O>>,
    extra: {
      argv: string[];
      signal: AbortSignal;
      /** From now on Ctrl-C is the normal way out (a live view): the run's own exit code stands, not 3. */
      stopEndsNormally: () => void;
    },
  ) => Promise<ExitCode>;
}

export async function runbookEntry<O extends NonNullable<ParseArgsConfig['options']>>(
  entry: RunbookEntry<O>,
): Promise<void> {
  // The tsx loader that .npmrc puts into NODE_OPTIONS must not leak into anything this process starts.
  delete process.env.NODE_OPTIONS;
  if (await ranPrebuilt(entry)) return;

  // Ctrl-C at a prompt is handled by the prompt (exit 3). Elsewhere: stop starting writes, let those in flight
  // finish and be audited, then exit 3. A second Ctrl-C quits at once, with 130 (128 + SIGINT, as a shell reports it).
  const interrupted = new AbortController();
  process.on('SIGINT', () => {
    if (interrupted.signal.aborted) process.exit(130);
    process.stderr.write('\nstopping: finishing what is in flight (Ctrl-C again to quit now)\n');
    interrupted.abort();
  });

  let redact = (t: string) => t;
  await runMain(
    async () => {
      const argv = scriptArgs(process.argv, entry.importMetaUrl);
      const flags = parseFlags(argv, entry.options);
      // The common flags are always there; TypeScript cannot see through the generic merge.
      const common = flags as unknown as {
        help: boolean;
        ci: boolean;
        verbose: boolean;
        json?: string;
        timeout?: string;
      };
      if (common.help) {
        process.stdout.write(`${entry.help}\n\n${COMMON_HELP}\n\n${entry.exitCodesHelp ?? EXIT_CODES_HELP}\n`);
        return EXIT.ok;
      }
      // Loaded only now: --help and usage errors should not pay for supabase-js and ssh2.
      const { realPorts } = await import('./context.ts');
      const ports = await realPorts({
        ci: common.ci,
        verbose: common.verbose,
        jsonToStdout: common.json === '-',
        timeoutMs: timeoutMsFrom(common.timeout),
      });
      redact = ports.out.redact;
      let stopIsNormal = false;
      const stopEndsNormally = () => {
        stopIsNormal = true;
      };
      const code = await entry.run(ports, flags, { argv, signal: interrupted.signal, stopEndsNormally });
      return interrupted.signal.aborted && !stopIsNormal ? EXIT.aborted : code;
    },
    {
      argv: process.argv,
      stderr: (t) => process.stderr.write(t),
      redact: () => redact,
      wrap: process.stderr.isTTY
        ? async () => {
            const { wrapLine } = await import('./wrap.ts');
            return (text: string, hang: number) => wrapLine(text, process.stderr.columns, hang);
          }
        : undefined,
      // process.exit drops what a pipe has not taken yet; an empty write's callback fires once the rest is out.
      exit: (c) => process.stdout.write('', () => process.stderr.write('', () => process.exit(c))),
    },
  );
}

/**
 * A run (not --help, no usage error: those answer from here, with nothing more loaded) of a runbook whose prebuilt
 * bundle is up to date with its sources (lib/io/prebuilt.ts) runs the bundle instead, in this process, as if it had
 * been started directly: its flags, prompts, Ctrl-C and exit code. Resolves true once the bundle has run.
 */
async function ranPrebuilt(entry: {
  importMetaUrl: string;
  options: NonNullable<ParseArgsConfig['options']>;
}): Promise<boolean> {
  const argv = scriptArgs(process.argv, entry.importMetaUrl);
  try {
    if ((parseFlags(argv, entry.options) as { help?: boolean }).help) return false;
  } catch {
    return false;
  }
  const bundle = prebuiltRunbook(entry.importMetaUrl);
  if (!bundle) return false;
  process.argv = [process.argv[0], fileURLToPath(bundle.moduleUrl), ...argv];
  await runPrebuiltScript(bundle);
  return true;
}
