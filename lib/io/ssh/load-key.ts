/** The private key, read and checked before connecting, so key problems are `config` failures with a precise fix. */
import type { ParsedKey } from 'ssh2';
import type { SshFailure } from '../../core/ports.ts';
import type { SshAuthSpec } from './auth.ts';
import { loadSsh2 } from './ssh2.ts';

export interface LoadedKey {
  privateKey?: string;
  agentSocket?: string;
}

/** Reads and checks the key before connecting, so key problems are `config` failures with a precise fix. */
export async function loadKey(options: {
  auth: SshAuthSpec;
  readTextFile: (path: string) => Promise<string>;
}): Promise<LoadedKey | { failure: SshFailure }> {
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

  const { utils } = await loadSsh2();
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
