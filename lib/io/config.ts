/**
 * The laptop's configuration: where it comes from and what it says. Precedence: `--config FILE` (or `--env-file FILE`), then the
 * environment, then `./.env` (explicit beats ambient, ambient beats implicit). Pure: files come in through `readFile`.
 */

import path from 'node:path';
import { RunbookError } from '../core/exit-codes.ts';
import { DEFAULT_RULES, parseJobTypeRules, type StuckRules } from '../core/stuck-rules.ts';
import { clip } from '../core/text.ts';
import { type EnvIssue, LAPTOP_ENV_SCHEMA, parseEnvText, validateEnv } from './env-file.ts';
import type { KeyInfo } from './keys.ts';
import { inspectKey } from './keys.ts';
import type { SupabaseUrlInfo } from './supabase-url.ts';
import { classifySupabaseUrl } from './supabase-url.ts';

/** One side's view of Supabase: which URL and which key (never the key itself). */
export interface SupabaseSide {
  /** Where it came from, e.g. "SUPABASE_URL in /path/.env" or "NEXT_PUBLIC_SUPABASE_URL in app.env". */
  source: string;
  urlVar: string;
  url?: SupabaseUrlInfo;
  urlProblem?: string;
  keyVar?: string;
  key?: KeyInfo;
  /** SUPABASE_PROJECT_REF, for URLs that do not carry the ref (self-hosted, the sandbox). */
  declaredRef?: string;
}

export interface LoadedConfig {
  /** The env file that was read, when one was. */
  envFile?: string;
  /** Validated values (secrets included: use, never print). */
  values: Record<string, string>;
  issues: EnvIssue[];
  /** The laptop's Supabase side, ready for the evidence. */
  laptop: SupabaseSide;
  supabaseKey: string;
  /** Secrets seen in the configuration, to register with the output's redactor. */
  secrets: string[];
}

export interface ConfigInput {
  envFileFlag?: string;
  cwd: string;
  env: Readonly<Record<string, string | undefined>>;
  /** Returns the file's text, or undefined when it does not exist; throws for other read errors. */
  readFile: (file: string) => string | undefined;
}

const EXAMPLE_FIX =
  'copy .env.example to .env and fill it in, or pass --config FILE; to try the runbooks on the sandbox: npm run demo';

