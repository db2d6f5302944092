/** Small helpers for reading the SSH settings: blank means unset, `~` means home, problems are values. */
import type { SshFailure } from '../../core/ports.ts';

/** The trimmed value, or undefined when it is unset or blank. */
export function nonEmpty(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

/** A settings problem, as {@link resolveSshTarget} returns it. */
export function configFailure(message: string, fix: string): { ok: false; failure: SshFailure } {
  return { ok: false, failure: { kind: 'config', message, fix } };
}

/** Expands a leading `~` or `~/` to the home folder; `~user` forms are left alone (we do not look users up). */
export function expandTilde(path: string, homeDir: string): string {
  if (path === '~') return homeDir;
  if (path.startsWith('~/')) return homeDir.replace(/\/+$/, '') + path.slice(1);
  return path;
}
