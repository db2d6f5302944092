/**
 * The laptop's configuration: parse `.env` text, validate the runbooks' variables, and flag names that look like
 * ours but are not (a misspelled variable is silently ignored otherwise, and the default wins).
 *
 * The `.env` is often shared with the app, so names that are clearly someone else's are left alone.
 */
import { parse } from 'dotenv';
import { editDistance } from '../core/text.ts';
import { inspectKey } from './keys.ts';
import { secretShape } from './redact.ts';
import { classifySupabaseUrl } from './supabase-url.ts';

/** What a validator found wrong. Never contains the value of a secret. */
export interface EnvProblem {
  message: string;
  fix: string;
  /** Defaults to `error`: the value is unusable. A warning keeps the value. */
  severity?: 'error' | 'warning';
}

/** One variable the runbooks read. */
export interface EnvVarSpec {
  name: string;
  /** One line, for `--help` and reports. */
  description: string;
  /** A secret value never appears in a message; only its masked form (see maskKey) may. */
  secret: boolean;
  /** Used when the variable is unset or empty. Only documented defaults are listed. */
  default?: string;
  /**
   * Returns the problem with a non-empty value, or undefined when it is fine. Receives all non-empty values so it
   * can cross-check (a key for another project than the URL's, say).
   */
  validate(value: string, all: Readonly<Record<string, string>>): EnvProblem | undefined;
}

/** Variables by name. */
export type EnvSchema = Readonly<Record<string, EnvVarSpec>>;

/** One finding about the configuration. */
export interface EnvIssue {
  name: string;
  severity: 'error' | 'warning';
  message: string;
  fix: string;
}

export interface EnvValidation {
  /**
   * The schema's variables that are set and usable (including those with only warnings), plus documented defaults
   * for those unset. Secret values are in here: use them, never print this object.
   */
  values: Record<string, string>;
  issues: EnvIssue[];
}

/**
 * Parse `.env` text with dotenv's parser (quotes, `export`, comments, multi-line double-quoted values).
 * Prints nothing, unlike `dotenv.config()`.
 */
export function parseEnvText(text: string): Record<string, string> {
  return { ...parse(text) };
}

// ---- validators ----------------------------------------------------------------------------------------------

type Validator = EnvVarSpec['validate'];

function problem(message: string, fix: string, severity?: 'warning'): EnvProblem {
  return severity ? { message, fix, severity } : { message, fix };
}

function supabaseUrl(name: string): Validator {
  return (value) => {
    const c = classifySupabaseUrl(value);
    return c.ok ? undefined : problem(`${name} ${c.problem}`, c.fix);
  };
}

function integer(name: string, min: number, max: number): Validator {
  return (value) => {
    const text = value.trim();
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min || n > max) {
      return problem(
        `${name} must be a whole number from ${min} to ${max}`,
        `set ${name} to a number from ${min} to ${max}`,
      );
    }
    return undefined;
  };
}

function path(name: string): Validator {
  return (value) => {
    if (value.trim() === '') return problem(`${name} is only whitespace`, `set ${name} to a file path or remove it`);
    if (value !== value.trim()) {
      return problem(`${name} has leading or trailing whitespace`, `remove the spaces around the path in ${name}`);
    }
    if (/[\r\n\0]/.test(value)) return problem(`${name} contains a line break`, `set ${name} to a single path`);
    if (value.length > 4096) return problem(`${name} is longer than 4096 characters`, `set ${name} to a real path`);
    return undefined;
  };
}

function projectRefOfUrl(all: Readonly<Record<string, string>>): string | undefined {
  const c = classifySupabaseUrl(all['SUPABASE_URL']);
  if (!c.ok) return undefined;
  return c.projectRef ?? (all['SUPABASE_PROJECT_REF'] || undefined);
}

