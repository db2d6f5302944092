/**
 * Where and how to connect to Spark: host, port, user, the key to offer, the known_hosts file and an optional pinned
 * host key, resolved from flags, the environment (or .env) and ~/.ssh/config.
 *
 * Precedence, per setting: command-line flag, then the SPARK_* variable, then ~/.ssh/config (for the Host alias
 * that SPARK_HOST names), then the default. Explicit settings win so that a `.env` written for this project is never
 * silently overridden by a personal ssh config; the ssh config still fills whatever the project leaves open.
 *
 * Pure: the environment, the ssh config text, the home folder and (optionally) a file-existence check come in as
 * parameters. Problems come back as values (an {@link SshFailure} of kind `config`), never as exceptions.
 */

import SSHConfig, { type Line } from 'ssh-config';
import type { SshFailure, SshTarget } from '../../core/ports.ts';
import { hostKeyFingerprintCommand, matchPatternList, normalizeFingerprint } from './known-hosts.ts';

/** Spark's sshd port when nothing else says otherwise (the host's own sshd keeps 22). */
export const DEFAULT_SPARK_PORT = 2222;
/** The account the worker runs under on Spark. */
export const DEFAULT_SPARK_USER = 'sparkuser';

/**
 * The private key material to offer. An inline key is only reachable through `read()`, so that printing or
 * JSON-serialising a resolved config never shows the key.
 */
export type SshAuthSpec =
  | {
      kind: 'file';
      /** Absolute or as-given path, `~` expanded. */
      path: string;
      /** Which setting named it, e.g. `SPARK_SSH_KEY_PATH` or `IdentityFile in ~/.ssh/config`. */
      source: string;
      /** Also offer the agent's keys after this one (as ssh does), unless the key was set explicitly. */
      agentSocket?: string;
    }
  | { kind: 'inline'; source: string; read: () => string }
  | { kind: 'agent'; socket: string; source: string };

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

/** Command-line overrides; a runbook's flag parser fills what the operator typed. */
export interface SshTargetFlags {
  host?: string;
  port?: string | number;
  user?: string;
  identityFile?: string;
  knownHosts?: string;
  hostKeySha256?: string;
}

