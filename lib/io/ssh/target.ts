/**
 * Where and how to connect to Spark: host, port, user, the key to offer, the known_hosts file and an optional pinned
 * host key, resolved from the SPARK_* variables (the environment or .env) and ~/.ssh/config.
 *
 * Precedence, per setting: the SPARK_* variable, then ~/.ssh/config (for the Host alias that SPARK_HOST names), then
 * the default. Explicit settings win so that a `.env` written for this project is never silently overridden by a
 * personal ssh config; the ssh config still fills whatever the project leaves open.
 *
 * The SPARK_* values arrive checked by the config schema (lib/io/env-file.ts), which names the variable; what only
 * this module reads (~/.ssh/config's HostName, Port and User) is checked here. Pure: the environment, the ssh config
 * text, the home folder and (optionally) a file-existence check are parameters. Problems come back as values (an
 * {@link SshFailure} of kind `config`), never as exceptions.
 */

import type { SshFailure, SshTarget } from '../../core/ports.ts';
import { resolveAuth, type SshAuthSpec } from './auth.ts';
import { hostKeyFingerprintCommand, normalizeFingerprint } from './known-hosts.ts';
import { expandTilde, configFailure as fail, nonEmpty } from './setting.ts';
import { emptyConfigValues, evaluateSshConfig, expandTokens, type SshConfigValues } from './ssh-config.ts';

export type { SshAuthSpec } from './auth.ts';
export { expandTilde } from './setting.ts';

/** Spark's sshd port when nothing else says otherwise (the host's own sshd keeps 22). */
export const DEFAULT_SPARK_PORT = 2222;
/** The account the worker runs under on Spark. */
export const DEFAULT_SPARK_USER = 'sparkuser';

/** The target as every line shows it: `user@host:port`. */
export function sshTargetLabel(target: Pick<SshTarget, 'user' | 'host' | 'port'>): string {
  return `${target.user}@${target.host}:${target.port}`;
}

/** Everything {@link resolveSshTarget} works out. */
export interface SparkSshSettings {
  target: SshTarget;
  auth: SshAuthSpec;
  /** The known_hosts file to check the host key against (`~` expanded). */
  knownHostsPath: string;
  /** Which setting named the known_hosts file. */
  knownHostsSource: string;
  /** `SHA256:...`, normalised; when set it replaces the known_hosts check. */
  pinnedFingerprint?: string;
  /** The ~/.ssh/config Host alias SPARK_HOST named, when it named one. */
  alias?: string;
  /** Things worth telling the operator that are not errors (unsupported ssh config directives, ...). */
  notes: string[];
}

/** Inputs of {@link resolveSshTarget}; every piece of I/O is a parameter so tests pass fakes. */
export interface ResolveSshTargetInput {
  /** The SPARK_* settings (as the config schema validated them), SSH_AUTH_SOCK, USER and LOGNAME. */
  env: Readonly<Record<string, string | undefined>>;
  /** The text of ~/.ssh/config, when it exists. */
  sshConfigText?: string;
  homeDir: string;
  /** Where `env` came from, for messages: ".env" or "the environment" (the default). */
  envLabel?: string;
  /** How to name the ssh config in messages; default `~/.ssh/config`. */
  sshConfigLabel?: string;
  /** When given, used to pick the first existing IdentityFile and OpenSSH's default key files. */
  fileExists?: (path: string) => boolean;
}

/** The outcome of {@link resolveSshTarget}. */
export type SshTargetResolution = { ok: true; settings: SparkSshSettings } | { ok: false; failure: SshFailure };

type Failed = { ok: false; failure: SshFailure };

/**
 * Characters that make a host or user name unsafe to hand on: they would change meaning in the `ssh -p ... user@host`
 * commands the runbooks print for the operator to paste, and no real host name contains them.
 */
