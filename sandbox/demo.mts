/**
 * npm run demo: a sandbox in a temporary folder with jobs in several states and both known failures (A and B),
 * then debug-stuck-jobs against it — interactive on a terminal, read-only otherwise. The sandbox is stopped on
 * exit and on Ctrl-C.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsx = import.meta.resolve('tsx');
const env = { ...process.env };
delete env.NODE_OPTIONS;
const dir = mkdtempSync(path.join(os.tmpdir(), 'hd-demo-'));
const extra = process.argv.slice(2);

function sandbox(args: string[]): void {
  execFileSync(process.execPath, ['--import', tsx, path.join(root, 'sandbox/cli.mts'), ...args], {
    stdio: 'inherit',
    env,
  });
}

let stopped = false;
function stop(): void {
  if (stopped) return;
  stopped = true;
  try {
    sandbox(['down', '--dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  } catch (e) {
    process.stderr.write(
      `demo: could not stop the sandbox: ${(e as Error).message}; run: npm run sandbox -- down --dir ${dir}\n`,
    );
  }
}

process.stdout.write(`Starting a sandbox with both known failures in ${dir} ...\n`);
try {
  sandbox(['up', '--dir', dir, '--scenario', 'demo']);
} catch {
  stop();
  process.exit(2);
}

// Ctrl-C reaches the runbook (same process group); the demo only has to clean up after it.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
const runbook = spawn(
  process.execPath,
  ['--import', tsx, path.join(root, 'runbooks/debug-stuck-jobs.mts'), '--env-file', path.join(dir, '.env'), ...extra],
  { stdio: 'inherit', env },
);
runbook.on('close', (code) => {
  stop();
  process.stdout.write(
    `\nThat was debug-stuck-jobs on a sandbox with failure A (the app's env points at a local Supabase) and failure B (circular metadata).\nTry the others: npm run sandbox -- up --dir .sandbox, then npx zx runbooks/diagnose-env.mts --env-file .sandbox/.env\n`,
  );
  process.exit(code ?? 2);
});