export function loadConfig(input: ConfigInput): LoadedConfig {
  let fileVars: Record<string, string> = {};
  let envFile: string | undefined;
  const explicit = input.envFileFlag !== undefined;
  const candidate = explicit ? path.resolve(input.cwd, input.envFileFlag!) : path.join(input.cwd, '.env');
  let text: string | undefined;
  try {
    text = input.readFile(candidate);
  } catch (e) {
    throw new RunbookError(
      `cannot read ${candidate}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      "check the file's permissions",
    );
  }
  if (text === undefined && explicit) {
    throw new RunbookError(
      `config file ${input.envFileFlag}: no such file`,
      `check the path given to --config; ${EXAMPLE_FIX}`,
    );
  }
  if (text !== undefined) {
    fileVars = parseEnvText(text);
    envFile = candidate;
  }
  // From the environment only the names we own: a shell holds plenty that is none of our business.
  const fromEnv: Record<string, string> = {};
  for (const name of Object.keys(LAPTOP_ENV_SCHEMA)) {
    const v = input.env[name];
    if (v !== undefined && v !== '') fromEnv[name] = v;
  }
  const merged = explicit ? { ...fromEnv, ...fileVars } : { ...fileVars, ...fromEnv };
  if (!merged.SUPABASE_URL && envFile === undefined) {
    throw new RunbookError(`no configuration: no .env in ${input.cwd} and SUPABASE_URL is not set`, EXAMPLE_FIX);
  }
  const validation = validateEnv(merged, LAPTOP_ENV_SCHEMA, {
    require: ['SUPABASE_URL', ['SUPABASE_SERVICE_ROLE_KEY', 'SUPABASE_SECRET_KEY']],
  });
  const where = envFile ? `in ${envFile}` : 'in the environment';
  const errors = validation.issues.filter((i) => i.severity === 'error');
  if (errors.length) {
    // A misspelled name explains a "not set": say so where it matters (SUPABSE_URL is set, SUPABASE_URL is not).
    const typoOf = (name: string) =>
      validation.issues.find((i) => i.severity === 'warning' && i.fix === `did you mean ${name}?`);
    const fixOf = (e: (typeof errors)[number]) => {
      const typo = typoOf(e.name);
      return typo ? `${typo.name} is set instead: did you mean ${e.name}? (rename it)` : e.fix;
    };
    const [first, ...rest] = errors;
    // Every error is named: the first with its fix, the others each on a line of their own below it.
    const others = rest.map((e) => `\n  also: ${e.message} → ${fixOf(e)}`).join('');
    throw new RunbookError(`${first.message} (${where})`, `${fixOf(first)}${others}`);
  }
  const values = validation.values;
  const keyVar = values.SUPABASE_SERVICE_ROLE_KEY ? 'SUPABASE_SERVICE_ROLE_KEY' : 'SUPABASE_SECRET_KEY';
  const key = values[keyVar];
  const url = classifySupabaseUrl(values.SUPABASE_URL);
  const source = (name: string) =>
    `${name} ${name in fileVars && (explicit || !(name in fromEnv)) ? where : 'in the environment'}`;
  return {
    envFile,
    values,
    issues: validation.issues,
    supabaseKey: key,
    secrets: configSecrets(values),
    laptop: {
      source: source('SUPABASE_URL'),
      urlVar: 'SUPABASE_URL',
      url: url.ok ? url : undefined,
      urlProblem: url.ok ? undefined : url.problem,
      keyVar,
      key: inspectKey(key),
      declaredRef: values.SUPABASE_PROJECT_REF,
    },
  };
}

/** The secrets among the values: the keys, and SUPABASE_DB_URL whole and its password alone. */
function configSecrets(values: Record<string, string>): string[] {
  const db = values.SUPABASE_DB_URL;
  return [
    values.SUPABASE_SERVICE_ROLE_KEY,
    values.SUPABASE_SECRET_KEY,
    values.SPARK_SSH_KEY,
    db,
    dbPassword(db),
    // The dashboard's placeholder is no secret: redacting it would hide the warning that names it.
  ].filter((s): s is string => s !== undefined && s !== '' && !/^\[YOUR[-_ ]PASSWORD\]$/i.test(s));
}

/** The password inside a connection string, decoded (the redactor also scrubs its URL-encoded form). */
export function dbPassword(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    return undefined;
  }
}

/** Stuck rules from flags (when given) over env values over defaults. */
export function stuckRulesFrom(
  values: Record<string, string>,
  flags: { queuedMinutes?: string; runningMinutes?: string; maxAttempts?: string; jobTypeRules?: string[] },
): StuckRules {
  const num = (flag: string | undefined, flagName: string, env: string | undefined, fallback: number): number => {
    const raw = flag ?? env?.trim();
    if (raw === undefined) return fallback;
    if (!/^\d{1,6}$/.test(raw) || Number(raw) < 1) {
      throw new RunbookError(
        `${flagName} must be a whole number of at least 1 (got "${clip(raw, 40)}")`,
        `e.g. ${flagName} 15`,
      );
    }
    return Number(raw);
  };
  const perJobType: StuckRules['perJobType'] = {};
  for (const text of flags.jobTypeRules ?? []) {
    if (text.trim() === '') {
      throw new RunbookError(
        '--job-type-rule is empty',
        'e.g. --job-type-rule import_assets_jsonl:running=180,queued=30',
      );
    }
    const r = parseJobTypeRules(text);
    if (!r.ok)
      throw new RunbookError(
        `--job-type-rule: ${r.error}`,
        'e.g. --job-type-rule import_assets_jsonl:running=180,queued=30',
      );
    for (const [type, o] of Object.entries(r.value)) perJobType[type] = { ...perJobType[type], ...o };
  }
  return {
    queuedMinutes: num(
      flags.queuedMinutes,
      '--queued-minutes',
      values.STUCK_QUEUED_MINUTES,
      DEFAULT_RULES.queuedMinutes,
    ),
    runningMinutes: num(
      flags.runningMinutes,
      '--running-minutes',
      values.STUCK_RUNNING_MINUTES,
      DEFAULT_RULES.runningMinutes,
    ),
    maxAttempts: num(flags.maxAttempts, '--max-attempts', values.MAX_ATTEMPTS, DEFAULT_RULES.maxAttempts),
    perJobType,
  };
}
