#!/usr/bin/env zx
// npx zx runbooks/diagnose-env.mts --help
import { COMMON_HELP, parseFlags, runMain, scriptArgs, timeoutMsFrom } from '../lib/cli.ts';
import { realPorts } from '../lib/context.ts';
import { EXIT, EXIT_CODES_HELP } from '../lib/exit-codes.ts';
import { DIAGNOSE_ENV_HELP, runDiagnoseEnv } from '../lib/runbooks/diagnose-env.ts';

// The tsx loader that .npmrc puts into NODE_OPTIONS must not leak into anything this process starts.
delete process.env.NODE_OPTIONS;

let redact = (t: string) => t;
await runMain(
  async () => {
    const flags = parseFlags(scriptArgs(process.argv, import.meta.url), {});
    if (flags.help) {
      process.stdout.write(`${DIAGNOSE_ENV_HELP}\n\n${COMMON_HELP}\n\n${EXIT_CODES_HELP}\n`);
      return EXIT.ok;
    }
    const ports = realPorts({
      ci: flags.ci,
      verbose: flags.verbose,
      jsonToStdout: flags.json === '-',
      timeoutMs: timeoutMsFrom(flags.timeout),
    });
    redact = ports.out.redact;
    return runDiagnoseEnv(ports, flags);
  },
  { argv: process.argv, stderr: (t) => process.stderr.write(t), redact: () => redact, exit: (c) => process.exit(c) },
);