const UNSAFE_NAME = /[\s;$`'"\\|&<>(){}*?!#]/;

/**
 * Checks a host or user name from ~/.ssh/config. Returns a one-line reason when it is unusable, undefined when it
 * is fine. Rejects whitespace, shell metacharacters, quotes and a leading `-` (it would read as an ssh option).
 */
export function checkHostName(host: string): string | undefined {
  if (host === '') return 'it is empty';
  if (host.startsWith('-')) return 'it starts with "-" and would be read as an option';
  if (UNSAFE_NAME.test(host)) return 'it contains whitespace, quotes or shell characters';
  if (host.length > 253) return 'it is longer than 253 characters';
  return undefined;
}

/** Parses a port: a decimal integer 1-65535, nothing else (no "22abc", no "0x16", no "1e3"). */
export function parsePort(value: string | number): number | undefined {
  const text = String(value).trim();
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

interface Context {
  env: ResolveSshTargetInput['env'];
  envLabel: string;
  configLabel: string;
  fromConfig: SshConfigValues;
}

/** ~/.ssh/config, evaluated for the host as given (OpenSSH matches `Host` against what was typed). */
function readSshConfig(input: ResolveSshTargetInput, host: string, configLabel: string, notes: string[]) {
  if (input.sshConfigText === undefined || input.sshConfigText.trim() === '') return emptyConfigValues();
  let values = emptyConfigValues();
  try {
    values = evaluateSshConfig(input.sshConfigText, host);
  } catch (error) {
    notes.push(`${configLabel} could not be parsed and was ignored (${errorText(error)})`);
  }
  notes.push(...values.notes.map((note) => `${configLabel}: ${note}`));
  return values;
}

/** The host: SPARK_HOST, or the HostName its ~/.ssh/config Host block gives. */
function resolveHost(requested: string, c: Context): { host: string; source: string; alias?: string } | Failed {
  const hostName = c.fromConfig.hostName;
  if (hostName === undefined) return { host: requested, source: `SPARK_HOST in ${c.envLabel}` };
  const host = hostName.value.replaceAll('%h', requested).replaceAll('%%', '%');
  const problem = checkHostName(host);
  if (problem !== undefined) {
    return fail(
      `HostName ${JSON.stringify(host)} (${hostName.section} in ${c.configLabel}) is not a usable host: ${problem}`,
      `Fix the HostName line in ${c.configLabel}, or set SPARK_HOST to Spark's Tailscale IP directly`,
    );
  }
  return {
    host,
    source: `SPARK_HOST=${requested} in ${c.envLabel}, ${hostName.section} in ${c.configLabel}`,
    ...(host.toLowerCase() !== requested.toLowerCase() ? { alias: requested } : {}),
  };
}

/** The port: SPARK_PORT, else Port from ~/.ssh/config, else the default. */
function resolvePort(c: Context): { port: number } | Failed {
  const fromEnv = nonEmpty(c.env.SPARK_PORT);
  const fromConfig = c.fromConfig.port;
  const given = fromEnv ?? fromConfig?.value;
  if (given === undefined) return { port: DEFAULT_SPARK_PORT };
  const port = parsePort(given);
  if (port !== undefined) return { port };
  if (fromEnv !== undefined) {
    return fail(
      `SPARK_PORT ${JSON.stringify(given)} is not a port number (an integer from 1 to 65535)`,
      `Set SPARK_PORT to Spark's sshd port (default ${DEFAULT_SPARK_PORT})`,
    );
  }
  return fail(
    `Port ${JSON.stringify(given)} (${fromConfig?.section} in ${c.configLabel}) is not a port number`,
    `Fix the Port line in ${c.configLabel}, or set SPARK_PORT (default ${DEFAULT_SPARK_PORT})`,
  );
}

