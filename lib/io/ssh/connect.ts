/**
 * The one SSH connection of a runbook run: host key check (pin or known_hosts, optionally asking the operator),
 * failures classified into something an operator can act on, and `exec` over the same connection.
 *
 * Every path is bounded in time: connecting (`timeoutMs`, paused only while the operator is being asked about an
 * unknown host key) and each command (`ExecOptions.timeoutMs`, else `execTimeoutMs`). Nothing here throws for a
 * network or remote problem: connecting yields an {@link SshConnectResult}, a command yields a
 * {@link SparkRemoteResult}. Key material is never put in a message.
 */

import { StringDecoder } from 'node:string_decoder';
import type { ClientChannel, ConnectConfig, ParsedKey, ServerHostKeyAlgorithm } from 'ssh2';
import ssh2 from 'ssh2';
import type {
  ExecOptions,
  RemoteResult,
  SshFailure,
  SshFailureKind,
  SshSession,
  SshTarget,
  UnknownHostDecider,
} from '../../core/ports.ts';
import { shellQuote } from '../shell-quote.ts';
import {
  checkHostKey,
  fingerprintSha256,
  hostKeyFingerprintCommand,
  keyTypeOfBlob,
  normalizeFingerprint,
  parseKnownHosts,
} from './known-hosts.ts';
import type { SshAuthSpec } from './target.ts';

const { Client, utils } = ssh2;

/** Per-command timeout when neither the call nor the session sets one. */
export const DEFAULT_EXEC_TIMEOUT_MS = 120_000;
/** How often an idle connection is probed, so a vanished Tailscale peer is noticed between commands. */
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 15_000;
/** stderr beyond this is dropped (with a marker): a runaway command must not exhaust the laptop's memory. */
const STDERR_CAP_BYTES = 1024 * 1024;
/** After asking a channel to close (timeout, truncation), how long to wait for the server before giving up on it. */
const CHANNEL_CLOSE_GRACE_MS = 2_000;
/** How long `close()` waits for a clean disconnect before destroying the socket. */
const CLOSE_GRACE_MS = 2_000;

/** A remote command's result with the two conditions a runbook must tell apart from "the command failed". */
export interface SparkRemoteResult extends RemoteResult {
  /** The command ran past its timeout; its channel was closed (and sent KILL) and `code` is null. */
  timedOut: boolean;
  /** The connection was gone before or during the command; `code` is null. Later commands fail the same way. */
  connectionLost: boolean;
}

/** The session {@link connectSpark} returns: an {@link SshSession} whose results carry the extra flags. */
export interface SparkSshSession extends SshSession {
  exec(command: string, options?: ExecOptions): Promise<SparkRemoteResult>;
  /** Why the connection is no longer usable (closed by us, dropped, keepalive timeout); undefined while it is. */
  readonly closedReason: string | undefined;
}

/** {@link SshConnectResult} narrowed to the session type this module returns. */
export type SparkConnectResult = { ok: true; session: SparkSshSession } | { ok: false; failure: SshFailure };

/** Inputs of {@link connectSpark}. */
export interface ConnectSparkOptions {
  target: SshTarget;
  auth: SshAuthSpec;
  /** The known_hosts text; undefined when the file does not exist (every host is then unknown). */
  knownHostsText?: string;
  /** The known_hosts file's path, for the commands printed in fixes; default `~/.ssh/known_hosts`. */
  knownHostsPath?: string;
  /** `SHA256:...`; when set, the host key must have exactly this fingerprint and known_hosts is not consulted. */
  pinnedFingerprint?: string;
  /** Asked when the host is not in known_hosts and nothing is pinned; without it such hosts are refused. */
  onUnknownHost?: UnknownHostDecider;
  /** Reads a key file (`auth.kind === 'file'`). */
  readTextFile: (path: string) => Promise<string>;
  /** Upper bound for TCP connect + handshake + authentication. */
  timeoutMs: number;
  /** Default per-command timeout; default {@link DEFAULT_EXEC_TIMEOUT_MS}. */
  execTimeoutMs?: number;
  /** SSH keepalive interval; 0 disables; default {@link DEFAULT_KEEPALIVE_INTERVAL_MS}. */
  keepaliveIntervalMs?: number;
}