/** Messages describe the key only through inspectKey's problems and masked form, which never contain it. */
function supabaseKey(name: string): Validator {
  return (value, all) => {
    const info = inspectKey(value);
    if (info.kind === 'missing') return problem(`${name} is only whitespace`, `set ${name} or remove it`);
    if (info.problems.length > 0) {
      return problem(`${name} ${info.problems.join('; ')}`, `fix the value of ${name} (now ${info.masked})`);
    }
    if (!info.privileged) {
      const what = info.kind === 'publishable' ? 'a publishable key' : `a ${info.role} JWT`;
      return problem(
        `${name} is ${what}; the runbooks need a key that bypasses RLS`,
        'use the service_role key (Settings > API Keys > Legacy) or an sb_secret_ key',
        // A warning, not an error: the runbooks still run and report it as the `wrong-key-role` finding.
        'warning',
      );
    }
    const urlRef = projectRefOfUrl(all);
    if (info.ref && urlRef && info.ref !== urlRef) {
      return problem(
        `${name} belongs to project ${info.ref}, but SUPABASE_URL is project ${urlRef}`,
        `use the key of project ${urlRef}, or fix SUPABASE_URL`,
        // Reported by the runbooks as the `project-mismatch` finding, with the other sides' evidence.
        'warning',
      );
    }
    if (info.localDefault) {
      const c = classifySupabaseUrl(all['SUPABASE_URL']);
      if (c.ok && c.kind === 'cloud') {
        return problem(
          `${name} is the Supabase CLI's local default key, but SUPABASE_URL is a hosted project`,
          "use the hosted project's service_role or sb_secret_ key",
        );
      }
    }
    return undefined;
  };
}