/** Inputs of {@link resolveSshTarget}; every piece of I/O is a parameter so tests pass fakes. */
export interface ResolveSshTargetInput {
  env: Readonly<Record<string, string | undefined>>;
  flags?: SshTargetFlags;
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

/** OpenSSH's default identity files, in the order ssh tries them (DSA and security keys left out). */
const DEFAULT_IDENTITY_FILES = ['~/.ssh/id_ed25519', '~/.ssh/id_ecdsa', '~/.ssh/id_rsa'];

/**
 * Characters that make a host or user name unsafe to hand on: they would change meaning in the `ssh -p ... user@host`
 * commands the runbooks print for the operator to paste, and no real host name contains them.
 */
const UNSAFE_NAME = /[\s;$`'"\\|&<>(){}*?!#]/;

/**
 * Checks a host name or address. Returns a one-line reason when it is unusable, undefined when it is fine.
 * Rejects whitespace, shell metacharacters, quotes and a leading `-` (it would read as an ssh option).
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

/** Expands a leading `~` or `~/` to the home folder; `~user` forms are left alone (we do not look users up). */
export function expandTilde(path: string, homeDir: string): string {
  if (path === '~') return homeDir;
  if (path.startsWith('~/')) return homeDir.replace(/\/+$/, '') + path.slice(1);
  return path;
}

/**
 * Resolves the SSH settings for Spark. See the module comment for the precedence; the `source` of the target says
 * where the host came from, e.g. "SPARK_HOST in .env" or "SPARK_HOST=spark, Host spark in ~/.ssh/config".
 */
export function resolveSshTarget(input: ResolveSshTargetInput): SshTargetResolution {
  const { env, homeDir } = input;
  const flags = input.flags ?? {};
  const envLabel = input.envLabel ?? 'the environment';
  const configLabel = input.sshConfigLabel ?? '~/.ssh/config';
  const notes: string[] = [];
  const setting = (name: string) => nonEmpty(env[name]);

  // Host.
  const hostFromFlag = nonEmpty(flags.host);
  const requestedHost = hostFromFlag ?? setting('SPARK_HOST');
  const hostSetting = hostFromFlag !== undefined ? '--host' : 'SPARK_HOST';
  if (requestedHost === undefined) {
    return fail(
      'SPARK_HOST is not set: there is no Spark host to connect to',
      `Set SPARK_HOST in .env to Spark's Tailscale IP (\`tailscale ip -4\` on Spark) or a Host alias from ${configLabel}`,
    );
  }
  const hostProblem = checkHostName(requestedHost);
  if (hostProblem !== undefined) {
    return fail(
      `${hostSetting} ${JSON.stringify(requestedHost)} is not a usable host: ${hostProblem}`,
      `Set ${hostSetting} to Spark's Tailscale IP (e.g. 100.x.y.z), MagicDNS name or ${configLabel} Host alias`,
    );
  }

  // ~/.ssh/config, evaluated for the host as given (OpenSSH matches `Host` against what was typed).
  let fromConfig: SshConfigValues = emptyConfigValues();
  if (input.sshConfigText !== undefined && input.sshConfigText.trim() !== '') {
    try {
      fromConfig = evaluateSshConfig(input.sshConfigText, requestedHost);
    } catch (error) {
      notes.push(`${configLabel} could not be parsed and was ignored (${errorText(error)})`);
    }
    notes.push(...fromConfig.notes.map((note) => `${configLabel}: ${note}`));
  }

  let host = requestedHost;
  let source = `${hostSetting} in ${hostFromFlag !== undefined ? 'the command line' : envLabel}`;
  let alias: string | undefined;
  if (fromConfig.hostName !== undefined) {
    const hostName = fromConfig.hostName.value.replaceAll('%h', requestedHost).replaceAll('%%', '%');
    const problem = checkHostName(hostName);
    if (problem !== undefined) {
      return fail(
        `HostName ${JSON.stringify(hostName)} (${fromConfig.hostName.section} in ${configLabel}) is not a usable host: ${problem}`,
        `Fix the HostName line in ${configLabel}, or set ${hostSetting} to Spark's Tailscale IP directly`,
      );
    }
    if (hostName.toLowerCase() !== requestedHost.toLowerCase()) alias = requestedHost;
    host = hostName;
    source = `${hostSetting}=${requestedHost} in ${hostFromFlag !== undefined ? 'the command line' : envLabel}, ${fromConfig.hostName.section} in ${configLabel}`;
  }

  // Port.
  let port: number;
  const portFlag = flags.port !== undefined && String(flags.port).trim() !== '' ? flags.port : undefined;
  const portInput = portFlag ?? setting('SPARK_PORT');
  if (portInput !== undefined) {
    const parsed = parsePort(portInput);
    const name = portFlag !== undefined ? '--port' : 'SPARK_PORT';
    if (parsed === undefined) {
      return fail(
        `${name} ${JSON.stringify(String(portInput))} is not a port number (an integer from 1 to 65535)`,
        `Set ${name} to Spark's sshd port (default ${DEFAULT_SPARK_PORT})`,
      );
    }
    port = parsed;
  } else if (fromConfig.port !== undefined) {
    const parsed = parsePort(fromConfig.port.value);
    if (parsed === undefined) {
      return fail(
        `Port ${JSON.stringify(fromConfig.port.value)} (${fromConfig.port.section} in ${configLabel}) is not a port number`,
        `Fix the Port line in ${configLabel}, or set SPARK_PORT (default ${DEFAULT_SPARK_PORT})`,
      );
    }
    port = parsed;
  } else {
    port = DEFAULT_SPARK_PORT;
  }

  // User.
  const userFromFlag = nonEmpty(flags.user);
  const userInput = userFromFlag ?? setting('SPARK_USER');
  const user = userInput ?? fromConfig.user?.value ?? DEFAULT_SPARK_USER;
  const userProblem = checkHostName(user);
  if (userProblem !== undefined) {
    const name =
      userInput !== undefined
        ? userFromFlag !== undefined
          ? '--user'
          : 'SPARK_USER'
        : `User (${fromConfig.user?.section} in ${configLabel})`;
    return fail(
      `${name} ${JSON.stringify(user)} is not a usable user name: ${userProblem}`,
      `Set SPARK_USER to the account the worker runs under on Spark (default ${DEFAULT_SPARK_USER})`,
    );
  }

  const target: SshTarget = { host, port, user, source };
  const expand = (path: string) =>
    expandTilde(expandTokens(path, { homeDir, host, port, user, originalHost: requestedHost, env }), homeDir);

  // Key.
  const auth = resolveAuth({ flags, env, fromConfig, configLabel, expand, fileExists: input.fileExists });
  if ('failure' in auth) return auth;

  // known_hosts.
  const knownHostsFlag = nonEmpty(flags.knownHosts);
  const knownHostsEnv = setting('SPARK_KNOWN_HOSTS');
  let knownHostsPath: string;
  let knownHostsSource: string;
  if (knownHostsFlag !== undefined) {
    knownHostsPath = expand(knownHostsFlag);
    knownHostsSource = '--known-hosts';
  } else if (knownHostsEnv !== undefined) {
    knownHostsPath = expand(knownHostsEnv);
    knownHostsSource = 'SPARK_KNOWN_HOSTS';
  } else if (fromConfig.userKnownHostsFile !== undefined) {
    knownHostsPath = expand(fromConfig.userKnownHostsFile.value);
    knownHostsSource = `UserKnownHostsFile (${fromConfig.userKnownHostsFile.section} in ${configLabel})`;
  } else {
    knownHostsPath = expandTilde('~/.ssh/known_hosts', homeDir);
    knownHostsSource = 'the default ~/.ssh/known_hosts';
  }

  // Pinned host key.
  const pinFromFlag = nonEmpty(flags.hostKeySha256);
  const pinInput = pinFromFlag ?? setting('SPARK_HOST_KEY_SHA256');
  let pinnedFingerprint: string | undefined;
  if (pinInput !== undefined) {
    pinnedFingerprint = normalizeFingerprint(pinInput);
    const name = pinFromFlag !== undefined ? '--host-key-sha256' : 'SPARK_HOST_KEY_SHA256';
    if (pinnedFingerprint === undefined) {
      return fail(
        `${name} is not a SHA256 host key fingerprint (expected SHA256: and 43 base64 characters)`,
        `Set ${name} to the SHA256:... value of \`${hostKeyFingerprintCommand()}\` run on Spark`,
      );
    }
  }

  return {
    ok: true,
    settings: {
      target,
      auth: auth.auth,
      knownHostsPath,
      knownHostsSource,
      pinnedFingerprint,
      alias,
      notes,
    },
  };
}