/**
 * Opens the SSH connection to Spark. Resolves `{ ok: false, failure }` for every expected problem (bad key file,
 * host key refused, DNS, refused, timeout, authentication, dropped); only programming errors throw.
 */
export async function connectSpark(options: ConnectSparkOptions): Promise<SparkConnectResult> {
  const { target } = options;
  let pinned: string | undefined;
  if (options.pinnedFingerprint !== undefined) {
    pinned = normalizeFingerprint(options.pinnedFingerprint);
    if (pinned === undefined) {
      return {
        ok: false,
        failure: {
          kind: 'config',
          message: 'SPARK_HOST_KEY_SHA256 is not a SHA256 host key fingerprint',
          fix: `Set it to the SHA256:... value of \`${hostKeyFingerprintCommand()}\` run on Spark`,
        },
      };
    }
  }
  let key = await loadKey(options);
  if ('failure' in key) {
    // A key ssh would merely try (IdentityFile from ~/.ssh/config) may be missing or passphrase-protected while the
    // agent holds it; ssh then goes on with the agent, and so do we. An explicitly configured key has no fallback.
    if (options.auth.kind === 'file' && options.auth.agentSocket !== undefined)
      key = { agentSocket: options.auth.agentSocket };
    else return { ok: false, failure: key.failure };
  }

  const knownHosts = options.knownHostsText === undefined ? undefined : parseKnownHosts(options.knownHostsText);
  const knownTypes =
    knownHosts === undefined ? [] : checkHostKey(knownHosts, target.host, target.port, Buffer.alloc(0)).knownKeyTypes;
  const knownHostsPath = options.knownHostsPath ?? '~/.ssh/known_hosts';
  const where = `${target.host}:${target.port}`;

  return new Promise<SparkConnectResult>((resolve) => {
    const client = new Client();
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let hostKeyFailure: SshFailure | undefined;
    let acceptedFingerprint: string | undefined;
    let agentProblem: string | undefined;

    const startTimer = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        settle({
          ok: false,
          failure: {
            kind: 'timeout',
            message: `Spark (${where}) did not answer in ${seconds(options.timeoutMs)}`,
            fix: 'Is Tailscale up on both ends (`tailscale status`) and Spark powered on? Check SPARK_HOST and SPARK_PORT',
          },
        });
      }, options.timeoutMs);
    };

    const settle = (result: SparkConnectResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!result.ok) client.destroy();
      resolve(result);
    };

    const refuseHostKey = (failure: SshFailure, verify: (ok: boolean) => void) => {
      hostKeyFailure = failure;
      verify(false);
      // ssh2 reports the refusal as a handshake error; settle now in case that error is delayed or swallowed.
      settle({ ok: false, failure });
    };

    const hostVerifier = (keyBlob: Buffer, verify: (ok: boolean) => void): void => {
      const fingerprint = fingerprintSha256(keyBlob);
      const keyType = keyTypeOfBlob(keyBlob) ?? 'unknown type';
      // A re-key must present the key we already accepted.
      if (acceptedFingerprint !== undefined) {
        if (fingerprint === acceptedFingerprint) verify(true);
        else refuseHostKey(changedKeyDuringSession(where, fingerprint), verify);
        return;
      }
      if (pinned !== undefined) {
        if (fingerprint === pinned) {
          acceptedFingerprint = fingerprint;
          verify(true);
        } else {
          refuseHostKey(
            {
              kind: 'host-key-mismatch',
              message: `Spark (${where}) presented ${keyType} host key ${fingerprint}, not the pinned SPARK_HOST_KEY_SHA256 ${pinned}`,
              fix: `Do not proceed until the key is verified: on Spark run \`${hostKeyFingerprintCommand(keyTypeOfBlob(keyBlob))}\`; if it shows ${fingerprint} the host key was legitimately changed, so update SPARK_HOST_KEY_SHA256`,
              presentedFingerprint: fingerprint,
            },
            verify,
          );
        }
        return;
      }
      const check =
        knownHosts === undefined
          ? { status: 'unknown' as const, knownFingerprints: [], knownKeyTypes: [] }
          : checkHostKey(knownHosts, target.host, target.port, keyBlob);
      const lookupName = shellQuote(target.port === 22 ? target.host : `[${target.host}]:${target.port}`);
      const fileArg = shellPath(knownHostsPath);
      switch (check.status) {
        case 'match':
          acceptedFingerprint = fingerprint;
          verify(true);
          return;
        case 'revoked':
          refuseHostKey(
            {
              kind: 'host-key-revoked',
              message: `Spark (${where}) presented ${keyType} host key ${fingerprint}, which is marked @revoked in ${knownHostsPath} line ${check.line}`,
              fix: 'Never connect with a revoked key: someone holds it. Have Spark get a new host key (`ssh-keygen -A` after removing the old ones), then verify and record it',
              presentedFingerprint: fingerprint,
            },
            verify,
          );
          return;
        case 'mismatch':
          refuseHostKey(
            {
              kind: 'host-key-mismatch',
              message: `Spark (${where}) presented ${keyType} host key ${fingerprint}, but ${knownHostsPath} line ${check.line} records ${check.knownFingerprints.join(', ')}: possible man-in-the-middle`,
              fix: `Verify on Spark's console with \`${hostKeyFingerprintCommand(keyTypeOfBlob(keyBlob))}\`; only if it shows ${fingerprint}, remove the stale entry with \`ssh-keygen -R ${lookupName} -f ${fileArg}\` and reconnect`,
              presentedFingerprint: fingerprint,
            },
            verify,
          );
          return;
        case 'unknown': {
          const unknownFailure: SshFailure = {
            kind: 'host-key-unknown',
            message: `Spark (${where}) is not in ${knownHostsPath}; it presented ${keyType} host key ${fingerprint}`,
            fix: `Check on Spark that \`${hostKeyFingerprintCommand(keyTypeOfBlob(keyBlob))}\` shows ${fingerprint}, then set SPARK_HOST_KEY_SHA256=${fingerprint}, or run \`ssh-keyscan -p ${target.port} ${target.host} >> ${fileArg}\` and confirm \`ssh-keygen -l -F ${lookupName} -f ${fileArg}\` lists it`,
            presentedFingerprint: fingerprint,
          };
          const decider = options.onUnknownHost;
          if (decider === undefined) {
            refuseHostKey(unknownFailure, verify);
            return;
          }
          // The operator may take longer than the connect timeout to answer; that time does not count.
          clearTimeout(timer);
          Promise.resolve()
            .then(() => decider({ target, fingerprint }))
            .catch(() => false)
            .then((accepted) => {
              if (settled) return;
              if (accepted === true) {
                acceptedFingerprint = fingerprint;
                startTimer();
                verify(true);
              } else {
                refuseHostKey(
                  { ...unknownFailure, message: `${unknownFailure.message}, and the operator declined it` },
                  verify,
                );
              }
            });
          return;
        }
      }
    };

    client.on('ready', () => {
      if (acceptedFingerprint === undefined) {
        // Unreachable with ssh2 (the verifier runs on every key exchange); refuse rather than trust an unchecked key.
        settle({
          ok: false,
          failure: {
            kind: 'unknown',
            message: `the SSH handshake with ${where} completed without a host key check`,
            fix: 'Report this: the ssh2 library did not call the host key verifier',
          },
        });
        return;
      }
      const session = createSession(
        client,
        target,
        acceptedFingerprint,
        options.execTimeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS,
      );
      settle({ ok: true, session });
    });

    client.on('error', (error: Error & { level?: string; code?: unknown }) => {
      if (settled) return;
      // Agent trouble is not fatal: ssh2 moves on to the next method. Keep it for the auth-failed message.
      if (error.level === 'agent') {
        agentProblem = scrub(error.message);
        return;
      }
      if (hostKeyFailure !== undefined) {
        settle({ ok: false, failure: hostKeyFailure });
        return;
      }
      settle({
        ok: false,
        failure: classifyConnectError(error, { where, target, auth: options.auth, agentProblem }),
      });
    });

    client.on('close', () => {
      if (settled) return;
      settle({
        ok: false,
        failure: hostKeyFailure ?? {
          kind: 'dropped',
          message: `Spark (${where}) closed the connection before the SSH session was ready`,
          fix: 'Check sshd on Spark (`sudo journalctl -u ssh -n 50`): MaxStartups, fail2ban or a crashing sshd can cause this',
        },
      });
    });

    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.user,
      // Our own timer covers the whole connect (TCP, handshake, auth) and can pause while the operator decides.
      readyTimeout: 0,
      hostVerifier,
      keepaliveInterval: options.keepaliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS,
      keepaliveCountMax: 3,
      algorithms: preferredHostKeyAlgorithms(knownTypes),
    };
    if (key.privateKey !== undefined) config.privateKey = key.privateKey;
    if (key.agentSocket !== undefined) config.agent = key.agentSocket;
    // Only the methods we have, in ssh's order: ssh2's default starts with a `none` attempt, one round trip that
    // can never succeed on Spark.
    config.authHandler = [
      ...(key.privateKey !== undefined ? (['publickey'] as const) : []),
      ...(key.agentSocket !== undefined ? (['agent'] as const) : []),
    ];

    startTimer();
    try {
      client.connect(config);
    } catch (error) {
      settle({
        ok: false,
        failure: {
          kind: 'config',
          message: `ssh2 rejected the connection settings: ${scrub(errorMessage(error))}`,
          fix: `Check SPARK_HOST, SPARK_PORT, SPARK_USER and the key named by ${describeAuth(options.auth)}`,
        },
      });
    }
  });
}

