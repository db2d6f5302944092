/**
 * Key material for the sandbox's Spark host: made fresh on every run so no private key is ever committed,
 * and printed in the exact forms OpenSSH tools use (known_hosts lines, `SHA256:` fingerprints).
 */
import { createHash } from 'node:crypto';
// ssh2 is CommonJS; Node's ESM loader cannot see its named exports (vitest can), so take the default.
import ssh2 from 'ssh2';

const { utils } = ssh2;

/** One key pair, both halves in OpenSSH text form (the shape ssh2's key generator returns). */
export interface SshKeyPair {
  /** The OpenSSH private key block (PEM-style armour), unencrypted. */
  private: string;
  /** One line, `ssh-ed25519 AAAA... [comment]`. */
  public: string;
}

/** The host key Spark presents and the client (user) key the laptop logs in with. */
export interface SparkKeys {
  host: SshKeyPair;
  client: SshKeyPair;
}

/**
 * Generates an ed25519 host key pair and an ed25519 client (user) key pair.
 * @param comments - optional comments carried in the public key lines (e.g. `sparkuser@laptop`).
 */
export function generateSparkKeys(comments: { host?: string; client?: string } = {}): SparkKeys {
  return { host: generateEd25519(comments.host), client: generateEd25519(comments.client) };
}

function generateEd25519(comment: string | undefined): SshKeyPair {
  const pair = utils.generateKeyPairSync('ed25519', comment === undefined ? undefined : { comment });
  return { private: pair.private, public: pair.public.trim() };
}

/** Splits an OpenSSH public key line into its type and base64 blob; throws on anything else. */
export function splitPublicKeyLine(publicKeyLine: string): { type: string; base64: string } {
  const [type, base64] = publicKeyLine.trim().split(/\s+/);
  const invalid = new Error('not an OpenSSH public key line (expected "<type> <base64> [comment]")');
  if (!type || !base64 || !/^[A-Za-z0-9+/]+={0,3}$/.test(base64)) throw invalid;
  // The blob starts with its own type name; checking it catches a mangled or mismatched line early.
  const blob = Buffer.from(base64, 'base64');
  const nameLength = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (nameLength < 0 || blob.toString('latin1', 4, 4 + nameLength) !== type) throw invalid;
  return { type, base64 };
}

/**
 * The known_hosts line for a host key: `host type base64`, with the host written `[host]:port`
 * when the port is not 22 (as ssh writes it; a plain host would not match a non-standard port).
 * Any comment on the key is dropped.
 */
export function knownHostsLine(host: string, port: number, publicKey: string): string {
  const { type, base64 } = splitPublicKeyLine(publicKey);
  const name = port === 22 ? host : `[${host}]:${port}`;
  return `${name} ${type} ${base64}`;
}

/** `SHA256:<base64 without padding>` of the key blob, exactly as `ssh-keygen -lf` prints it. */
export function fingerprintSha256(publicKeyOpenSshLine: string): string {
  const { base64 } = splitPublicKeyLine(publicKeyOpenSshLine);
  const digest = createHash('sha256').update(Buffer.from(base64, 'base64')).digest('base64');
  return `SHA256:${digest.replace(/=+$/, '')}`;
}
