/**
 * The processes that belong to a folder: every process whose command line names a path inside it or whose
 * working folder is inside it (the supervisor, PostgreSQL on its data folder, the worker in its folder). `down`
 * uses it to stop what a killed supervisor left behind; the test run uses it to find and stop leftovers.
 * Linux only (/proc); elsewhere it finds nothing.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';

/** One process found under a folder. */
export interface FolderProcess {
  pid: number;
  /** The command line, arguments joined by spaces. */
  command: string;
}

function inside(candidate: string, root: string): boolean {
  return candidate === root || candidate.startsWith(`${root}${path.sep}`);
}

/** Every process other than this one that names a path inside `folder` or runs in it. */
export function processesUnder(folder: string): FolderProcess[] {
  const root = path.resolve(folder);
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return [];
  }
  const found: FolderProcess[] = [];
  for (const p of pids) {
    const pid = Number(p);
    if (pid === process.pid) continue;
    try {
      const args = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean);
      let cwd = '';
      try {
        cwd = readlinkSync(`/proc/${p}/cwd`);
      } catch {
        // another user's process without the right to look: its command line still counts
      }
      const named = args.some((a) => a.split('=').some((part) => inside(part, root)));
      if (named || (cwd && inside(cwd, root))) found.push({ pid, command: args.join(' ') });
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

/** Whether a process exists (one of another user that we may not signal counts). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Stops every process under `folder`: SIGTERM, then SIGKILL after `graceMs`, and waits until they are gone.
 * Returns what it found (empty when nothing was running).
 */
export async function stopProcessesUnder(folder: string, graceMs = 5_000): Promise<FolderProcess[]> {
  const found = processesUnder(folder);
  const signal = (sig: NodeJS.Signals) => {
    for (const p of found) {
      try {
        process.kill(p.pid, sig);
      } catch {
        // already gone
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (found.some((p) => alive(p.pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (found.some((p) => alive(p.pid))) {
    signal('SIGKILL');
    const killDeadline = Date.now() + 5_000;
    while (found.some((p) => alive(p.pid)) && Date.now() < killDeadline) await new Promise((r) => setTimeout(r, 50));
  }
  return found;
}
