/**
 * The real ports, built once by a runbook's entry point. Everything else receives them as arguments, so unit tests
 * build the same object from fakes (see test/helpers/fake-ports.ts).
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inert } from './inert.ts';
import { createJobsDb, type JobsDb } from './jobs-db.ts';
import { createOutput, type Output, wantsColor } from './output.ts';
import type { Clock, SshConnectResult, UnknownHostDecider } from './ports.ts';
import { isInteractive, nonInteractivePrompter, type Prompter, terminalPrompter } from './prompt.ts';
import { connectSpark } from './ssh/connect.ts';
import type { SparkSshSettings } from './ssh/target.ts';

export interface Files {
  /** The text, or undefined when the file does not exist. */
  read(file: string): string | undefined;
  write(file: string, text: string): void;
  /** Appends and flushes (audit lines must survive a kill right after). */
  append(file: string, text: string): void;
}

export interface Ports {
  out: Output;
  prompt: Prompter;
  clock: Clock;
  files: Files;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  homeDir: string;
  /** Writes machine output (`--json -`). */
  stdout: (text: string) => void;
  openDb(url: string, key: string): JobsDb;
  connectSpark(settings: SparkSshSettings, onUnknownHost?: UnknownHostDecider): Promise<SshConnectResult>;
  /** Who runs this: RUNBOOK_OPERATOR, else git's user.email, else the login name. */
  operator(configured?: string): string;
  timeoutMs: number;
}

export const realClock: Clock = {
  now: () => new Date(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

export const realFiles: Files = {
  read(file) {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  },
  write(file, text) {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text, { mode: 0o600 });
  },
  append(file, text) {
    mkdirSync(path.dirname(file), { recursive: true });
    appendFileSync(file, text, { mode: 0o600 });
  },
};

function gitEmail(): string | undefined {
  try {
    const email = execFileSync('git', ['config', 'user.email'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 2_000,
    }).trim();
    return email || undefined;
  } catch {
    return undefined;
  }
}

/** Builds the real ports for a runbook process. `jsonToStdout` moves human output to stderr. */
export function realPorts(opts: { ci: boolean; verbose: boolean; jsonToStdout: boolean; timeoutMs: number }): Ports {
  const human = opts.jsonToStdout ? process.stderr : process.stdout;
  const env = process.env;
  const interactive = isInteractive({
    ci: opts.ci,
    env,
    stdinIsTTY: process.stdin.isTTY,
    stdoutIsTTY: human.isTTY,
  });
  const color = wantsColor(human.isTTY, env);
  const out = createOutput({
    write: (t) => human.write(t),
    color,
    spinner: interactive && color,
    verbose: opts.verbose,
  });
  return {
    out,
    prompt: interactive
      ? terminalPrompter(process.stdin, human, (t) => out.redact(inert(t)))
      : nonInteractivePrompter(),
    clock: realClock,
    files: realFiles,
    env,
    cwd: process.cwd(),
    homeDir: os.homedir(),
    stdout: (t) => process.stdout.write(t),
    timeoutMs: opts.timeoutMs,
    openDb: (url, key) =>
      createJobsDb({ url, key, timeoutMs: opts.timeoutMs, sleep: realClock.sleep, now: () => performance.now() }),
    connectSpark: (settings, onUnknownHost) =>
      connectSpark({
        target: settings.target,
        auth: settings.auth,
        knownHostsText: realFiles.read(settings.knownHostsPath),
        knownHostsPath: settings.knownHostsPath,
        pinnedFingerprint: settings.pinnedFingerprint,
        onUnknownHost,
        readTextFile: (p) => readFile(p, 'utf8'),
        timeoutMs: opts.timeoutMs,
        keepaliveIntervalMs: 0,
      }),
    operator: (configured) => configured || gitEmail() || os.userInfo().username,
  };
}
