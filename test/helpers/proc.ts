/** This machine's processes, read from /proc (Linux), for tests that check what a run left behind. */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** The pids for which `test` holds; a process that ends while it is read is left out. */
export function processesWhere(test: (pid: string) => boolean): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return test(p);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Processes whose working directory is `dir`. */
export function processesWorkingIn(dir: string): number[] {
  return processesWhere((p) => readlinkSync(`/proc/${p}/cwd`) === dir);
}

/** Processes whose command line has an argument for which `test` holds. */
export function processesWithArgs(test: (args: string[]) => boolean): number[] {
  return processesWhere((p) => test(readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')));
}
