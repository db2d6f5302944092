/**
 * Scrub secrets from any text before it is printed, logged or written to an audit file — including the forms a
 * secret takes on its way through other tools: base64 (Basic auth, k8s secrets), base64url, URL-encoding (query
 * strings), JSON string escaping (a PEM key inside a JSON log line), and for JWTs the signature alone.
 * Matching is by literal substring, longest form first.
 */

/** What every redacted occurrence is replaced with. */
export const REDACTED = '[redacted]';

/** Shorter values would match ordinary words and numbers; they are too weak to be secrets worth guarding. */
const MIN_SECRET_LENGTH = 8;

/** A JWT in compact form; its third part is the only one that is secret on its own. */
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.([A-Za-z0-9_-]+)$/;

/**
 * Inside a larger base64 blob (`user:secret` in Basic auth, a whole .env file in a CI secret) the secret's encoding
 * depends on its byte offset mod 3 and on what follows it. For each offset, keep only the characters that encode
 * the secret's bytes alone: the same whatever surrounds it. At most two bytes at each end stay visible.
 */
function embeddedBase64(bytes: Buffer): string[] {
  const out: string[] = [];
  for (const offset of [0, 1, 2]) {
    const padded = Buffer.concat([Buffer.alloc(offset), bytes]);
    const whole = Math.floor(padded.length / 3) * 4;
    const start = offset === 0 ? 0 : 4;
    for (const encoding of ['base64', 'base64url'] as const) {
      const core = padded.toString(encoding).slice(start, whole);
      if (core !== '') out.push(core);
    }
  }
  return out;
}

function forms(secret: string): string[] {
  const out = [secret];
  const trimmed = secret.trim();
  if (trimmed !== secret) out.push(trimmed);
  for (const s of new Set([secret, trimmed])) {
    const bytes = Buffer.from(s, 'utf8');
    const b64 = bytes.toString('base64');
    // Padded and unpadded, since tools disagree; the padded one goes first by length, taking the = with it.
    out.push(b64, b64.replace(/=+$/, ''), bytes.toString('base64url'), encodeURIComponent(s));
    out.push(...embeddedBase64(bytes));
    // Inside JSON, line breaks, quotes and backslashes are escaped.
    out.push(JSON.stringify(s).slice(1, -1));
    if (s.includes('\n')) out.push(s.replace(/\r?\n/g, '\r\n'));
  }
  const jwt = JWT.exec(trimmed);
  if (jwt) out.push(jwt[1]);
  if (trimmed.includes('\n')) {
    // A PEM body wraps at 64 characters and tools print it line by line (or re-wrapped); redact each line.
    // The BEGIN/END armour lines are public and say what was there, so they stay.
    for (const line of trimmed.split(/\r?\n/)) {
      const l = line.trim();
      if (!l.startsWith('-----') && !/^[A-Za-z-]+: /.test(l)) out.push(l);
    }
  }
  return out;
}

/**
 * Build a function that replaces every occurrence of each secret — and of its base64, base64url, URL-encoded and
 * JSON-escaped forms, each line of a multi-line secret such as a PEM key, and a JWT's signature alone — with
 * `[redacted]`. Secrets shorter than 8 characters, empty strings and undefined entries are ignored. Longer forms
 * are replaced first, so a secret containing another is redacted whole. Matching is literal (no regular
 * expressions are built from the secrets).
 */
export function makeRedactor(secrets: readonly (string | null | undefined)[]): (text: string) => string {
  const all = new Set<string>();
  for (const secret of secrets) {
    if (typeof secret !== 'string' || secret.trim().length < MIN_SECRET_LENGTH) continue;
    for (const f of forms(secret)) if (f.length >= MIN_SECRET_LENGTH) all.add(f);
  }
  const needles = [...all].sort((a, b) => b.length - a.length);
  if (needles.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const needle of needles) if (out.includes(needle)) out = out.split(needle).join(REDACTED);
    return out;
  };
}
