/**
 * The one SSH connection of a runbook run: host key check (host-key.ts), failures classified into something an
 * operator can act on (failures.ts), and `exec` over the same connection (session.ts).
 *
 * Every path is bounded in time: connecting (`timeoutMs`, paused only while the operator is being asked about an
 * unknown host key) and each command (`ExecOptions.timeoutMs`, else `execTimeoutMs`). Nothing here throws for a
 * network or remote problem: connecting yields an {@link SshConnectResult}, a command yields a
 * {@link SparkRemoteResult}. Key material is never put in a message.
 */

import type { Socket } from 'node:net';
import type { Client, ConnectConfig } from 'ssh2';
import type { SshFailure, SshTarget, UnknownHostDecider } from '../../core/ports.ts';
import type { SshAuthSpec } from './auth.ts';
import { classifyConnectError, describeAuth, errorMessage, scrub, seconds } from './failures.ts';
import { createHostVerifier, type HostKeyPolicy, preferredHostKeyAlgorithms } from './host-key.ts';
import { checkHostKey, hostKeyFingerprintCommand, normalizeFingerprint, parseKnownHosts } from './known-hosts.ts';
import { type LoadedKey, loadKey } from './load-key.ts';
import { createSession, type SparkSshSession } from './session.ts';
import { loadSsh2 } from './ssh2.ts';
import { signAtOnce } from './ssh2-internals.ts';

export type { SparkRemoteResult, SparkSshSession } from './session.ts';

/** Per-command timeout when neither the call nor the session sets one. */
export const DEFAULT_EXEC_TIMEOUT_MS = 120_000;
/** How often an idle connection is probed, so a vanished Tailscale peer is noticed between commands. */
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 15_000;

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
  /** A TCP connection to the target opened earlier (dial.ts), taken as the connect starts; else ssh2 dials. */
  takeSocket?: () => Socket | undefined;
}

type Failed = { ok: false; failure: SshFailure };

/** The pin (normalised) and the key, or why the connection cannot even be tried. */
async function prepare(options: ConnectSparkOptions): Promise<{ pinned?: string; key: LoadedKey } | Failed> {
  let pinned: string | undefined;
  if (options.pinnedFingerprint !== undefined) {
    pinned = normalizeFingerprint(options.pinnedFingerprint);
    if (pinned === undefined) {
      const fix = `Set it to the SHA256:... value of \`${hostKeyFingerprintCommand()}\` run on Spark`;
      return {
        ok: false,
        failure: { kind: 'config', message: 'SPARK_HOST_KEY_SHA256 is not a SHA256 host key fingerprint', fix },
      };
    }
  }
  const key = await loadKey(options);
  if (!('failure' in key)) return { pinned, key };
  // A key ssh would merely try (IdentityFile from ~/.ssh/config) may be missing or passphrase-protected while the
  // agent holds it; ssh then goes on with the agent, and so do we. An explicitly configured key has no fallback.
  if (options.auth.kind === 'file' && options.auth.agentSocket !== undefined) {
    return { pinned, key: { agentSocket: options.auth.agentSocket } };
  }
  return { ok: false, failure: key.failure };
}

/** ssh2's settings: our own timer covers the whole connect, and only the auth methods we have are tried. */
function clientConfig(
  options: ConnectSparkOptions,
  key: LoadedKey,
  policy: HostKeyPolicy,
  hostVerifier: ConnectConfig['hostVerifier'],
) {
  const { target } = options;
  const knownTypes =
    policy.knownHosts === undefined
      ? []
      : checkHostKey(policy.knownHosts, target.host, target.port, Buffer.alloc(0)).knownKeyTypes;
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
  return config;
}

/**
 * Opens the SSH connection to Spark. Resolves `{ ok: false, failure }` for every expected problem (bad key file,
 * host key refused, DNS, refused, timeout, authentication, dropped); only programming errors throw.
 */
export async function connectSpark(options: ConnectSparkOptions): Promise<SparkConnectResult> {
  const loading = loadSsh2(); // while the key file is read
  loading.catch(() => {}); // awaited below; a failed prepare must not leave it unhandled
  const prepared = await prepare(options);
  if ('failure' in prepared) return prepared;
  const { Client } = await loading;
  return new Promise<SparkConnectResult>((resolve) => new Connecting(options, prepared, new Client(), resolve).start());
}

/** One connection attempt, from `client.connect` until it is ready or has failed. */
class Connecting {
  private readonly client: Client;
  private readonly where: string;
  private settled = false;
  private timer: NodeJS.Timeout | undefined;
  private hostKeyFailure: SshFailure | undefined;
  private agentProblem: string | undefined;
  private readonly verifier: ReturnType<typeof createHostVerifier>;
  private readonly options: ConnectSparkOptions;
  private readonly key: LoadedKey;
  private readonly policy: HostKeyPolicy;
  private readonly resolve: (result: SparkConnectResult) => void;

