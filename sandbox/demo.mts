/**
 * npm run demo: a sandbox in a temporary folder with jobs in several states and both known failures (A and B),
 * then debug-stuck-jobs against it — interactive on a terminal, read-only otherwise. The sandbox is stopped and
 * its folder removed on exit, on Ctrl-C at any point (exit 130 while the sandbox starts; the runbook's own exit
 * 3 after) and on SIGTERM; if the demo itself is killed, the sandbox notices (`up --owner-pid`) and stops.
 * A hand-over to requeue writes its audit file into the demo's own folder, never the operator's.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsx = import.meta.resolve('tsx');
const env: NodeJS.ProcessEnv = { ...process.env };
delete env.NODE_OPTIONS;
const dir = mkdtempSync(path.join(os.tmpdir(), 'hd-demo-'));
const extra = process.argv.slice(2);

let child: ChildProcess | undefined;
let interrupted: NodeJS.Signals | undefined;

function run(script: string, args: string[], childEnv: NodeJS.ProcessEnv): Promise<number | null> {
  return new Promise((resolve) => {
    child = spawn(process.execPath, ['--import', tsx, path.join(root, script), ...args], {
      stdio: 'inherit',
      env: childEnv,
    });
    child.on('error', () => resolve(null));
    child.on('close', (code) => {
      child = undefined;
      resolve(code);
    });
  });
}

// Ctrl-C reaches the child too (same process group) and the child ends on its own; the demo waits for it, then
// cleans up. SIGTERM (sent to the demo alone) is passed on. A second signal while cleaning up is ignored.
function onSignal(signal: NodeJS.Signals): void {
  if (interrupted) return;
  interrupted = signal;
  if (signal === 'SIGTERM') child?.kill('SIGTERM');
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

async function stop(): Promise<void> {
  const code = await run('sandbox/cli.mts', ['down', '--dir', dir], env);
  if (code === 0) rmSync(dir, { recursive: true, force: true });
  else
    process.stderr.write(
      `demo: could not stop the sandbox (exit ${code}); run: npm run sandbox -- down --dir ${dir}, then rm -r ${dir}\n`,
    );
}

process.stdout.write(`Starting a sandbox with both known failures in ${dir} ...\n`);
const up = await run(
  'sandbox/cli.mts',
  ['up', '--dir', dir, '--scenario', 'demo', '--owner-pid', String(process.pid)],
  env,
);
if (up !== 0 || interrupted) {
  await stop();
  if (interrupted) process.stderr.write('demo: interrupted while the sandbox was starting; stopped it, nothing left\n');
  process.exit(interrupted ? 130 : 2);
}

const code = await run('runbooks/debug-stuck-jobs.mts', ['--config', path.join(dir, '.env'), ...extra], {
  ...env,
  XDG_STATE_HOME: path.join(dir, 'state'),
});
await stop();
const epilogue = [
  "That was debug-stuck-jobs on a sandbox where the app's env points at a local Supabase (its jobs never reach the worker) and the worker fails import_assets_jsonl with a circular structure in metadata.",
  'Try the others: npm run sandbox -- up --dir .sandbox, then npx zx runbooks/diagnose-env.mts --config .sandbox/.env',
];
// On a terminal, wrapped to its width as the runbook's own lines are (a command is never broken).
const fit = process.stdout.isTTY
  ? ((await import('../lib/io/wrap.ts')).wrapLine as (t: string, c: number | undefined, h: number) => string)
  : undefined;
process.stdout.write(`\n${epilogue.map((l) => (fit ? fit(l, process.stdout.columns, 0) : l)).join('\n')}\n`);
process.exit(code ?? 2);