interface AuthInputs {
  flags: SshTargetFlags;
  env: Readonly<Record<string, string | undefined>>;
  fromConfig: SshConfigValues;
  configLabel: string;
  expand: (path: string) => string;
  fileExists?: (path: string) => boolean;
}

function resolveAuth(inputs: AuthInputs): { auth: SshAuthSpec } | { ok: false; failure: SshFailure } {
  const { flags, env, fromConfig, configLabel, expand, fileExists } = inputs;
  const agentSocket = nonEmpty(env['SSH_AUTH_SOCK']);

  // An explicitly named key is the only key offered: a CI job or an operator who names a key wants to know whether
  // that key works, not to be let in by some other key in the agent.
  const keyFlag = nonEmpty(flags.identityFile);
  if (keyFlag !== undefined) return { auth: { kind: 'file', path: expand(keyFlag), source: '--identity-file' } };
  const keyPath = nonEmpty(env['SPARK_SSH_KEY_PATH']);
  const rawInlineKey = env['SPARK_SSH_KEY'];
  const inlineKey = rawInlineKey !== undefined && rawInlineKey.trim() !== '' ? rawInlineKey : undefined;
  if (keyPath !== undefined && inlineKey !== undefined) {
    return fail(
      'Both SPARK_SSH_KEY_PATH and SPARK_SSH_KEY are set: it is unclear which key to offer',
      'Unset one of them: SPARK_SSH_KEY_PATH for a key file, SPARK_SSH_KEY for the key itself (CI)',
    );
  }
  if (keyPath !== undefined) return { auth: { kind: 'file', path: expand(keyPath), source: 'SPARK_SSH_KEY_PATH' } };
  if (inlineKey !== undefined) {
    return { auth: { kind: 'inline', source: 'SPARK_SSH_KEY', read: () => normalizeInlineKey(inlineKey) } };
  }

  // Keys ssh itself would use: IdentityFile from the config, then the agent, then the default key files.
  const identityFiles = fromConfig.identityFiles.filter((file) => file.value.toLowerCase() !== 'none');
  if (identityFiles.length > 0) {
    const candidates = identityFiles.map((file) => ({ path: expand(file.value), section: file.section }));
    const chosen = (fileExists && candidates.find((candidate) => fileExists(candidate.path))) || candidates[0];
    return {
      auth: {
        kind: 'file',
        path: chosen.path,
        source: `IdentityFile (${chosen.section} in ${configLabel})`,
        agentSocket,
      },
    };
  }
  if (agentSocket !== undefined) return { auth: { kind: 'agent', socket: agentSocket, source: 'SSH_AUTH_SOCK' } };
  if (fileExists) {
    for (const file of DEFAULT_IDENTITY_FILES) {
      const path = expand(file);
      if (fileExists(path)) return { auth: { kind: 'file', path, source: `the default key ${file}` } };
    }
  }
  return fail(
    'No SSH key to offer: SPARK_SSH_KEY_PATH, SPARK_SSH_KEY and SSH_AUTH_SOCK are unset and no default key was found',
    'Set SPARK_SSH_KEY_PATH to the private key authorised on Spark (e.g. ~/.ssh/id_ed25519), or `ssh-add` it to a running ssh-agent',
  );
}

