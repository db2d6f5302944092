/**
 * Quoting for commands sent to Spark over SSH.
 *
 * Why not zx's `quote`: it produces bash ANSI-C strings (`$'it\'s'`, `$'a\nb'`). sshd runs the command with the
 * remote user's login shell, and runbook commands are often re-run inside `sh -c` (nohup, sudo -u, systemd-run),
 * where dash reads `$'...'` as a literal `$` followed by a quoted string. POSIX single quotes mean the same thing in
 * every Bourne-style shell (sh, dash, bash, zsh, ksh), including across newlines, so that is what this emits.
 */

/** Characters that never need quoting in any Bourne shell (no globbing, expansion, tilde or word splitting). */
const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Quotes one argument for a POSIX shell: unchanged when it only holds safe characters, otherwise wrapped in single
 * quotes with each embedded `'` written as `'\''`. `$(...)`, backticks, `"`, `\`, `!` and newlines are all inert
 * inside single quotes. Throws on a NUL byte, which no shell argument can carry (it would silently cut the string).
 */
export function shellQuote(value: string): string {
  if (value.includes('\0')) throw new TypeError('shellQuote: a shell argument cannot contain a NUL byte');
  if (SAFE.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** Quotes each argument and joins them with spaces: `shellCommand(['ls', '-l', dir])`. */
export function shellCommand(args: readonly string[]): string {
  return args.map(shellQuote).join(' ');
}
