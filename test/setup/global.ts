/**
 * The test run's own ground, made before any test file and checked after the last one:
 * - a run folder that is TMPDIR for the workers and every child they start (sandboxes, runbooks), and whose
 *   `state/` is XDG_STATE_HOME, so no test writes the operator's own audit file;
 * - the vitest main pid, which every sandbox watches (`up --owner-pid`): a run killed by a CI timeout or
 *   Ctrl-C leaves no PostgreSQL or worker behind;
 * - at the end, a check that fails the run on leftovers: a process still running in the run folder, a folder a
 *   test did not remove, a change to the operator's audit file. Leftovers are listed, then cleaned up.
 * Run folders of earlier runs that were killed before their end are removed at the start.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive, processesUnder, stopProcessesUnder } from '../../sandbox/processes.ts';
import { BUNDLE_DIR_ENV, OWNER_PID_ENV, RUN_DIR_ENV } from '../helpers/run.ts';
import { bundleRunbooks } from './bundle.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RUN_PREFIX = 'hd-test-run-';
/** Kept by the run itself, not by a test: the state folder, tsx's cache, PostgreSQL's initdb template and binaries. */
const OWNED_BY_THE_RUN = [/^state$/, /^owner\.pid$/, /^tsx-\d+$/, /^hd-sandbox-pgdata-/, /^hd-sandbox-pgbin-/];
/** Where the setup tells the reporter what the operator's audit file looked like before the run. */
const AUDIT_BEFORE_ENV = 'HD_TEST_AUDIT_BEFORE';
const OPERATOR_AUDIT_ENV = 'HD_TEST_OPERATOR_AUDIT';

/**
 * What the tests left behind in the run folder: processes still running there, folders no test removed, a change
 * to the operator's own audit file. Empty when the run is clean. test/reporters/summary.ts counts each as a failure.
 */
export function leftovers(): string[] {
  const dir = process.env[RUN_DIR_ENV];
  if (!dir) return [];
  const problems: string[] = [];
  const running = processesUnder(dir);
  if (running.length)
    problems.push(
      `${running.length} process(es) still running: ${running.map((p) => `${p.pid} ${p.command.slice(0, 120)}`).join('; ')}`,
    );
  const left = existsSync(dir) ? readdirSync(dir).filter((n) => !OWNED_BY_THE_RUN.some((re) => re.test(n))) : [];
  if (left.length) problems.push(`folder(s) not removed by the tests that made them: ${left.join(', ')}`);
  const before = process.env[AUDIT_BEFORE_ENV];
  if (before !== undefined && fingerprint(operatorAuditFile()) !== before)
    problems.push(`the operator's audit file ${operatorAuditFile()} changed during the run`);
  return problems;
}

const BUNDLES_HOME = path.join(ROOT, 'node_modules', '.cache', 'hd-runbooks-tests');

/** Whether the vitest that made `dir` (its owner.pid) is gone. */
function abandoned(dir: string): boolean {
  let owner = 0;
  try {
    owner = Number(readFileSync(path.join(dir, 'owner.pid'), 'utf8'));
  } catch {
    // no pid file: a run that died while making its folder
  }
  return !(owner && alive(owner));
}

/**
 * What runs killed before their teardown left: their run folders (processes stopped first) and their bundles,
 * wherever their TMPDIR was (a run inside a test has its own).
 */
async function removeAbandonedRuns(base: string): Promise<void> {
  for (const name of readdirSync(base)) {
    const dir = path.join(base, name);
    if (!name.startsWith(RUN_PREFIX) || !abandoned(dir)) continue;
    await stopProcessesUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  }
  if (!existsSync(BUNDLES_HOME)) return;
  for (const name of readdirSync(BUNDLES_HOME)) {
    const dir = path.join(BUNDLES_HOME, name);
    if (abandoned(dir)) rmSync(dir, { recursive: true, force: true });
  }
}

/** The operator's audit file, as the runbooks would find it outside the test run (kept for the reporter). */
function operatorAuditFile(): string {
  if (process.env[OPERATOR_AUDIT_ENV]) return process.env[OPERATOR_AUDIT_ENV];
  const base = process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'hd-worker-runbooks', 'requeue-audit.jsonl');
}

function fingerprint(file: string): string {
  try {
    const s = statSync(file);
    return `${s.size}:${s.mtimeMs}`;
  } catch {
    return 'absent';
  }
}

export default async function setup(): Promise<() => Promise<void>> {
  const base = os.tmpdir();
  await removeAbandonedRuns(base);
  const dir = mkdtempSync(path.join(base, RUN_PREFIX));
  // As root, each sandbox's PostgreSQL runs as the `postgres` user, which must be able to pass through.
  if (process.getuid?.() === 0) chmodSync(dir, 0o711);
  writeFileSync(path.join(dir, 'owner.pid'), String(process.pid));
  mkdirSync(path.join(dir, 'state'));
  const operatorAudit = operatorAuditFile();
  const auditBefore = fingerprint(operatorAudit);
  const saved = {
    TMPDIR: process.env.TMPDIR,
    XDG_STATE_HOME: process.env.XDG_STATE_HOME,
    [RUN_DIR_ENV]: process.env[RUN_DIR_ENV],
    [OWNER_PID_ENV]: process.env[OWNER_PID_ENV],
    [AUDIT_BEFORE_ENV]: process.env[AUDIT_BEFORE_ENV],
    [OPERATOR_AUDIT_ENV]: process.env[OPERATOR_AUDIT_ENV],
    [BUNDLE_DIR_ENV]: process.env[BUNDLE_DIR_ENV],
  };
  process.env.TMPDIR = dir;
  process.env.XDG_STATE_HOME = path.join(dir, 'state');
  process.env[RUN_DIR_ENV] = dir;
  process.env[OWNER_PID_ENV] = String(process.pid);

  process.env[AUDIT_BEFORE_ENV] = auditBefore;
  process.env[OPERATOR_AUDIT_ENV] = operatorAudit;
  // Inside the project, so the bundles find their dependencies in node_modules; removed at the end.
  const bundles = path.join(BUNDLES_HOME, path.basename(dir));
  await bundleRunbooks(ROOT, bundles);
  writeFileSync(path.join(bundles, 'owner.pid'), String(process.pid));
  process.env[BUNDLE_DIR_ENV] = bundles;

  // Killed by a signal (a CI timeout's SIGTERM, Ctrl-C): the workers die with their children orphaned (a test's own
  // PostgreSQL, a worker process). Stop everything working in the run folder before going; synchronously, since
  // vitest may exit right after. Sandboxes also watch this pid; SIGKILL leaves the rest to the next run's sweep.
  const onSignal = (signal: NodeJS.Signals) => {
    for (const p of processesUnder(dir)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    for (const folder of [dir, bundles]) rmSync(folder, { recursive: true, force: true, maxRetries: 3 });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(signal, onSignal);

  // The reporter has judged the leftovers by now (it runs first); this only cleans up.
  return async () => {
    await stopProcessesUnder(dir);
    rmSync(dir, { recursive: true, force: true });
    rmSync(bundles, { recursive: true, force: true });
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}