/**
 * CI secrets often arrive with their newlines written as `\n`, or base64-encoded to survive a single-line field.
 * Undo either, so the key parser sees a PEM / OpenSSH block.
 */
function normalizeInlineKey(text: string): string {
  let key = text.trim();
  if (!key.includes('\n') && key.includes('\\n')) key = key.replaceAll('\\n', '\n');
  if (!key.startsWith('-----') && /^[A-Za-z0-9+/=\s]+$/.test(key)) {
    const decoded = Buffer.from(key.replace(/\s+/g, ''), 'base64').toString('utf8');
    if (decoded.trimStart().startsWith('-----BEGIN')) key = decoded.trim();
  }
  return key.endsWith('\n') ? key : key + '\n';
}

interface TokenContext {
  homeDir: string;
  host: string;
  port: number;
  user: string;
  originalHost: string;
  env: Readonly<Record<string, string | undefined>>;
}

/** Expands the ssh_config tokens and `${VAR}` references that make sense for file paths. */
function expandTokens(path: string, context: TokenContext): string {
  const tokens: Record<string, string | undefined> = {
    '%': '%',
    d: context.homeDir,
    h: context.host,
    p: String(context.port),
    r: context.user,
    n: context.originalHost,
    u: context.env['USER'] ?? context.env['LOGNAME'],
  };
  const withTokens = path.replace(/%(.)/g, (whole, token: string) => tokens[token] ?? whole);
  return withTokens.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name: string) => context.env[name] ?? whole);
}

/** A value from the ssh config and the section that set it, for messages. */
interface ConfigValue {
  value: string;
  section: string;
}

interface SshConfigValues {
  hostName?: ConfigValue;
  port?: ConfigValue;
  user?: ConfigValue;
  identityFiles: ConfigValue[];
  userKnownHostsFile?: ConfigValue;
  notes: string[];
}