/** The user: SPARK_USER, else User from ~/.ssh/config, else the default. */
function resolveUser(c: Context): { user: string } | Failed {
  const fromEnv = nonEmpty(c.env.SPARK_USER);
  if (fromEnv !== undefined) return { user: fromEnv };
  const fromConfig = c.fromConfig.user;
  if (fromConfig === undefined) return { user: DEFAULT_SPARK_USER };
  const problem = checkHostName(fromConfig.value);
  if (problem === undefined) return { user: fromConfig.value };
  return fail(
    `User ${JSON.stringify(fromConfig.value)} (${fromConfig.section} in ${c.configLabel}) is not a usable user name: ${problem}`,
    `Set SPARK_USER to the account the worker runs under on Spark (default ${DEFAULT_SPARK_USER})`,
  );
}

/** known_hosts: SPARK_KNOWN_HOSTS, else UserKnownHostsFile, else ~/.ssh/known_hosts. */
function resolveKnownHosts(c: Context, expand: (path: string) => string) {
  const fromEnv = nonEmpty(c.env.SPARK_KNOWN_HOSTS);
  if (fromEnv !== undefined) return { knownHostsPath: expand(fromEnv), knownHostsSource: 'SPARK_KNOWN_HOSTS' };
  const fromConfig = c.fromConfig.userKnownHostsFile;
  if (fromConfig !== undefined) {
    return {
      knownHostsPath: expand(fromConfig.value),
      knownHostsSource: `UserKnownHostsFile (${fromConfig.section} in ${c.configLabel})`,
    };
  }
  return { knownHostsPath: expand('~/.ssh/known_hosts'), knownHostsSource: 'the default ~/.ssh/known_hosts' };
}

/** The pinned host key, normalised. */
function resolvePin(c: Context): { pinnedFingerprint?: string } | Failed {
  const given = nonEmpty(c.env.SPARK_HOST_KEY_SHA256);
  if (given === undefined) return {};
  const pinnedFingerprint = normalizeFingerprint(given);
  if (pinnedFingerprint !== undefined) return { pinnedFingerprint };
  return fail(
    'SPARK_HOST_KEY_SHA256 is not a SHA256 host key fingerprint (expected SHA256: and 43 base64 characters)',
    `Set SPARK_HOST_KEY_SHA256 to the SHA256:... value of \`${hostKeyFingerprintCommand()}\` run on Spark`,
  );
}

/**
 * Resolves the SSH settings for Spark. See the module comment for the precedence; the `source` of the target says
 * where the host came from, e.g. "SPARK_HOST in .env" or "SPARK_HOST=spark in .env, Host spark in ~/.ssh/config".
 */
export function resolveSshTarget(input: ResolveSshTargetInput): SshTargetResolution {
  const { env, homeDir } = input;
  const configLabel = input.sshConfigLabel ?? '~/.ssh/config';
  const requested = nonEmpty(env.SPARK_HOST);
  if (requested === undefined) {
    return fail(
      'SPARK_HOST is not set: there is no Spark host to connect to',
      `Set SPARK_HOST in .env to Spark's Tailscale IP (\`tailscale ip -4\` on Spark) or a Host alias from ${configLabel}`,
    );
  }
  const notes: string[] = [];
  const fromConfig = readSshConfig(input, requested, configLabel, notes);
  const c: Context = { env, envLabel: input.envLabel ?? 'the environment', configLabel, fromConfig };
  const host = resolveHost(requested, c);
  if ('failure' in host) return host;
  const port = resolvePort(c);
  if ('failure' in port) return port;
  const user = resolveUser(c);
  if ('failure' in user) return user;
  const target: SshTarget = { host: host.host, port: port.port, user: user.user, source: host.source };
  const expand = (path: string) =>
    expandTilde(
      expandTokens(path, {
        homeDir,
        host: target.host,
        port: target.port,
        user: target.user,
        originalHost: requested,
        env,
      }),
      homeDir,
    );
  const auth = resolveAuth({ env, fromConfig, configLabel, expand, fileExists: input.fileExists });
  if ('failure' in auth) return auth;
  const pin = resolvePin(c);
  if ('failure' in pin) return pin;
  return {
    ok: true,
    settings: { target, auth: auth.auth, ...resolveKnownHosts(c, expand), ...pin, alias: host.alias, notes },
  };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