interface LoadedKey {
  privateKey?: string;
  agentSocket?: string;
}

/** Reads and checks the key before connecting, so key problems are `config` failures with a precise fix. */
async function loadKey(options: ConnectSparkOptions): Promise<LoadedKey | { failure: SshFailure }> {
  const { auth } = options;
  if (auth.kind === 'agent') return { agentSocket: auth.socket };

  let text: string;
  let label: string;
  let setting: string;
  if (auth.kind === 'file') {
    label = auth.path;
    setting = 'SPARK_SSH_KEY_PATH';
    try {
      text = await options.readTextFile(auth.path);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      return {
        failure: {
          kind: 'config',
          message: `cannot read the SSH key ${auth.path} (${auth.source})${typeof code === 'string' ? `: ${code}` : ''}`,
          fix: `Set SPARK_SSH_KEY_PATH to a readable private key file, e.g. ~/.ssh/id_ed25519${auth.source === 'SPARK_SSH_KEY_PATH' ? '' : ` (the path now comes from ${auth.source})`}`,
        },
      };
    }
  } else {
    label = 'the key in SPARK_SSH_KEY';
    setting = 'SPARK_SSH_KEY';
    text = auth.read();
  }

  const parsed = utils.parseKey(text);
  const first: ParsedKey | Error | undefined = Array.isArray(parsed) ? parsed[0] : parsed;
  if (first === undefined || first instanceof Error) {
    // ssh2's parse messages do not echo the key, but only the classification is used, to be certain.
    const reason = first instanceof Error ? first.message : '';
    if (/encrypted|passphrase/i.test(reason)) {
      return {
        failure: {
          kind: 'config',
          message: `${label} is encrypted and the runbooks take no passphrase`,
          fix:
            auth.kind === 'file'
              ? `Load it into ssh-agent (\`ssh-add ${auth.path}\`) and unset SPARK_SSH_KEY_PATH so the agent (SSH_AUTH_SOCK) is used`
              : 'Use an unencrypted deploy key for CI in SPARK_SSH_KEY, or unset it and use ssh-agent (SSH_AUTH_SOCK)',
        },
      };
    }
    return {
      failure: {
        kind: 'config',
        message: `${label} is not a private key ssh2 can read (unsupported format or corrupt)`,
        fix: `Set ${setting} to an OpenSSH or PEM private key (the file without .pub)`,
      },
    };
  }
  if (!first.isPrivateKey()) {
    return {
      failure: {
        kind: 'config',
        message: `${label} is a public key, not a private key`,
        fix: `Set ${setting} to the private half (the same name without .pub)`,
      },
    };
  }
  return { privateKey: text, agentSocket: auth.kind === 'file' ? auth.agentSocket : undefined };
}

