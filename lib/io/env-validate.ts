/**
 * Validating the laptop's configuration against the schema (env-schema.ts), and flagging names that look like ours
 * but are not (a misspelled variable is silently ignored otherwise, and the default wins). The `.env` is often
 * shared with the app, so names that are clearly someone else's are left alone.
 */
import { editDistance } from '../core/text.ts';
import { type EnvProblem, type EnvSchema, problem } from './env-schema.ts';
import { secretShape } from './redact.ts';

/** One finding about the configuration. */
export interface EnvIssue {
  name: string;
  severity: 'error' | 'warning';
  message: string;
  fix: string;
  /** A variable the runbooks do not read (a misspelling, a wrong case): its value is ignored. */
  notRead?: true;
}

export interface EnvValidation {
  /**
   * The schema's variables that are set and usable (including those with only warnings), plus documented defaults
   * for those unset. Secret values are in here: use them, never print this object.
   */
  values: Record<string, string>;
  issues: EnvIssue[];
}

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
      notRead: true,
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
      notRead: true,
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
    notRead: true,
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
