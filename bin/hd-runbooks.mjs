#!/usr/bin/env node
/**
 * hd-runbooks debug|requeue|diagnose|watch [options]: the runbooks from any folder. Node 20 cannot load the
 * TypeScript runbooks by itself (the repository's .npmrc adds tsx's loader only inside the repository), so this
 * registers tsx's loader here, then runs the runbook in this very process: its flags, prompts, Ctrl-C and exit code
 * are the runbook's own.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNBOOKS = {
  debug: 'debug-stuck-jobs',
  'debug-stuck-jobs': 'debug-stuck-jobs',
  requeue: 'requeue',
  diagnose: 'diagnose-env',
  'diagnose-env': 'diagnose-env',
  watch: 'watch',
};
const USAGE = `Usage: hd-runbooks <runbook> [options]

Runbooks:
  debug      which jobs are stuck, why, and what to do (runbooks/debug-stuck-jobs.mts)
  diagnose   is every side configured for the same project? (runbooks/diagnose-env.mts)
  requeue    put jobs back in the queue once the fix is deployed (runbooks/requeue.mts)
  watch      the queue live: counts, rates, backlog, the worker (runbooks/watch.mts)

hd-runbooks <runbook> --help shows its options.`;

const [name, ...rest] = process.argv.slice(2);
if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
  process.stdout.write(`${USAGE}\n`);
  process.exit(name === undefined ? 2 : 0);
}
const file = RUNBOOKS[name] && path.join(ROOT, 'runbooks', `${RUNBOOKS[name]}.mts`);
if (!file || !existsSync(file)) {
  const known = Object.keys(RUNBOOKS).filter((k) => !k.includes('-'));
  const close = known.find((k) => k.startsWith(name.slice(0, 3)) || name.startsWith(k.slice(0, 3)));
  process.stderr.write(
    `error: no runbook "${String(name).slice(0, 40)}"${close ? ` (did you mean ${close}?)` : ''}\n  fix: hd-runbooks ${close ?? 'debug'} --help; the runbooks are ${known.join(', ')}\n`,
  );
  process.exit(2);
}

// What the runbook reads as its own command line: the script, then its arguments.
process.argv = [process.argv[0], file, ...rest];
const { register } = await import('tsx/esm/api');
register();
await import(pathToFileURL(file).href);