interface ErrorContext {
  where: string;
  target: SshTarget;
  auth: SshAuthSpec;
  agentProblem: string | undefined;
}

/** Maps an ssh2 / socket error to a failure kind with a one-line message and fix. */
function classifyConnectError(error: Error & { level?: string; code?: unknown }, context: ErrorContext): SshFailure {
  const { where, target } = context;
  const code = typeof error.code === 'string' ? error.code : undefined;
  const message = scrub(error.message);
  const failure = (kind: SshFailureKind, text: string, fix: string): SshFailure => ({ kind, message: text, fix });

  if (code === 'ECONNREFUSED') {
    return failure(
      'refused',
      `${where} refused the connection`,
      `Wrong port or sshd down on Spark: check SPARK_PORT (now ${target.port}) and \`systemctl status ssh\` on Spark`,
    );
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME' || code === 'EAI_FAIL') {
    return failure(
      'dns',
      `cannot resolve ${target.host} (${code})`,
      code === 'EAI_AGAIN'
        ? 'DNS did not answer: check the network and Tailscale MagicDNS (`tailscale status`), or set SPARK_HOST to the Tailscale IP'
        : "Check SPARK_HOST: use Spark's Tailscale IP (`tailscale ip -4` on Spark) or its MagicDNS name",
    );
  }
  if (
    code === 'ETIMEDOUT' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENETUNREACH' ||
    code === 'EHOSTDOWN' ||
    error.level === 'client-timeout'
  ) {
    return failure(
      'timeout',
      `Spark (${where}) did not answer${code ? ` (${code})` : ''}`,
      'Is Tailscale up on both ends (`tailscale status`) and Spark powered on? Check SPARK_HOST',
    );
  }
  if (error.level === 'client-authentication') {
    const agentNote = context.agentProblem ? `; ssh-agent: ${context.agentProblem}` : '';
    return failure(
      'auth-failed',
      `Spark (${where}) accepted none of the keys offered for ${target.user} (${describeAuth(context.auth)})${agentNote}`,
      `Authorise the public key in ~${target.user}/.ssh/authorized_keys on Spark (\`ssh-copy-id -p ${target.port} -i <key>.pub ${target.user}@${target.host}\`), or set SPARK_SSH_KEY_PATH to the key that is authorised`,
    );
  }
  if (
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    /Connection lost before handshake/i.test(error.message) ||
    typeof error.code === 'number' // a DISCONNECT message from the server
  ) {
    return failure(
      'dropped',
      `Spark (${where}) dropped the connection during the SSH handshake: ${message}`,
      'Check sshd on Spark (`sudo journalctl -u ssh -n 50`) and that SPARK_PORT is the sshd port',
    );
  }
  if (error.level === 'protocol' || /identification|protocol/i.test(error.message)) {
    return failure(
      'unknown',
      `the server at ${where} does not speak SSH as expected: ${message}`,
      `Check SPARK_PORT (now ${target.port}) points at Spark's sshd`,
    );
  }
  return failure(
    'unknown',
    `SSH to ${where} failed: ${message}`,
    'Try `ssh -v -p <port> <user>@<host>` by hand to see where it stops',
  );
}

