/**
 * What a test makes, it gives back. Temporary folders come from {@link tempDir} and sandboxes from
 * `startSandbox`; both are registered here, and test/setup/per-file.ts releases whatever a file left when the
 * file ends. test/setup/global.ts then fails the run on anything still there (a folder in the run's TMPDIR, a
 * process in it, a change to the operator's own audit file).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Set by test/setup/global.ts for the workers: the run's own folder (also TMPDIR) and the vitest main pid. */
export const RUN_DIR_ENV = 'HD_TEST_RUN_DIR';
export const OWNER_PID_ENV = 'HD_TEST_OWNER_PID';
/** The runbooks bundled from this run's sources (test/setup/bundle.ts), for runs that ask for `bundle`. */
export const BUNDLE_DIR_ENV = 'HD_TEST_BUNDLE_DIR';

type Release = () => Promise<void> | void;
const releases = new Map<object, Release>();

/** Registers something to release when the file ends; returns the key to pass to {@link released}. */
export function holdUntilFileEnd(release: Release): object {
  const key = {};
  releases.set(key, release);
  return key;
}

/** The thing under `key` was released by the test itself. */
export function released(key: object): void {
  releases.delete(key);
}

/** A fresh folder in the run's TMPDIR, removed when the file ends (or earlier by the test). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  holdUntilFileEnd(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Releases everything still held, newest first; collects the errors and throws them together. */
export async function releaseAll(): Promise<void> {
  const errors: string[] = [];
  for (const [key, release] of [...releases].reverse()) {
    releases.delete(key);
    try {
      await release();
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  if (errors.length) throw new Error(`could not clean up after the file: ${errors.join('; ')}`);
}

/** The pid whose end stops this run's sandboxes: the vitest main process (or this one, outside the suite). */
export function ownerPid(): number {
  return Number(process.env[OWNER_PID_ENV]) || process.pid;
}
