/**
 * known_hosts parsing and host key checking, as OpenSSH does it (see sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT").
 *
 * Pure: text and key blobs in, values out. The runbooks read the file through a port and pass its text here.
 */

import { createHash, createHmac, randomBytes } from 'node:crypto';

/** A `@marker` at the start of a known_hosts line. */
export type KnownHostMarker = 'revoked' | 'cert-authority';

/** Which host names a line applies to: a pattern list, or one hashed name (`HashKnownHosts yes`). */
export type KnownHostNames =
  | { kind: 'patterns'; patterns: readonly string[] }
  | { kind: 'hashed'; salt: Buffer; hash: Buffer };

/** One usable known_hosts line. */
export interface KnownHostEntry {
  /** 1-based line number in the text. */
  line: number;
  marker?: KnownHostMarker;
  names: KnownHostNames;
  /** The key type written on the line, e.g. `ssh-ed25519`. */
  keyType: string;
  /** The decoded public key blob (what the server presents during key exchange). */
  keyBlob: Buffer;
  /** `SHA256:...` of the key blob. */
  fingerprint: string;
}

/** A line that was skipped because it is not a valid entry; kept so a runbook can say why a host looks unknown. */
export interface IgnoredKnownHostLine {
  line: number;
  reason: string;
}

/** Every entry of a known_hosts text, plus the lines that were not understood. */
export interface KnownHostsFile {
  entries: KnownHostEntry[];
  ignored: IgnoredKnownHostLine[];
}

/** The verdict on a presented host key. */
export type HostKeyStatus = 'match' | 'mismatch' | 'unknown' | 'revoked';

/** What {@link checkHostKey} found. */
export interface HostKeyCheck {
  status: HostKeyStatus;
  /** Fingerprints of the keys on record for this host (not revoked, not CA lines), in file order. */
  knownFingerprints: string[];
  /** Key types on record for this host, e.g. to prefer them when negotiating. */
  knownKeyTypes: string[];
  /** The line that decided: the matching or revoking line, or for a mismatch the host's first line. */
  line?: number;
}

const HASH_MAGIC = '|1|';
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * The SHA-256 fingerprint of an SSH public key blob, in the form `ssh-keygen -l` prints: `SHA256:<base64, no padding>`.
 */
export function fingerprintSha256(keyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

/**
 * Normalises a fingerprint an operator typed or pasted: accepts it with or without the `SHA256:` prefix and with or
 * without base64 padding. Returns undefined when it is not a SHA-256 fingerprint (43 base64 characters).
 */
export function normalizeFingerprint(text: string): string | undefined {
  const trimmed = text.trim();
  const body = trimmed.replace(/^SHA256:/i, '').replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/]{43}$/.test(body)) return undefined;
  return 'SHA256:' + body;
}

/**
 * The name OpenSSH looks up for a host and port: the bare host for port 22, `[host]:port` otherwise. Lower-cased,
 * because OpenSSH lower-cases the name before matching.
 */
export function knownHostsName(host: string, port: number): string {
  const lower = host.toLowerCase();
  return port === 22 ? lower : `[${lower}]:${port}`;
}

/** The key type string embedded at the start of a public key blob, or undefined when the blob is malformed. */
export function keyTypeOfBlob(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 64 || 4 + length > blob.length) return undefined;
  const type = blob.subarray(4, 4 + length).toString('latin1');
  return /^[\x21-\x7e]+$/.test(type) ? type : undefined;
}

/** The host key file sshd keeps for a key type, as named in /etc/ssh. */
const HOST_KEY_FILES: Readonly<Record<string, string>> = {
  'ssh-ed25519': 'ssh_host_ed25519_key.pub',
  'ssh-rsa': 'ssh_host_rsa_key.pub',
  'ecdsa-sha2-nistp256': 'ssh_host_ecdsa_key.pub',
  'ecdsa-sha2-nistp384': 'ssh_host_ecdsa_key.pub',
  'ecdsa-sha2-nistp521': 'ssh_host_ecdsa_key.pub',
};