function describeAuth(auth: SshAuthSpec): string {
  switch (auth.kind) {
    case 'file':
      return `key ${auth.path} from ${auth.source}${auth.agentSocket ? ', then ssh-agent keys' : ''}`;
    case 'inline':
      return 'the key in SPARK_SSH_KEY';
    case 'agent':
      return 'the keys in ssh-agent (SSH_AUTH_SOCK)';
  }
}

function changedKeyDuringSession(where: string, fingerprint: string): SshFailure {
  return {
    kind: 'host-key-mismatch',
    message: `Spark (${where}) presented a different host key (${fingerprint}) while re-keying the connection`,
    fix: 'Stop and verify the host key on Spark: a key change inside one connection should never happen',
    presentedFingerprint: fingerprint,
  };
}

/**
 * Puts the key types known_hosts holds for the host first, as OpenSSH does, so a host with several host keys shows
 * the one we can check instead of tripping a false mismatch.
 */
function preferredHostKeyAlgorithms(knownTypes: readonly string[]): ConnectConfig['algorithms'] {
  const byType: Record<string, ServerHostKeyAlgorithm[]> = {
    'ssh-ed25519': ['ssh-ed25519'],
    'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
    'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
    'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
    'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
  };
  const preferred = knownTypes.flatMap((type) => byType[type] ?? []);
  if (preferred.length === 0) return undefined;
  // ssh2 applies the keys in insertion order: remove them from the default list, then put them back in front.
  return { serverHostKey: { remove: preferred, prepend: preferred, append: [] } };
}