const sparkHost: Validator = (value) => {
  const v = value.trim();
  if (v !== value) return problem('SPARK_HOST has leading or trailing whitespace', 'remove the spaces around it');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) {
    return problem('SPARK_HOST is a URL', 'set SPARK_HOST to the bare host name, IP or ~/.ssh/config alias');
  }
  if (v.includes('@')) {
    return problem('SPARK_HOST includes a user name (user@host)', 'put the user in SPARK_USER and only the host here');
  }
  // One colon means host:port; IPv6 addresses have several.
  if (/^[^:]+:\d+$/.test(v)) {
    return problem('SPARK_HOST includes a port (host:port)', 'put the port in SPARK_PORT and only the host here');
  }
  if (/\s/.test(v)) return problem('SPARK_HOST contains whitespace', 'set SPARK_HOST to a single host name or IP');
  // No host name, IP or ssh_config alias holds these; a fix that prints the host as a command must stay harmless.
  if (/[;&|$`'"()<>\\,*?!{}]/.test(v) || v.startsWith('-')) {
    return problem(
      'SPARK_HOST contains characters no host name or IP has',
      "set SPARK_HOST to Spark's Tailscale IP, MagicDNS name or a ~/.ssh/config Host alias",
    );
  }
  if (v.length > 253)
    return problem('SPARK_HOST is longer than a host name can be', 'set SPARK_HOST to a host name or IP');
  return undefined;
};

const sparkUser: Validator = (value) => {
  if (value.includes('@')) {
    return problem(
      'SPARK_USER contains @ (user@host?)',
      'put only the user name in SPARK_USER, the host in SPARK_HOST',
    );
  }
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/.test(value)) {
    return problem('SPARK_USER is not a valid user name', 'set SPARK_USER to the login name on Spark, e.g. sparkuser');
  }
  return undefined;
};

const sparkKeyPath: Validator = (value, all) => {
  if (value.includes('-----BEGIN')) {
    // The key material itself was pasted where a path goes; SPARK_SSH_KEY is the variable for that.
    return problem(
      'SPARK_SSH_KEY_PATH holds key material, not a path',
      'move the key into SPARK_SSH_KEY, or put a path here',
    );
  }
  const p = path('SPARK_SSH_KEY_PATH')(value, all);
  if (p) return p;
  if (value.endsWith('.pub')) {
    return problem(
      'SPARK_SSH_KEY_PATH points at a public key (.pub)',
      'point it at the private key file: the same path without .pub',
    );
  }
  if (all['SPARK_SSH_KEY']) {
    return problem(
      'both SPARK_SSH_KEY_PATH and SPARK_SSH_KEY are set',
      'keep only one, so it is clear which key is used',
      'warning',
    );
  }
  return undefined;
};

const sparkKey: Validator = (value) => {
  let v = value.trim();
  // CI secret stores often hold the key base64-encoded (one line, no newlines to mangle); the loader accepts that.
  if (/^[A-Za-z0-9+/=\s]+$/.test(v)) {
    const decoded = Buffer.from(v, 'base64').toString('utf8').trim();
    if (decoded.startsWith('-----BEGIN')) v = decoded;
  }
  if (/^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-\S+|sk-\S+) AAAA/.test(v)) {
    return problem('SPARK_SSH_KEY holds a public key', 'put the private key (-----BEGIN ... PRIVATE KEY-----) here');
  }
  if (!/^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(v)) {
    return problem(
      'SPARK_SSH_KEY does not start with a -----BEGIN ... PRIVATE KEY----- line',
      'put the whole private key file content in SPARK_SSH_KEY, or use SPARK_SSH_KEY_PATH',
    );
  }
  if (!/-----END [A-Z0-9 ]*PRIVATE KEY-----$/.test(v)) {
    return problem(
      'SPARK_SSH_KEY has no -----END ... PRIVATE KEY----- line (cut short?)',
      'copy the whole private key, including the END line',
    );
  }
  if (!v.includes('\n') && v.includes('\\n')) {
    return problem(
      'SPARK_SSH_KEY has literal \\n sequences instead of line breaks',
      'in .env, wrap the value in double quotes so dotenv turns \\n into line breaks',
      'warning',
    );
  }
  return undefined;
};

const hostKeyFingerprint: Validator = (value) => {
  const v = value.trim();
  // ssh-keygen -l prints SHA256: and 43 base64 characters, without padding.
  if (/^SHA256:[A-Za-z0-9+/]{43}=?$/.test(v))
    return v === value
      ? undefined
      : problem('SPARK_HOST_KEY_SHA256 has leading or trailing whitespace', 'remove the spaces around the fingerprint');
  if (/^[A-Za-z0-9+/]{43}=?$/.test(v)) {
    return problem('SPARK_HOST_KEY_SHA256 lacks the SHA256: prefix', 'write it as SHA256:<43 characters>');
  }
  if (/^(MD5:)?([0-9a-f]{2}:){15}[0-9a-f]{2}$/i.test(v)) {
    return problem(
      'SPARK_HOST_KEY_SHA256 is an MD5 fingerprint',
      'get the SHA256 one: ssh-keyscan -p <port> <host> | ssh-keygen -lf - -E sha256',
    );
  }
  return problem(
    'SPARK_HOST_KEY_SHA256 is not a SHA256:... fingerprint',
    'copy it from: ssh-keyscan -p <port> <host> | ssh-keygen -lf -',
  );
};

const projectRef: Validator = (value, all) => {
  if (/[/:.]/.test(value)) {
    return problem('SUPABASE_PROJECT_REF looks like a URL or host', 'set only the ref, e.g. abcdefghijklmnopqrst');
  }
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(value)) {
    return problem(
      'SUPABASE_PROJECT_REF is not a project ref (lowercase letters and digits)',
      'copy it from Settings > General',
    );
  }
  const c = classifySupabaseUrl(all['SUPABASE_URL']);
  if (c.ok && c.projectRef && c.projectRef !== value) {
    return problem(
      `SUPABASE_PROJECT_REF is ${value} but SUPABASE_URL is project ${c.projectRef}`,
      'remove SUPABASE_PROJECT_REF (hosted URLs carry the ref) or make them agree',
    );
  }
  return undefined;
};

const operator: Validator = (value) => {
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    return problem('RUNBOOK_OPERATOR contains control characters', 'set it to your name or handle on one line');
  }
  if (value.trim() === '' || value.length > 100) {
    return problem('RUNBOOK_OPERATOR must be 1-100 characters', 'set it to your name or handle');
  }
  return undefined;
};

function spec(
  name: string,
  description: string,
  validate: Validator,
  extra: { secret?: boolean; default?: string } = {},
): EnvVarSpec {
  const s: EnvVarSpec = { name, description, secret: extra.secret ?? false, validate };
  if (extra.default !== undefined) s.default = extra.default;
  return s;
}

/** The variables of docs/architecture.md's Configuration table, plus the runbooks' tuning knobs. */
export const LAPTOP_ENV_SCHEMA: EnvSchema = Object.fromEntries(
  [
    spec('SUPABASE_URL', 'project base URL, e.g. https://<ref>.supabase.co', supabaseUrl('SUPABASE_URL')),
    spec(
      'SUPABASE_SERVICE_ROLE_KEY',
      'service-role JWT (or use SUPABASE_SECRET_KEY)',
      supabaseKey('SUPABASE_SERVICE_ROLE_KEY'),
      {
        secret: true,
      },
    ),
    spec(
      'SUPABASE_SECRET_KEY',
      'secret key (sb_secret_...), instead of the service-role JWT',
      supabaseKey('SUPABASE_SECRET_KEY'),
      {
        secret: true,
      },
    ),
    spec('SUPABASE_PROJECT_REF', 'the project ref, for self-hosted/sandbox URLs that do not carry it', projectRef),
    spec('SPARK_HOST', "Spark's host: Tailscale IP or a ~/.ssh/config Host alias", sparkHost),
    spec('SPARK_PORT', "Spark's SSH port", integer('SPARK_PORT', 1, 65535), { default: '2222' }),
    spec('SPARK_USER', 'the login user on Spark', sparkUser, { default: 'sparkuser' }),
    spec('SPARK_SSH_KEY_PATH', 'private key file for Spark (else SPARK_SSH_KEY, else the SSH agent)', sparkKeyPath),
    spec('SPARK_SSH_KEY', 'the private key itself, for CI', sparkKey, { secret: true }),
    spec('SPARK_KNOWN_HOSTS', 'known_hosts file', path('SPARK_KNOWN_HOSTS'), { default: '~/.ssh/known_hosts' }),
    spec('SPARK_HOST_KEY_SHA256', 'pinned host key fingerprint (SHA256:...), e.g. for CI', hostKeyFingerprint),
    spec('SPARK_WORKER_DIR', "the worker's folder on Spark", path('SPARK_WORKER_DIR'), { default: '~/srv/hd-worker' }),
    spec('APP_ENV_FILE', "the app's env file, whose *SUPABASE_URL is cross-checked", path('APP_ENV_FILE')),
    spec('APP_SUPABASE_URL', "the app's Supabase URL, when there is no APP_ENV_FILE", supabaseUrl('APP_SUPABASE_URL')),
    spec('STUCK_QUEUED_MINUTES', 'a queued job older than this is stuck', integer('STUCK_QUEUED_MINUTES', 1, 10080)),
    spec(
      'STUCK_RUNNING_MINUTES',
      'a running job not updated for this long is stuck',
      integer('STUCK_RUNNING_MINUTES', 1, 10080),
    ),
    spec('MAX_ATTEMPTS', 'attempts after which a job is not requeued', integer('MAX_ATTEMPTS', 1, 100)),
    spec('RUNBOOK_OPERATOR', 'who is running the runbook, for the audit trail', operator),
    spec('REQUEUE_AUDIT_FILE', 'where requeue actions are appended', path('REQUEUE_AUDIT_FILE')),
    spec('HD_RUNBOOKS_PATTERNS_FILE', 'extra error patterns for triage', path('HD_RUNBOOKS_PATTERNS_FILE')),
  ].map((s) => [s.name, s]),
);

/** Prefixes of the names the runbooks own; an unknown name with one of these is probably a typo. */
export const OWN_ENV_PREFIXES: readonly string[] = [
  'SUPABASE_',
  'SPARK_',
  'APP_',
  'STUCK_',
  'REQUEUE_',
  'HD_RUNBOOKS_',
];

/**
 * Names with one of our prefixes that belong to other tools sharing the `.env` (the app, the Supabase CLI,
 * Apache Spark); warning about them would be noise.
 */
export const FOREIGN_ENV_NAMES: ReadonlySet<string> = new Set([
  'SUPABASE_ANON_KEY',
  'SUPABASE_PUBLISHABLE_KEY',
  'SUPABASE_PUBLISHABLE_DEFAULT_KEY',
  'SUPABASE_JWT_SECRET',
  'SUPABASE_DB_URL',
  'SUPABASE_DB_PASSWORD',
  'SUPABASE_ACCESS_TOKEN',
  'SPARK_HOME',
  'APP_ENV',
  'APP_NAME',
  'APP_URL',
  'APP_PORT',
]);

/** The nearest known name: most shared `_`-separated words first (SERVICE, KEY), then edit distance. */
function closest(name: string, known: readonly string[]): { name: string; distance: number } | undefined {
  const words = new Set(name.split('_').filter(Boolean));
  let best: { name: string; distance: number; shared: number } | undefined;
  for (const k of known) {
    const shared = k.split('_').filter((w) => words.has(w)).length;
    const distance = editDistance(name, k);
    if (!best || shared > best.shared || (shared === best.shared && distance < best.distance)) {
      best = { name: k, distance, shared };
    }
  }
  return best && { name: best.name, distance: best.distance };
}

function unknownNameIssue(name: string, known: readonly string[]): EnvIssue | undefined {
  const upper = name.toUpperCase();
  if (upper !== name && known.includes(upper)) {
    return {
      name,
      severity: 'warning',
      message: `${name} is not read: variable names are case-sensitive`,
      fix: `did you mean ${upper}?`,
    };
  }
  if (FOREIGN_ENV_NAMES.has(name)) return undefined;
  const near = closest(upper, known);
  if (near && near.distance <= 2) {
    return {
      name,
      severity: 'warning',
      message: `${name} is not a variable the runbooks read`,
      fix: `did you mean ${near.name}?`,
    };
  }
  const prefix = OWN_ENV_PREFIXES.find((p) => upper.startsWith(p));
  if (!prefix) return undefined;
  const samePrefix = known.filter((k) => k.startsWith(prefix));
  const guess = closest(upper, samePrefix);
  return {
    name,
    severity: 'warning',
    message: `${name} is not a variable the runbooks read`,
    fix: guess
      ? `did you mean ${guess.name}? (known ${prefix}* variables: ${samePrefix.join(', ')})`
      : `remove it, or see the Configuration table in docs/architecture.md`,
  };
}

/** Options for {@link validateEnv}. */
export interface ValidateEnvOptions {
  /**
   * Variables this run cannot do without; an entry that is a list means "at least one of these",
   * e.g. `[['SUPABASE_SERVICE_ROLE_KEY', 'SUPABASE_SECRET_KEY']]`.
   */
  require?: readonly (string | readonly string[])[];
}

/**
 * Validate configuration variables (from a `.env` file or the environment) against a schema. Malformed values are
 * errors and are left out of `values`; unknown names that look like ours are warnings with a "did you mean" fix;
 * other unknown names are ignored. An empty value counts as unset. No message contains a secret value.
 */
export function validateEnv(
  vars: Readonly<Record<string, string | undefined>>,
  schema: EnvSchema,
  options: ValidateEnvOptions = {},
): EnvValidation {
  const set: Record<string, string> = {};
  for (const [name, value] of Object.entries(vars)) if (value !== undefined && value !== '') set[name] = value;

  const values: Record<string, string> = {};
  const issues: EnvIssue[] = [];
  const known = Object.keys(schema);
  for (const spec of Object.values(schema)) {
    const value = set[spec.name];
    if (value === undefined) {
      if (spec.default !== undefined) values[spec.name] = spec.default;
      continue;
    }
    // A key pasted where no key belongs, that the variable's own check let pass: refused by name, without the value.
    const own = spec.validate(value, set);
    const shape = own || spec.secret ? undefined : secretShape(value);
    const p: EnvProblem | undefined = shape
      ? problem(
          `${spec.name} holds what looks like a ${shape}, not ${spec.description.split(/[,(]/)[0]!.trim()}`,
          `put the key in its own variable (SUPABASE_SERVICE_ROLE_KEY, SUPABASE_SECRET_KEY, SPARK_SSH_KEY) and set ${spec.name} to what it is for`,
        )
      : own;
    if (p) issues.push({ name: spec.name, severity: p.severity ?? 'error', message: p.message, fix: p.fix });
    if (!p || p.severity === 'warning') values[spec.name] = value;
  }
  for (const name of Object.keys(set)) {
    if (schema[name]) continue;
    const issue = unknownNameIssue(name, known);
    if (issue) issues.push(issue);
  }
  for (const req of options.require ?? []) {
    const names = typeof req === 'string' ? [req] : req;
    if (names.some((n) => set[n] !== undefined)) continue;
    const hint = schema[names[0]]?.description;
    issues.push({
      name: names[0],
      severity: 'error',
      message: names.length > 1 ? `neither ${names.join(' nor ')} is set` : `${names[0]} is not set`,
      fix: `set ${names.length > 1 ? 'one of them' : names[0]} in .env or the environment${hint ? `: ${hint}` : ''}`,
    });
  }
  return { values, issues };
}

/** The Supabase URL and public key an app's env file configures. */
export interface AppSupabaseConfig {
  /** e.g. `NEXT_PUBLIC_SUPABASE_URL`. */
  urlName: string;
  url: string;
  /** e.g. `NEXT_PUBLIC_SUPABASE_ANON_KEY`; absent when no matching key variable is set. */
  keyName?: string;
  key?: string;
}

/** Framework prefixes for public env variables, in the order we prefer them; '' is the bare name. */
const APP_PREFIXES: readonly string[] = [
  'NEXT_PUBLIC_',
  'VITE_',
  'EXPO_PUBLIC_',
  'PUBLIC_',
  'REACT_APP_',
  'NUXT_PUBLIC_',
  '',
];
const APP_KEY_SUFFIXES: readonly string[] = [
  'SUPABASE_PUBLISHABLE_KEY',
  'SUPABASE_PUBLISHABLE_DEFAULT_KEY',
  'SUPABASE_ANON_KEY',
  'SUPABASE_KEY',
];

/**
 * Find which `*SUPABASE_URL` an app's env file sets (NEXT_PUBLIC_, VITE_, EXPO_PUBLIC_, PUBLIC_, then REACT_APP_,
 * NUXT_PUBLIC_, then bare SUPABASE_URL; first non-empty wins) and the public key variable with the same prefix.
 */
export function findAppSupabaseUrl(vars: Readonly<Record<string, string | undefined>>): AppSupabaseConfig | undefined {
  for (const prefix of APP_PREFIXES) {
    const urlName = `${prefix}SUPABASE_URL`;
    const url = vars[urlName];
    if (!url) continue;
    const found: AppSupabaseConfig = { urlName, url };
    for (const suffix of APP_KEY_SUFFIXES) {
      const key = vars[`${prefix}${suffix}`];
      if (key) {
        found.keyName = `${prefix}${suffix}`;
        found.key = key;
        break;
      }
    }
    return found;
  }
  return undefined;
}