function emptyConfigValues(): SshConfigValues {
  return { identityFiles: [], notes: [] };
}

/**
 * Evaluates ~/.ssh/config for one host: parsed with the `ssh-config` package, evaluated here rather than with its
 * `compute()`, because `compute()` reads the local account (os.userInfo), may run `nslookup` (CanonicalizeHostName)
 * and shell commands (`Match exec`), and its glob treats `?` as optional. As in OpenSSH, the first value obtained
 * for a setting wins; IdentityFile accumulates. `Match` blocks are applied only for `all`, `host` and `originalhost`
 * criteria; others (exec, user, localuser, ...) are skipped with a note. `Include` is not followed (noted).
 */
function evaluateSshConfig(text: string, originalHost: string): SshConfigValues {
  const values = emptyConfigValues();
  const lines = SSHConfig.parse(text);
  const apply = (line: Line, section: string) => {
    if (!('param' in line) || line.type !== SSHConfig.DIRECTIVE) return;
    const param = line.param.toLowerCase();
    const words = directiveWords(line.value);
    const first = words[0];
    if (first === undefined) return;
    const value = { value: first, section };
    switch (param) {
      case 'hostname':
        values.hostName ??= value;
        break;
      case 'port':
        values.port ??= value;
        break;
      case 'user':
        values.user ??= value;
        break;
      case 'identityfile':
        values.identityFiles.push(value);
        break;
      case 'userknownhostsfile':
        values.userKnownHostsFile ??= value;
        break;
      case 'include':
        values.notes.push(`Include ${words.join(' ')} was not followed`);
        break;
      case 'proxyjump':
      case 'proxycommand':
        values.notes.push(`${line.param} (${section}) is not supported: the runbooks connect directly`);
        break;
    }
  };

  for (const line of lines) {
    if (!('param' in line) || line.type !== SSHConfig.DIRECTIVE) continue;
    const param = line.param.toLowerCase();
    if ('config' in line && param === 'host') {
      const patterns = directiveWords(line.value);
      // Each Host word is one pattern; a negated one vetoes the block, as in OpenSSH.
      if (!matchPatternList(patterns, originalHost)) continue;
      const section = `Host ${patterns.join(' ')}`;
      for (const inner of line.config) apply(inner, section);
    } else if ('config' in line && param === 'match') {
      const section = `Match ${directiveWords(line.value).join(' ')}`;
      const verdict = matchBlockApplies(line, originalHost, values.hostName?.value ?? originalHost);
      if (verdict === 'unsupported') {
        values.notes.push(`${section} was skipped (only all, host and originalhost criteria are evaluated)`);
        continue;
      }
      if (verdict) for (const inner of line.config) apply(inner, section);
    } else {
      apply(line, 'the top of the file');
    }
  }
  return values;
}

function matchBlockApplies(line: Line, originalHost: string, hostName: string): boolean | 'unsupported' {
  if (!('criteria' in line)) return 'unsupported';
  for (const [key, criterion] of Object.entries(line.criteria)) {
    const values = Array.isArray(criterion) ? criterion.map((part) => part.val) : [criterion ?? ''];
    const patterns = values.flatMap((value) => value.split(',')).filter((value) => value !== '');
    switch (key.toLowerCase()) {
      case 'all':
        break;
      case 'host':
        if (!matchPatternList(patterns, hostName)) return false;
        break;
      case 'originalhost':
        if (!matchPatternList(patterns, originalHost)) return false;
        break;
      default:
        return 'unsupported';
    }
  }
  return true;
}

function directiveWords(value: string | { val: string }[]): string[] {
  if (Array.isArray(value)) return value.map((part) => part.val).filter((word) => word !== '');
  return value === '' ? [] : [value];
}

function nonEmpty(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

function fail(message: string, fix: string): { ok: false; failure: SshFailure } {
  return { ok: false, failure: { kind: 'config', message, fix } };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