  constructor(
    options: ConnectSparkOptions,
    prepared: { pinned?: string; key: LoadedKey },
    client: Client,
    resolve: (result: SparkConnectResult) => void,
  ) {
    this.client = client;
    this.options = options;
    this.key = prepared.key;
    this.resolve = resolve;
    const { target } = options;
    this.where = `${target.host}:${target.port}`;
    const policy: HostKeyPolicy = {
      target,
      pinned: prepared.pinned,
      knownHosts: options.knownHostsText === undefined ? undefined : parseKnownHosts(options.knownHostsText),
      knownHostsPath: options.knownHostsPath ?? '~/.ssh/known_hosts',
      onUnknownHost: options.onUnknownHost,
    };
    this.policy = policy;
    this.verifier = createHostVerifier(policy, {
      refuse: (failure, verify) => {
        this.hostKeyFailure = failure;
        verify(false);
        // ssh2 reports the refusal as a handshake error; settle now in case that error is delayed or swallowed.
        this.settle({ ok: false, failure });
      },
      pauseTimer: () => clearTimeout(this.timer),
      resumeTimer: () => this.startTimer(),
      settled: () => this.settled,
    });
  }

  start(): void {
    this.client.on('ready', () => this.onReady());
    this.client.on('error', (error: Error & { level?: string; code?: unknown }) => this.onError(error));
    this.client.on('close', () => this.onClose());
    const config = clientConfig(this.options, this.key, this.policy, this.verifier.hostVerifier);
    const sock = this.options.takeSocket?.();
    if (sock) config.sock = sock;
    this.startTimer();
    try {
      this.client.connect(config);
      // A key file's signature goes with its first request, not after asking whether the key would do (ssh2-internals.ts).
      signAtOnce(this.client);
      // ssh2 writes each packet in pieces (length, body, MAC) when it has no native crypto binding; with Nagle on,
      // every piece after the first waits for the peer's ACK: up to a delayed ACK (40 ms) or a round trip per packet.
      this.client.setNoDelay(true);
    } catch (error) {
      sock?.destroy();
      this.fail({
        kind: 'config',
        message: `ssh2 rejected the connection settings: ${scrub(errorMessage(error))}`,
        fix: `Check SPARK_HOST, SPARK_PORT, SPARK_USER and the key named by ${describeAuth(this.options.auth)}`,
      });
    }
  }

  private startTimer(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.fail({
        kind: 'timeout',
        message: `Spark (${this.where}) did not answer in ${seconds(this.options.timeoutMs)}`,
        fix: 'Is Tailscale up on both ends (`tailscale status`) and Spark powered on? Check SPARK_HOST and SPARK_PORT',
      });
    }, this.options.timeoutMs);
  }

  private settle(result: SparkConnectResult): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    if (!result.ok) this.client.destroy();
    this.resolve(result);
  }

  private fail(failure: SshFailure): void {
    this.settle({ ok: false, failure });
  }

  private onReady(): void {
    const accepted = this.verifier.accepted();
    if (accepted === undefined) {
      // Unreachable with ssh2 (the verifier runs on every key exchange); refuse rather than trust an unchecked key.
      this.fail({
        kind: 'unknown',
        message: `the SSH handshake with ${this.where} completed without a host key check`,
        fix: 'Report this: the ssh2 library did not call the host key verifier',
      });
      return;
    }
    const { target, execTimeoutMs } = this.options;
    const session = createSession(this.client, target, accepted, execTimeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS);
    this.settle({ ok: true, session });
  }

  private onError(error: Error & { level?: string; code?: unknown }): void {
    if (this.settled) return;
    // Agent trouble is not fatal: ssh2 moves on to the next method. Keep it for the auth-failed message.
    if (error.level === 'agent') {
      this.agentProblem = scrub(error.message);
      return;
    }
    const { target, auth } = this.options;
    this.fail(
      this.hostKeyFailure ??
        classifyConnectError(error, { where: this.where, target, auth, agentProblem: this.agentProblem }),
    );
  }

  private onClose(): void {
    if (this.settled) return;
    this.fail(
      this.hostKeyFailure ?? {
        kind: 'dropped',
        message: `Spark (${this.where}) closed the connection before the SSH session was ready`,
        fix: 'Check sshd on Spark (`sudo journalctl -u ssh -n 50`): MaxStartups, fail2ban or a crashing sshd can cause this',
      },
    );
  }
}
