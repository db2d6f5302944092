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
 * Secrets recognised by their shape, whoever configured them: a key the tool was never told about (inside a job's
 * error, a worker log line, a variable that was not meant to hold one) is scrubbed all the same. Each pattern keeps
 * what says what the thing was (the scheme and user of a URL, `Bearer`, a PEM's armour, a token's public prefix)
 * and replaces the secret part. Public keys (`sb_publishable_`, anon JWTs are JWTs too and go) are not matched.
 */
export const SECRET_SHAPES: ReadonlyArray<{ name: string; re: RegExp; keep?: (m: string, ...g: string[]) => string }> =
  [
    {
      name: 'PEM private key',
      re: /(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY-----)/g,
      keep: (_m, begin, end) => `${begin}${REDACTED}${end}`,
    },
    { name: 'JWT', re: /\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}/g },
    { name: 'Supabase secret key', re: /\bsb_secret_[A-Za-z0-9_-]{8,}/g },
    {
      name: 'credentials in a URL',
      re: /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:/@?#]*):([^\s@/?#]+)@/gi,
      keep: (_m, scheme, user) => `${scheme}${user}:${REDACTED}@`,
    },
    {
      name: 'bearer token',
      re: /\b(Bearer\s+)[A-Za-z0-9._~+/=-]{12,}/gi,
      keep: (_m, bearer) => `${bearer}${REDACTED}`,
    },
    {
      name: 'Slack webhook',
      re: /(https:\/\/hooks\.slack\.com\/services\/)[A-Za-z0-9/_-]{10,}/g,
      keep: (_m, base) => `${base}${REDACTED}`,
    },
    { name: 'Slack token', re: /\bxox[abposr]-[A-Za-z0-9-]{10,}/g },
    { name: 'GitHub token', re: /\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})/g },
    { name: 'AWS access key', re: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g },
    {
      name: 'AWS secret key',
      re: /(aws_secret_access_key["']?\s*[=:]\s*["']?)[A-Za-z0-9/+=]{40}/gi,
      keep: (_m, name) => `${name}${REDACTED}`,
    },
    { name: 'Stripe key', re: /\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}/g },
    { name: 'Hugging Face token', re: /\bhf_[A-Za-z0-9]{30,}/g },
    { name: 'OpenAI key', re: /\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}/g },
  ];

/** Scrubs every {@link SECRET_SHAPES} match from a text. */
export function redactShapes(text: string): string {
  let out = text;
  for (const { re, keep } of SECRET_SHAPES) {
    re.lastIndex = 0;
    if (!re.test(out)) continue;
    re.lastIndex = 0;
    out = keep ? out.replace(re, (m: string, ...g: string[]) => keep(m, ...g)) : out.replace(re, REDACTED);
  }
  return out;
}

/** The shape of a secret, or undefined: for refusing a key pasted into a variable that is not meant for one. */
export function secretShape(value: string): string | undefined {
  for (const { name, re } of SECRET_SHAPES) {
    re.lastIndex = 0;
    if (re.test(value)) return name;
  }
  return undefined;
}

/**
 * Build a function that replaces every occurrence of each secret — and of its base64, base64url, URL-encoded and
 * JSON-escaped forms, each line of a multi-line secret such as a PEM key, and a JWT's signature alone — with
 * `[redacted]`. Secrets shorter than 8 characters, empty strings and undefined entries are ignored. Longer forms
 * are replaced first, so a secret containing another is redacted whole. Matching is literal (no regular
 * expressions are built from the secrets). Then {@link redactShapes} scrubs the secrets nobody registered.
 */
export function makeRedactor(secrets: readonly (string | null | undefined)[]): (text: string) => string {
  const all = new Set<string>();
  for (const secret of secrets) {
    if (typeof secret !== 'string' || secret.trim().length < MIN_SECRET_LENGTH) continue;
    for (const f of forms(secret)) if (f.length >= MIN_SECRET_LENGTH) all.add(f);
  }
  const needles = [...all].sort((a, b) => b.length - a.length);
  // Known values first (longest form first), then whatever still has the shape of a secret.
  return (text) => {
    let out = text;
    for (const needle of needles) if (out.includes(needle)) out = out.split(needle).join(REDACTED);
    return redactShapes(out);
  };
}

/** Names whose values say what they are for (URLs, folders, sizes, modes), not secrets whatever they look like. */
const PLAIN_NAME =
  /(^|_)(URL|HOST|PORT|DIR|PATH|HOME|LEVEL|MODE|ENV|NAME|REGION|BUCKET|TIMEOUT|MS|SECONDS|COUNT|SIZE|LIMIT|ATTEMPTS|MAX|MIN|REF)$|^(LANG|TZ|PYTHON[A-Z_]*|CUDA_VISIBLE_DEVICES)$/;
/** Names that announce a secret. */
const SECRET_NAME = /KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|DATABASE_URL|DB_URL|DSN/i;

/** Shannon entropy of a string, in bits per character. */
function entropy(value: string): number {
  const counts = new Map<string, number>();
  for (const ch of value) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) bits -= (n / value.length) * Math.log2(n / value.length);
  return bits;
}

/**
 * Whether a variable of another program's config (the worker's .env) holds a secret: its name says so, its value
 * has a secret's shape, or its value is a long random-looking token under a name that is not on the short list of
 * plain names (an API key called WEBHOOK or HF_ACCESS is still a key).
 */
export function looksSecret(name: string, value: string): boolean {
  if (SECRET_NAME.test(name) || secretShape(value)) return true;
  if (PLAIN_NAME.test(name.toUpperCase())) return false;
  const v = value.trim();
  return v.length >= 16 && !/\s/.test(v) && entropy(v) >= 3.5;
}
