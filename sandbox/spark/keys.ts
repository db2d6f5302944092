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
  const pair = generateParsableKeyPair('ed25519', comment === undefined ? {} : { comment });
  return { private: pair.private, public: pair.public.trim() };
}

/** How many fresh pairs {@link generateParsableKeyPair} tries before it gives up (each bad one is ~1 in 270). */
const KEY_ATTEMPTS = 20;

/**
 * `utils.generateKeyPairSync`, but only ever returns a pair whose both halves ssh2's own parser accepts.
 *
 * ssh2's generator writes ed25519 keys whose private half its parser rejects now and then ("Malformed OpenSSH
 * private key": a leading zero byte of the key dropped; mscdex/ssh2 #1390, #1513), about 1 key in 270. A sandbox
 * makes two keys per start, a test run dozens of sandboxes: without this check whole test files fail to start.
 */
export function generateParsableKeyPair(type: 'ed25519' | 'ecdsa' | 'rsa', opts: KeyOptions = {}): SshKeyPair {
  let last: Error | undefined;
  for (let attempt = 0; attempt < KEY_ATTEMPTS; attempt++) {
    // ssh2's typings tie the options to the key type; the few used here are valid for every type.
    const pair = utils.generateKeyPairSync(type as 'ed25519', opts as never);
    last = unparsable(pair.private, opts.passphrase) ?? unparsable(pair.public);
    if (!last) return pair;
  }
  throw new Error(`ssh2 made ${KEY_ATTEMPTS} ${type} keys in a row that it cannot parse itself: ${last?.message}`);
}

/** The options of ssh2's key generator that the sandbox and the tests use. */
export interface KeyOptions {
  comment?: string;
  bits?: number;
  passphrase?: string;
  cipher?: string;
  rounds?: number;
}

/** The parse error ssh2 gives for a key, or undefined when the key parses. */
function unparsable(key: string, passphrase?: string): Error | undefined {
  const parsed = utils.parseKey(key, passphrase);
  return parsed instanceof Error ? parsed : undefined;
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