/** Wraps a ready ssh2 client as the run's session. */
function createSession(
  client: InstanceType<typeof Client>,
  target: SshTarget,
  hostKeyFingerprint: string,
  defaultExecTimeoutMs: number,
): SparkSshSession {
  let closedReason: string | undefined;
  let lastError: string | undefined;
  let closePromise: Promise<void> | undefined;
  let socketClosed = false;
  const onConnectionLost = new Set<(reason: string) => void>();

  client.on('error', (error: Error) => {
    lastError = scrub(error.message);
  });
  client.on('close', () => {
    socketClosed = true;
    closedReason ??= lastError ? `connection lost: ${lastError}` : 'connection closed by Spark';
    for (const notify of [...onConnectionLost]) notify(closedReason);
  });

  const exec = (command: string, execOptions: ExecOptions = {}): Promise<SparkRemoteResult> => {
    if (closedReason !== undefined) {
      return Promise.resolve(lostResult(`ssh: command not sent: ${closedReason}`));
    }
    const timeoutMs = execOptions.timeoutMs ?? defaultExecTimeoutMs;
    const maxBytes = execOptions.maxBytes;

    return new Promise<SparkRemoteResult>((resolve) => {
      const stdoutChunks: Buffer[] = [];
      let stdoutBytes = 0;
      let truncated = false;
      const stderrChunks: Buffer[] = [];
      let stderrBytes = 0;
      let stderrCut = false;
      let code: number | null = null;
      let signal: string | undefined;
      let timedOut = false;
      let lost: string | undefined;
      let channel: ClientChannel | undefined;
      let finished = false;
      let graceTimer: NodeJS.Timeout | undefined;

      const finish = (extraStderr?: string) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        clearTimeout(graceTimer);
        onConnectionLost.delete(onLost);
        let stderr = decodeUtf8(Buffer.concat(stderrChunks), stderrCut);
        if (stderrCut) stderr += `\n[ssh: stderr cut at ${STDERR_CAP_BYTES} bytes]`;
        if (timedOut) stderr += `\n[ssh: command timed out after ${seconds(timeoutMs)}; channel closed]`;
        if (lost !== undefined) stderr += `\n[ssh: ${lost}]`;
        if (extraStderr !== undefined) stderr += `${stderr === '' ? '' : '\n'}${extraStderr}`;
        const result: SparkRemoteResult = {
          code: timedOut || lost !== undefined ? null : code,
          stdout: decodeUtf8(Buffer.concat(stdoutChunks), truncated),
          stderr,
          truncated,
          timedOut,
          connectionLost: lost !== undefined,
        };
        if (signal !== undefined) result.signal = signal;
        resolve(result);
      };

      // Ask the channel to go away; if the server never confirms (dead link), stop waiting after a grace period.
      const closeChannel = () => {
        if (channel !== undefined) {
          try {
            channel.close();
          } catch {
            // Already closed.
          }
        }
        graceTimer ??= setTimeout(() => finish(), CHANNEL_CLOSE_GRACE_MS);
      };

      const onLost = (reason: string) => {
        if (code === null && signal === undefined) lost = `${reason} (during the command)`;
        finish();
      };
      onConnectionLost.add(onLost);

      const timer = setTimeout(() => {
        timedOut = true;
        if (channel !== undefined) {
          try {
            // Most sshds ignore signal requests, so the channel close below is what actually ends it for us.
            channel.signal('KILL');
          } catch {
            // Channel already gone.
          }
        }
        closeChannel();
        if (channel === undefined) finish();
      }, timeoutMs);

      const onChannel = (error: Error | undefined, stream: ClientChannel) => {
        if (error) {
          if (closedReason !== undefined) lost = `${closedReason} (before the command started)`;
          finish(`ssh: could not start the command: ${scrub(error.message)}`);
          return;
        }
        channel = stream;
        if (finished) {
          // Timed out while the channel was opening.
          stream.close();
          return;
        }
        stream.on('data', (chunk: Buffer) => {
          if (truncated) return;
          if (maxBytes !== undefined && stdoutBytes + chunk.length > maxBytes) {
            const room = Math.max(0, maxBytes - stdoutBytes);
            if (room > 0) stdoutChunks.push(chunk.subarray(0, room));
            stdoutBytes += room;
            truncated = true;
            closeChannel();
            return;
          }
          stdoutChunks.push(chunk);
          stdoutBytes += chunk.length;
        });
        stream.stderr.on('data', (chunk: Buffer) => {
          if (stderrBytes >= STDERR_CAP_BYTES) {
            stderrCut = true;
            return;
          }
          const room = STDERR_CAP_BYTES - stderrBytes;
          if (chunk.length > room) stderrCut = true;
          const kept = chunk.subarray(0, room);
          stderrChunks.push(kept);
          stderrBytes += kept.length;
        });
        stream.on('exit', (exitCode: number | null, exitSignal?: string) => {
          code = typeof exitCode === 'number' ? exitCode : null;
          if (typeof exitSignal === 'string') signal = exitSignal;
        });
        stream.on('close', () => {
          // ssh2 emits the client's 'close' before closing its channels, but a dying socket can also close the
          // channel first; wait a tick so a lost connection is reported as such.
          setImmediate(() => {
            if (!finished && closedReason !== undefined && code === null && signal === undefined) {
              lost = `${closedReason} (during the command)`;
            }
            finish();
          });
        });
        stream.on('error', () => {
          // Channel errors end in 'close'; nothing to add.
        });
        // Always send EOF, so a command that reads stdin does not wait forever.
        if (execOptions.stdin !== undefined) stream.end(execOptions.stdin);
        else stream.end();
      };

      try {
        client.exec(command, onChannel);
      } catch (error) {
        lost = closedReason ?? `connection not usable: ${scrub(errorMessage(error))}`;
        finish();
      }
    });
  };

  const close = (): Promise<void> => {
    closePromise ??= new Promise<void>((resolve) => {
      closedReason ??= 'the session was closed by the runbook';
      for (const notify of [...onConnectionLost]) notify(closedReason);
      if (socketClosed) {
        resolve();
        return;
      }
      const force = setTimeout(() => {
        client.destroy();
        resolve();
      }, CLOSE_GRACE_MS);
      client.once('close', () => {
        clearTimeout(force);
        resolve();
      });
      client.end();
    });
    return closePromise;
  };

  return {
    target,
    hostKeyFingerprint,
    exec,
    close,
    get closedReason() {
      return closedReason;
    },
  };
}

