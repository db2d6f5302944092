/**
 * Whether to trust the host key Spark presents: the pinned fingerprint, else known_hosts (plain, hashed, @revoked),
 * else the operator when one is asked. A re-key must present the key already accepted.
 */
import type { ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2';
import type { SshFailure, SshTarget, UnknownHostDecider } from '../../core/ports.ts';
import { shellQuote } from '../shell-quote.ts';
import { changedKeyDuringSession } from './failures.ts';
import {
  checkHostKey,
  fingerprintSha256,
  hostKeyFingerprintCommand,
  type KnownHostsFile,
  keyTypeOfBlob,
} from './known-hosts.ts';

export interface HostKeyPolicy {
  target: SshTarget;
  /** `SHA256:...`, normalised; replaces known_hosts. */
  pinned?: string;
  /** Parsed known_hosts; undefined when the file does not exist (every host is then unknown). */
  knownHosts?: KnownHostsFile;
  /** For the messages and the commands printed in fixes. */
  knownHostsPath: string;
  onUnknownHost?: UnknownHostDecider;
}

/** The verdict on a presented key: accept it, refuse it, or (an unknown host) ask, refusing with this if declined. */
export type HostKeyVerdict = { accept: true } | { accept: false; failure: SshFailure; ask: boolean };

/** Quotes a path for a command printed in a fix, keeping a leading `~/` outside the quotes so it still expands. */
function shellPath(path: string): string {
  return path.startsWith('~/') ? `~/${shellQuote(path.slice(2))}` : shellQuote(path);
}

function pinMismatch(where: string, keyBlob: Buffer, fingerprint: string, pinned: string): SshFailure {
  return {
    kind: 'host-key-mismatch',
    message: `Spark (${where}) presented ${keyTypeOfBlob(keyBlob) ?? 'unknown type'} host key ${fingerprint}, not the pinned SPARK_HOST_KEY_SHA256 ${pinned}`,
    fix: `Do not proceed until the key is verified: on Spark run \`${hostKeyFingerprintCommand(keyTypeOfBlob(keyBlob))}\`; if it shows ${fingerprint} the host key was legitimately changed, so update SPARK_HOST_KEY_SHA256`,
    presentedFingerprint: fingerprint,
  };
}

/** The known_hosts verdicts other than a match, with the commands that settle each. */
function knownHostsFailure(policy: HostKeyPolicy, keyBlob: Buffer, fingerprint: string): HostKeyVerdict {
  const { target, knownHostsPath } = policy;
  const where = `${target.host}:${target.port}`;
  const keyType = keyTypeOfBlob(keyBlob) ?? 'unknown type';
  const check =
    policy.knownHosts === undefined
      ? { status: 'unknown' as const, knownFingerprints: [], knownKeyTypes: [] }
      : checkHostKey(policy.knownHosts, target.host, target.port, keyBlob);
  const lookupName = shellQuote(target.port === 22 ? target.host : `[${target.host}]:${target.port}`);
  const fileArg = shellPath(knownHostsPath);
  const presented = `Spark (${where}) presented ${keyType} host key ${fingerprint}`;
  const verifyCommand = hostKeyFingerprintCommand(keyTypeOfBlob(keyBlob));
  const refuse = (failure: Omit<SshFailure, 'presentedFingerprint'>, ask = false): HostKeyVerdict => ({
    accept: false,
    failure: { ...failure, presentedFingerprint: fingerprint },
    ask,
  });
  switch (check.status) {
    case 'match':
      return { accept: true };
    case 'revoked':
      return refuse({
        kind: 'host-key-revoked',
        message: `${presented}, which is marked @revoked in ${knownHostsPath} line ${check.line}`,
        fix: 'Never connect with a revoked key: someone holds it. Have Spark get a new host key (`ssh-keygen -A` after removing the old ones), then verify and record it',
      });
    case 'mismatch':
      return refuse({
        kind: 'host-key-mismatch',
        message: `${presented}, but ${knownHostsPath} line ${check.line} records ${check.knownFingerprints.join(', ')}: possible man-in-the-middle`,
        fix: `Verify on Spark's console with \`${verifyCommand}\`; only if it shows ${fingerprint}, remove the stale entry with \`ssh-keygen -R ${lookupName} -f ${fileArg}\` and reconnect`,
      });
    case 'unknown':
      return refuse(
        {
          kind: 'host-key-unknown',
          message: `Spark (${where}) is not in ${knownHostsPath}; it presented ${keyType} host key ${fingerprint}`,
          fix: `Check on Spark that \`${verifyCommand}\` shows ${fingerprint}, then set SPARK_HOST_KEY_SHA256=${fingerprint}, or run \`ssh-keyscan -p ${target.port} ${target.host} >> ${fileArg}\` and confirm \`ssh-keygen -l -F ${lookupName} -f ${fileArg}\` lists it`,
        },
        policy.onUnknownHost !== undefined,
      );
  }
}

/** The verdict on the first key a connection presents (pure). */
export function judgeHostKey(policy: HostKeyPolicy, keyBlob: Buffer): HostKeyVerdict {
  const fingerprint = fingerprintSha256(keyBlob);
  if (policy.pinned === undefined) return knownHostsFailure(policy, keyBlob, fingerprint);
  if (fingerprint === policy.pinned) return { accept: true };
  const where = `${policy.target.host}:${policy.target.port}`;
  return { accept: false, failure: pinMismatch(where, keyBlob, fingerprint, policy.pinned), ask: false };
}

/** What the verifier tells the connection it serves. */
export interface VerifierHooks {
  /** Refuses the key through `verify`: this failure is the connection's outcome. */
  refuse(failure: SshFailure, verify: (ok: boolean) => void): void;
  /** The operator is being asked: their time does not count against the connect timeout. */
  pauseTimer(): void;
  resumeTimer(): void;
  /** The connection already has its outcome (the operator answered too late). */
  settled(): boolean;
}

/** ssh2's hostVerifier, remembering the accepted key for re-keys; `accepted()` is undefined until one is. */
export function createHostVerifier(policy: HostKeyPolicy, hooks: VerifierHooks) {
  let accepted: string | undefined;
  const where = `${policy.target.host}:${policy.target.port}`;
  const { refuse } = hooks;
  const ask = (fingerprint: string, failure: SshFailure, verify: (ok: boolean) => void) => {
    hooks.pauseTimer();
    Promise.resolve()
      .then(() => policy.onUnknownHost?.({ target: policy.target, fingerprint }))
      .catch(() => false)
      .then((yes) => {
        if (hooks.settled()) return;
        if (yes === true) {
          accepted = fingerprint;
          hooks.resumeTimer();
          verify(true);
        } else refuse({ ...failure, message: `${failure.message}, and the operator declined it` }, verify);
      });
  };
  const hostVerifier = (keyBlob: Buffer, verify: (ok: boolean) => void): void => {
    const fingerprint = fingerprintSha256(keyBlob);
    if (accepted !== undefined) {
      if (fingerprint === accepted) verify(true);
      else refuse(changedKeyDuringSession(where, fingerprint), verify);
      return;
    }
    const verdict = judgeHostKey(policy, keyBlob);
    if (verdict.accept) {
      accepted = fingerprint;
      verify(true);
    } else if (verdict.ask) ask(fingerprint, verdict.failure, verify);
    else refuse(verdict.failure, verify);
  };
  return { hostVerifier, accepted: () => accepted };
}

/**
 * Puts the key types known_hosts holds for the host first, as OpenSSH does, so a host with several host keys shows
 * the one we can check instead of tripping a false mismatch.
 */
export function preferredHostKeyAlgorithms(knownTypes: readonly string[]): ConnectConfig['algorithms'] {
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
