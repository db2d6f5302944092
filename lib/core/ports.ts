/**
 * The ports through which runbook code touches the world. Runbooks build real ones in lib/io/context.ts;
 * unit tests pass fakes. Nothing in lib/ reaches for process, the network or the terminal except through these.
 */

export interface Clock {
  now(): Date;
  sleep(ms: number): Promise<void>;
}

/** What one remote command returned; a failed command is a value, not an exception. */
export interface RemoteResult {
  /** Exit code; null when the command was ended by a signal or the channel closed early. */
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
  /** True when stdout was cut at `maxBytes`. */
  truncated: boolean;
}

export interface ExecOptions {
  timeoutMs?: number;
  /** Stop reading stdout after this many bytes (the rest is discarded and the channel closed). */
  maxBytes?: number;
  stdin?: string;
  /**
   * Called once, as soon as the command and its stdin have gone out (or it could not start, or ended): from then on
   * the run only waits on Spark, and other work may have the CPU (debug-stuck-jobs's queue read waits for it).
   */
  onSent?: () => void;
}

/** Where we connect on Spark, after flags, env and ~/.ssh/config are resolved. */
export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** Where the target came from, e.g. "SPARK_HOST in .env" or "Host spark in ~/.ssh/config". */
  source: string;
}

/**
 * A command channel kept open across scripts (the watch's refreshes): each `run` writes its script to the one remote
 * bash already running, one round trip where an exec takes two (the channel's open, then the command). A script runs
 * in its own subshell (its variables, options and `exit` its own, stdin /dev/null); its result reads as an exec's, the
 * code the subshell's. A run that times out, exceeds `maxBytes` or loses its channel closes the channel (the remote
 * bash is killed), so nothing it printed late can reach a later run; the next run opens a new one.
 */
export interface RemoteShell {
  /** One script at a time: a run asked for while another is on the channel waits for it. */
  run(script: string, options?: Omit<ExecOptions, 'stdin'>): Promise<RemoteResult>;
  /** Ends the channel and its remote bash (a run in progress resolves as cut off). A later run opens a new one. */
  close(): void;
}

/** One open SSH connection, reused for every remote command of a run. */
export interface SshSession {
  readonly target: SshTarget;
  /** The server's host key fingerprint, `SHA256:...` as ssh-keygen prints it. */
  readonly hostKeyFingerprint: string;
  exec(command: string, options?: ExecOptions): Promise<RemoteResult>;
  /** A {@link RemoteShell} on this connection (no channel opened until its first run); optional: without it, exec. */
  shell?(): RemoteShell;
  close(): Promise<void>;
}

export type SshFailureKind =
  | 'config' // nothing to connect to, or an unreadable key file
  | 'host-key-mismatch' // the host presented a key other than the one we know: possible MITM, never proceed
  | 'host-key-unknown' // no known_hosts entry and no pin (and the operator did not accept it)
  | 'host-key-revoked'
  | 'dns' // the name did not resolve
  | 'refused' // TCP connection refused: wrong port, sshd down
  | 'timeout' // no answer: host down, Tailscale down, firewall
  | 'auth-failed' // the key was not accepted
  | 'dropped' // the connection closed unexpectedly
  | 'unknown';

export interface SshFailure {
  kind: SshFailureKind;
  /** One line: what failed. Never contains key material. */
  message: string;
  /** One line: what to do, naming the flag, env var or command. */
  fix: string;
  /** For host-key problems: the fingerprint the host presented. */
  presentedFingerprint?: string;
}

export type SshConnectResult = { ok: true; session: SshSession } | { ok: false; failure: SshFailure };

/** Asked when a host is not in known_hosts and no pin is set; only interactive runs pass one. */
export type UnknownHostDecider = (info: { target: SshTarget; fingerprint: string }) => Promise<boolean>;
