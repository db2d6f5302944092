/**
 * ~/.ssh/config, read for one host without running anything: the values the runbooks use (HostName, Port, User,
 * IdentityFile, UserKnownHostsFile) and the ssh_config tokens in file paths.
 */
import SSHConfig, { type Line } from 'ssh-config';
import { matchPatternList } from './known-hosts.ts';

export interface TokenContext {
  homeDir: string;
  host: string;
  port: number;
  user: string;
  originalHost: string;
  env: Readonly<Record<string, string | undefined>>;
}

/** Expands the ssh_config tokens and `${VAR}` references that make sense for file paths. */
export function expandTokens(path: string, context: TokenContext): string {
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
export interface ConfigValue {
  value: string;
  section: string;
}

export interface SshConfigValues {
  hostName?: ConfigValue;
  port?: ConfigValue;
  user?: ConfigValue;
  identityFiles: ConfigValue[];
  userKnownHostsFile?: ConfigValue;
  notes: string[];
}

export function emptyConfigValues(): SshConfigValues {
  return { identityFiles: [], notes: [] };
}

/**
 * Evaluates ~/.ssh/config for one host: parsed with the `ssh-config` package, evaluated here rather than with its
 * `compute()`, because `compute()` reads the local account (os.userInfo), may run `nslookup` (CanonicalizeHostName)
 * and shell commands (`Match exec`), and its glob treats `?` as optional. As in OpenSSH, the first value obtained
 * for a setting wins; IdentityFile accumulates. `Match` blocks are applied only for `all`, `host` and `originalhost`
 * criteria; others (exec, user, localuser, ...) are skipped with a note. `Include` is not followed (noted).
 */
export function evaluateSshConfig(text: string, originalHost: string): SshConfigValues {
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