/**
 * The command an operator runs on Spark's console to see the fingerprint to compare with: for the key type the host
 * presented, else for every host key it has.
 */
export function hostKeyFingerprintCommand(keyType?: string): string {
  const file = keyType ? HOST_KEY_FILES[keyType] : undefined;
  return file
    ? `ssh-keygen -lf /etc/ssh/${file}`
    : 'for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf "$f"; done';
}

/**
 * Matches one OpenSSH wildcard pattern (`*` any run, `?` exactly one character) against a name.
 * Iterative with backtracking on the last `*`, so hostile patterns cannot blow up like a naive regex could.
 */
export function matchPattern(pattern: string, name: string): boolean {
  let p = 0;
  let n = 0;
  let starP = -1;
  let starN = 0;
  while (n < name.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === name[n])) {
      p++;
      n++;
    } else if (p < pattern.length && pattern[p] === '*') {
      starP = p++;
      starN = n;
    } else if (starP !== -1) {
      p = starP + 1;
      n = ++starN;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * Matches a pattern list the way OpenSSH does for known_hosts and `Host`: case-insensitive; a matching negated
 * pattern (`!pattern`) vetoes the whole list; otherwise any matching positive pattern wins.
 */
export function matchPatternList(patterns: readonly string[], name: string): boolean {
  const lowerName = name.toLowerCase();
  let matched = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    if (pattern === '') continue;
    if (matchPattern(pattern, lowerName)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** The hashed form of a known_hosts name: base64 HMAC-SHA1 keyed with the salt. */
export function hashKnownHostsName(name: string, salt: Buffer): Buffer {
  return createHmac('sha1', salt).update(name).digest();
}

/** Whether a known_hosts entry applies to this host and port. */
export function entryMatchesHost(entry: KnownHostEntry, host: string, port: number): boolean {
  const name = knownHostsName(host, port);
  if (entry.names.kind === 'hashed') {
    const expected = hashKnownHostsName(name, entry.names.salt);
    return expected.equals(entry.names.hash);
  }
  return matchPatternList(entry.names.patterns, name);
}

/**
 * Parses known_hosts text. Blank lines and `#` comments are skipped; lines that are not valid entries (old RSA1
 * lines, unknown markers, bad base64, a key type that disagrees with the key data) are listed in `ignored` and
 * otherwise skipped, as OpenSSH skips them.
 */
export function parseKnownHosts(text: string): KnownHostsFile {
  const entries: KnownHostEntry[] = [];
  const ignored: IgnoredKnownHostLine[] = [];
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index++) {
    const lineNumber = index + 1;
    const content = lines[index].trim();
    if (content === '' || content.startsWith('#')) continue;
    const parsed = parseLine(content, lineNumber);
    if ('reason' in parsed) ignored.push(parsed);
    else entries.push(parsed);
  }
  return { entries, ignored };
}

function parseLine(content: string, line: number): KnownHostEntry | IgnoredKnownHostLine {
  const fields = content.split(/[ \t]+/);
  let marker: KnownHostMarker | undefined;
  if (fields[0].startsWith('@')) {
    const markerField = fields.shift()!;
    if (markerField === '@revoked') marker = 'revoked';
    else if (markerField === '@cert-authority') marker = 'cert-authority';
    else return { line, reason: `unknown marker ${markerField}` };
  }
  if (fields.length < 3) return { line, reason: 'expected host patterns, key type and key' };
  const [hostField, keyType, keyBase64] = fields;
  const names = parseNames(hostField);
  if (names === undefined) return { line, reason: 'malformed hashed host name' };
  if (!BASE64.test(keyBase64)) return { line, reason: 'key is not base64 (an old RSA1 line?)' };
  const keyBlob = Buffer.from(keyBase64, 'base64');
  const blobType = keyTypeOfBlob(keyBlob);
  if (blobType === undefined) return { line, reason: 'key data is malformed' };
  if (blobType !== keyType) return { line, reason: `key type ${keyType} does not match the key data (${blobType})` };
  return { line, marker, names, keyType, keyBlob, fingerprint: fingerprintSha256(keyBlob) };
}

function parseNames(field: string): KnownHostNames | undefined {
  if (!field.startsWith(HASH_MAGIC)) {
    return { kind: 'patterns', patterns: field.split(',').filter((pattern) => pattern !== '') };
  }
  // |1|<salt>|<hash>: both are base64 of 20 bytes (HMAC-SHA1 size).
  const parts = field.slice(HASH_MAGIC.length).split('|');
  if (parts.length !== 2 || !BASE64.test(parts[0]) || !BASE64.test(parts[1])) return undefined;
  const salt = Buffer.from(parts[0], 'base64');
  const hash = Buffer.from(parts[1], 'base64');
  if (salt.length !== 20 || hash.length !== 20) return undefined;
  return { kind: 'hashed', salt, hash };
}

/**
 * Decides what a presented host key means for `host:port`, following OpenSSH:
 * - `revoked`: a `@revoked` line for this host lists exactly this key (checked first; it wins over a match);
 * - `match`: a plain line for this host holds exactly this key;
 * - `mismatch`: the host has plain lines but none holds this key, whatever their key type. OpenSSH only calls a
 *   same-type difference "changed"; we refuse on any difference because a runbook cannot ask the questions ssh asks;
 * - `unknown`: no plain line applies to this host. `@cert-authority` lines do not count: a plain key is never
 *   accepted through a CA line.
 */
export function checkHostKey(
  entriesOrText: string | KnownHostsFile | readonly KnownHostEntry[],
  host: string,
  port: number,
  presentedKeyBlob: Buffer,
): HostKeyCheck {
  const entries = toEntries(entriesOrText).filter((entry) => entryMatchesHost(entry, host, port));
  const plain = entries.filter((entry) => entry.marker === undefined);
  const knownFingerprints = unique(plain.map((entry) => entry.fingerprint));
  const knownKeyTypes = unique(plain.map((entry) => entry.keyType));
  const revokedBy = entries.find((entry) => entry.marker === 'revoked' && entry.keyBlob.equals(presentedKeyBlob));
  if (revokedBy) return { status: 'revoked', knownFingerprints, knownKeyTypes, line: revokedBy.line };
  const matchedBy = plain.find((entry) => entry.keyBlob.equals(presentedKeyBlob));
  if (matchedBy) return { status: 'match', knownFingerprints, knownKeyTypes, line: matchedBy.line };
  if (plain.length > 0) return { status: 'mismatch', knownFingerprints, knownKeyTypes, line: plain[0].line };
  return { status: 'unknown', knownFingerprints, knownKeyTypes };
}

/**
 * Formats a known_hosts line for a host key an operator accepted, so a runbook can offer to append it.
 * With `hash`, the name is hashed the way `HashKnownHosts yes` does (a fresh random salt unless one is given).
 */
export function formatKnownHostsLine(
  host: string,
  port: number,
  keyBlob: Buffer,
  options: { hash?: boolean; salt?: Buffer } = {},
): string {
  const keyType = keyTypeOfBlob(keyBlob);
  if (keyType === undefined) throw new TypeError('formatKnownHostsLine: the key blob is malformed');
  const name = knownHostsName(host, port);
  let names = name;
  if (options.hash) {
    const salt = options.salt ?? randomBytes(20);
    names = `${HASH_MAGIC}${salt.toString('base64')}|${hashKnownHostsName(name, salt).toString('base64')}`;
  }
  return `${names} ${keyType} ${keyBlob.toString('base64')}`;
}

function toEntries(input: string | KnownHostsFile | readonly KnownHostEntry[]): readonly KnownHostEntry[] {
  if (typeof input === 'string') return parseKnownHosts(input).entries;
  // Checked with isArray, not `'entries' in input`: every array has an `entries` method.
  if (Array.isArray(input)) return input;
  return (input as KnownHostsFile).entries;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
