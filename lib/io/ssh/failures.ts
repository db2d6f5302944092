/**
 * SSH failures an operator can act on: ssh2 and socket errors classified into a kind with a one-line message and
 * fix. Foreign messages are scrubbed of anything that looks like key material.
 */
import type { SshFailure, SshFailureKind, SshTarget } from '../../core/ports.ts';
import type { SshAuthSpec } from './auth.ts';

export interface ErrorContext {
  where: string;
  target: SshTarget;
  auth: SshAuthSpec;
  agentProblem: string | undefined;
}

/** Maps an ssh2 / socket error to a failure kind with a one-line message and fix. */
export function classifyConnectError(
  error: Error & { level?: string; code?: unknown },
  context: ErrorContext,
): SshFailure {
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

export function describeAuth(auth: SshAuthSpec): string {
  switch (auth.kind) {
    case 'file':
      return `key ${auth.path} from ${auth.source}${auth.agentSocket ? ', then ssh-agent keys' : ''}`;
    case 'inline':
      return 'the key in SPARK_SSH_KEY';
    case 'agent':
      return 'the keys in ssh-agent (SSH_AUTH_SOCK)';
  }
}

export function changedKeyDuringSession(where: string, fingerprint: string): SshFailure {
  return {
    kind: 'host-key-mismatch',
    message: `Spark (${where}) presented a different host key (${fingerprint}) while re-keying the connection`,
    fix: 'Stop and verify the host key on Spark: a key change inside one connection should never happen',
    presentedFingerprint: fingerprint,
  };
}

export function seconds(ms: number): string {
  const value = ms / 1000;
  return `${Number.isInteger(value) ? value : value.toFixed(1)}s`;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Removes anything that looks like key material from a foreign error message before it reaches an operator or a
 * log: PEM blocks and long base64 runs.
 */
export function scrub(text: string): string {
  return text
    .replace(/-----BEGIN[\s\S]*?(-----END[^-]*-----|$)/g, '[key material removed]')
    .replace(/[A-Za-z0-9+/=]{40,}/g, '[base64 removed]')
    .replace(/\s+/g, ' ')
    .trim();
}