/** Quotes a path for a command printed in a fix, keeping a leading `~/` outside the quotes so it still expands. */
function shellPath(path: string): string {
  return path.startsWith('~/') ? `~/${shellQuote(path.slice(2))}` : shellQuote(path);
}

function lostResult(stderr: string): SparkRemoteResult {
  return { code: null, stdout: '', stderr, truncated: false, timedOut: false, connectionLost: true };
}

/** Decodes UTF-8; after a cut at `maxBytes`, drops the incomplete character the cut may have split. */
function decodeUtf8(buffer: Buffer, cut = false): string {
  const decoder = new StringDecoder('utf8');
  const text = decoder.write(buffer);
  return cut ? text : text + decoder.end();
}

function seconds(ms: number): string {
  const value = ms / 1000;
  return `${Number.isInteger(value) ? value : value.toFixed(1)}s`;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Removes anything that looks like key material from a foreign error message before it reaches an operator or a
 * log: PEM blocks and long base64 runs.
 */
function scrub(text: string): string {
  return text
    .replace(/-----BEGIN[\s\S]*?(-----END[^-]*-----|$)/g, '[key material removed]')
    .replace(/[A-Za-z0-9+/=]{40,}/g, '[base64 removed]')
    .replace(/\s+/g, ' ')
    .trim();
}
