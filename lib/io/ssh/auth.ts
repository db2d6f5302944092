/** The key to offer Spark: an explicitly named one alone, else what ssh itself would use (config, agent, defaults). */
import type { SshFailure } from '../../core/ports.ts';
import { configFailure as fail, nonEmpty } from './setting.ts';
import type { SshConfigValues } from './ssh-config.ts';

/**
 * The private key material to offer. An inline key is only reachable through `read()`, so that printing or
 * JSON-serialising a resolved config never shows the key.
 */
export type SshAuthSpec =
  | {
      kind: 'file';
      /** Absolute or as-given path, `~` expanded. */
      path: string;
      /** Which setting named it, e.g. `SPARK_SSH_KEY_PATH` or `IdentityFile in ~/.ssh/config`. */
      source: string;
      /** Also offer the agent's keys after this one (as ssh does), unless the key was set explicitly. */
      agentSocket?: string;
    }
  | { kind: 'inline'; source: string; read: () => string }
  | { kind: 'agent'; socket: string; source: string };

/** OpenSSH's default identity files, in the order ssh tries them (DSA and security keys left out). */
const DEFAULT_IDENTITY_FILES = ['~/.ssh/id_ed25519', '~/.ssh/id_ecdsa', '~/.ssh/id_rsa'];

export interface AuthInputs {
  env: Readonly<Record<string, string | undefined>>;
  fromConfig: SshConfigValues;
  configLabel: string;
  expand: (path: string) => string;
  fileExists?: (path: string) => boolean;
}

export function resolveAuth(inputs: AuthInputs): { auth: SshAuthSpec } | { ok: false; failure: SshFailure } {
  const { env, fromConfig, configLabel, expand, fileExists } = inputs;
  const agentSocket = nonEmpty(env['SSH_AUTH_SOCK']);

  // An explicitly named key is the only key offered: a CI job or an operator who names a key wants to know whether
  // that key works, not to be let in by some other key in the agent.
  const keyPath = nonEmpty(env['SPARK_SSH_KEY_PATH']);
  const rawInlineKey = env['SPARK_SSH_KEY'];
  const inlineKey = rawInlineKey !== undefined && rawInlineKey.trim() !== '' ? rawInlineKey : undefined;
  if (keyPath !== undefined && inlineKey !== undefined) {
    return fail(
      'Both SPARK_SSH_KEY_PATH and SPARK_SSH_KEY are set: it is unclear which key to offer',
      'Unset one of them: SPARK_SSH_KEY_PATH for a key file, SPARK_SSH_KEY for the key itself (CI)',
    );
  }
  if (keyPath !== undefined) return { auth: { kind: 'file', path: expand(keyPath), source: 'SPARK_SSH_KEY_PATH' } };
  if (inlineKey !== undefined) {
    return { auth: { kind: 'inline', source: 'SPARK_SSH_KEY', read: () => normalizeInlineKey(inlineKey) } };
  }

  // Keys ssh itself would use: IdentityFile from the config, then the agent, then the default key files.
  const identityFiles = fromConfig.identityFiles.filter((file) => file.value.toLowerCase() !== 'none');
  if (identityFiles.length > 0) {
    const candidates = identityFiles.map((file) => ({ path: expand(file.value), section: file.section }));
    const chosen = (fileExists && candidates.find((candidate) => fileExists(candidate.path))) || candidates[0];
    return {
      auth: {
        kind: 'file',
        path: chosen.path,
        source: `IdentityFile (${chosen.section} in ${configLabel})`,
        agentSocket,
      },
    };
  }
  if (agentSocket !== undefined) return { auth: { kind: 'agent', socket: agentSocket, source: 'SSH_AUTH_SOCK' } };
  if (fileExists) {
    for (const file of DEFAULT_IDENTITY_FILES) {
      const path = expand(file);
      if (fileExists(path)) return { auth: { kind: 'file', path, source: `the default key ${file}` } };
    }
  }
  return fail(
    'No SSH key to offer: SPARK_SSH_KEY_PATH, SPARK_SSH_KEY and SSH_AUTH_SOCK are unset and no default key was found',
    'Set SPARK_SSH_KEY_PATH to the private key authorised on Spark (e.g. ~/.ssh/id_ed25519), or `ssh-add` it to a running ssh-agent',
  );
}

/**
 * CI secrets often arrive with their newlines written as `\n`, or base64-encoded to survive a single-line field.
 * Undo either, so the key parser sees a PEM / OpenSSH block.
 */
function normalizeInlineKey(text: string): string {
  let key = text.trim();
  if (!key.includes('\n') && key.includes('\\n')) key = key.replaceAll('\\n', '\n');
  if (!key.startsWith('-----') && /^[A-Za-z0-9+/=\s]+$/.test(key)) {
    const decoded = Buffer.from(key.replace(/\s+/g, ''), 'base64').toString('utf8');
    if (decoded.trimStart().startsWith('-----BEGIN')) key = decoded.trim();
  }
  return key.endsWith('\n') ? key : key + '\n';
}
