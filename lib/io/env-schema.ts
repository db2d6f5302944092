/**
 * The runbooks' variables: what each one is, its documented default, and the check of its value (a key for another
 * project than the URL's, a host with a port in it, a public key where the private one goes). No message contains
 * a secret value.
 */
import { inspectKey } from './keys.ts';
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

type Validator = EnvVarSpec['validate'];

export function problem(message: string, fix: string, severity?: 'warning'): EnvProblem {
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

/**
 * The project's Postgres connection string (Dashboard > Connect): direct `db.<ref>.supabase.co:5432` or the pooler,
 * whose user is `postgres.<ref>`. Its password never appears in a message.
 */
const dbUrl: Validator = (value, all) => {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return problem(
      'SUPABASE_DB_URL is not a URL',
      'copy the URI from the dashboard: Connect > Connection string',
      'warning',
    );
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    return problem(
      'SUPABASE_DB_URL is not a postgresql:// connection string',
      'copy the URI from Connect > Connection string',
      'warning',
    );
  }
  if (/\[YOUR[-_ ]PASSWORD\]/i.test(decodeURIComponent(value))) {
    return problem(
      'SUPABASE_DB_URL still holds the [YOUR-PASSWORD] placeholder',
      "put the database's password in its place",
      'warning',
    );
  }
  if (!url.hostname)
    return problem('SUPABASE_DB_URL names no host', 'copy the URI from Connect > Connection string', 'warning');
  const ref =
    /^db\.([a-z0-9]{20})\.supabase\.co$/.exec(url.hostname)?.[1] ??
    /^postgres\.([a-z0-9]{20})$/.exec(url.username)?.[1];
  const urlRef = projectRefOfUrl(all);
  if (ref && urlRef && ref !== urlRef) {
    return problem(
      `SUPABASE_DB_URL is project ${ref}, but SUPABASE_URL is project ${urlRef}`,
      `use the connection string of project ${urlRef}`,
      'warning',
    );
  }
  return undefined;
};

const restartCommand: Validator = (value) => {
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    return problem('WORKER_RESTART_CMD contains control characters', 'set it to one command line');
  }
  if (value.trim() === '' || value.length > 300) {
    return problem(
      'WORKER_RESTART_CMD must be 1-300 characters',
      'set it to one command line, e.g. sudo systemctl restart hd-worker',
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
    spec(
      'SUPABASE_DB_URL',
      "optional: the project's Postgres connection string; diagnose-env then reads the indexes and role timeouts",
      dbUrl,
      { secret: true },
    ),
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
    spec(
      'WORKER_RESTART_CMD',
      'how the worker is restarted on Spark, e.g. sudo systemctl restart hd-worker: shown in Next steps, never run',
      restartCommand,
    ),
  ].map((s) => [s.name, s]),
);
