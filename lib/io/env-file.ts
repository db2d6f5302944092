/**
 * The laptop's configuration: parse `.env` text, validate the runbooks' variables (env-schema.ts, env-validate.ts),
 * and find the Supabase URL an app's env file sets.
 */
import { parse } from 'dotenv';

export { type EnvProblem, type EnvSchema, type EnvVarSpec, LAPTOP_ENV_SCHEMA } from './env-schema.ts';
export {
  type EnvIssue,
  type EnvValidation,
  FOREIGN_ENV_NAMES,
  OWN_ENV_PREFIXES,
  type ValidateEnvOptions,
  validateEnv,
} from './env-validate.ts';

/**
 * Parse `.env` text with dotenv's parser (quotes, `export`, comments, multi-line double-quoted values).
 * Prints nothing, unlike `dotenv.config()`.
 */
export function parseEnvText(text: string): Record<string, string> {
  return { ...parse(text) };
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
