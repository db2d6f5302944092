/**
 * The real ports, built once by a runbook's entry point. Everything else receives them as arguments, so unit tests
 * build the same object from fakes (see test/helpers/fake-ports.ts).
 */
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  constants as fsConstants,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Clock, SshConnectResult, SshTarget, UnknownHostDecider } from '../core/ports.ts';
import { type CatalogDb, createCatalogDb } from './catalog-db.ts';
import { inert } from './inert.ts';
import type { JobsDb, JobsDbOptions } from './jobs-db.ts';
import type { KeptConnections } from './keep-alive.ts';
import { createOutput, type Output, wantsColor } from './output.ts';
import { isInteractive, nonInteractivePrompter, type Prompter, terminalPrompter } from './prompt.ts';
import { earlyDial } from './ssh/dial.ts';
import type { SparkSshSettings } from './ssh/target.ts';

export interface Files {
  /** The text, or undefined when the file does not exist. */
  read(file: string): string | undefined;
  write(file: string, text: string): void;
  /** Appends and flushes (audit lines must survive a kill right after). */
  append(file: string, text: string): void;
  /**
   * The file opened once for many appends, each written at once as by {@link append} (on disk before it returns),
   * without opening the file again for each: the audit file of a requeue takes a line per job. Optional: without it,
   * {@link append} serves each line.
   */
  openAppend?(file: string): Appender;
}

/** A file open for appending, until closed. */
export interface Appender {
  append(text: string): void;
  close(): void;
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
  /** `keepAliveMs`: the watch's client, whose connections outlive its refresh interval (close it when done). */
  openDb(url: string, key: string, options?: { keepAliveMs?: number }): JobsDb;
  /** The project's Postgres catalog over SUPABASE_DB_URL (optional; `pg` loads on the first read only). */
  openCatalog(dbUrl: string): CatalogDb;
  /**
   * Opens TCP to Spark now, for the next connectSpark to the same target: called as a plan starts, so the TCP
   * handshake overlaps loading the SSH library and parsing the key. Never throws; a failure shows at connectSpark.
   */
  preconnectSpark(target: SshTarget): void;
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
  // Reports hold evidence: written 0600 through a temporary file and a rename (a reader never sees half a
  // report, an existing 0644 file does not keep its mode), and never through a symlink planted at the path.
  write(file, text) {
    mkdirSync(path.dirname(file), { recursive: true });
    refuseSymlink(file);
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
    try {
      writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
      renameSync(tmp, file);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
  },
  // Appends (the audit file, GitHub's step summary) create the file 0600 and never follow a symlink.
  append(file, text) {
    const fd = openForAppend(file);
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
  },
  openAppend(file) {
    const fd = openForAppend(file);
    let open = true;
    return {
      append: (text) => void writeSync(fd, text),
      close: () => {
        if (open) closeSync(fd);
        open = false;
      },
    };
  },
};

function openForAppend(file: string): number {
  mkdirSync(path.dirname(file), { recursive: true });
  return openSync(
    file,
    fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_NOFOLLOW,
    0o600,
  );
}

function refuseSymlink(file: string): void {
  let isLink = false;
  try {
    isLink = lstatSync(file).isSymbolicLink();
  } catch {
    // no such file yet
  }
  if (isLink) throw new Error(`${file} is a symbolic link; not writing through it`);
}

/** Where git usually lives; the PATH npx builds starts with every ancestor folder's node_modules/.bin. */
const GIT_CANDIDATES = ['/usr/bin/git', '/usr/local/bin/git', '/opt/homebrew/bin/git', '/bin/git'];

function gitEmail(): string | undefined {
  const git = GIT_CANDIDATES.find((p) => existsSync(p));
  if (!git) return undefined;
  try {
    // A minimal environment: git needs to find its config, nothing else (no key from the runbook's config).
    const env: Record<string, string> = { PATH: '/usr/bin:/bin' };
    for (const k of ['HOME', 'XDG_CONFIG_HOME', 'GIT_CONFIG_GLOBAL', 'LANG'])
      if (process.env[k]) env[k] = process.env[k]!;
    const email = execFileSync(git, ['config', 'user.email'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 2_000,
      env,
    }).trim();
    return email || undefined;
  } catch {
    return undefined;
  }
}

/** The client, with the connections it keeps when `keepAliveMs` asks (the undici Agent then loads with it). */
async function openJobsDb(options: JobsDbOptions): Promise<{ db: JobsDb; kept?: KeptConnections }> {
  const { keepAliveMs } = options;
  const [m, kept] = await Promise.all([
    import('./jobs-db.ts'),
    keepAliveMs ? import('./keep-alive.ts').then((k) => k.keepConnections(keepAliveMs, options.fetch)) : undefined,
  ]);
  return { db: m.createJobsDb(kept ? { ...options, fetch: kept.fetch } : options), kept };
}

/**
 * The db port with supabase-js loaded at its first request, not when the port is made: the queue's first read
 * starts it, and a run that never reads (a config error) never loads it. `close` ends kept connections, if any.
 */
export function lazyJobsDb(options: JobsDbOptions): JobsDb {
  let opened: ReturnType<typeof openJobsDb> | undefined;
  const load = () => {
    opened ??= openJobsDb(options);
    return opened.then((o) => o.db);
  };
  // Every member but url is an async method: each waits for the client, then is the client's own.
  const call = <K extends Exclude<keyof JobsDb, 'url'>>(name: K): JobsDb[K] =>
    ((...args: unknown[]) => load().then((db) => (db[name] as (...a: unknown[]) => unknown)(...args))) as JobsDb[K];
  return {
    url: options.url,
    queueSnapshot: call('queueSnapshot'),
    queuedSummary: call('queuedSummary'),
    findJobs: call('findJobs'),
    watchReads: call('watchReads'),
    compareAndSet: call('compareAndSet'),
    rpc: call('rpc'),
    async close() {
      const kept = opened && (await opened.catch(() => undefined))?.kept;
      await kept?.close();
    },
  };
}

/** Builds the real ports for a runbook process. `jsonToStdout` moves human output to stderr. */
export async function realPorts(opts: {
  ci: boolean;
  verbose: boolean;
  jsonToStdout: boolean;
  timeoutMs: number;
}): Promise<Ports> {
  const human = opts.jsonToStdout ? process.stderr : process.stdout;
  const env = process.env;
  const interactive = isInteractive({
    ci: opts.ci,
    env,
    stdinIsTTY: process.stdin.isTTY,
    stdoutIsTTY: human.isTTY,
  });
  const color = wantsColor(human.isTTY, env);
  const columns = human.isTTY ? human.columns : undefined;
  const early = earlyDial();
  const out = createOutput({
    write: (t) => human.write(t),
    color,
    spinner: interactive && color,
    verbose: opts.verbose,
    columns,
    wrap: columns ? (await import('./wrap.ts')).wrapLine : undefined,
  });
  return {
    out,
    prompt: interactive
      ? terminalPrompter(process.stdin, human, (t) => out.redact(inert(t)), color)
      : nonInteractivePrompter(),
    clock: realClock,
    files: realFiles,
    env,
    cwd: process.cwd(),
    homeDir: os.homedir(),
    stdout: (t) => process.stdout.write(t),
    timeoutMs: opts.timeoutMs,
    openDb: (url, key, o) =>
      lazyJobsDb({
        url,
        key,
        timeoutMs: opts.timeoutMs,
        sleep: realClock.sleep,
        now: () => performance.now(),
        keepAliveMs: o?.keepAliveMs,
      }),
    openCatalog: (dbUrl) => createCatalogDb({ url: dbUrl, timeoutMs: opts.timeoutMs, now: () => performance.now() }),
    preconnectSpark(target) {
      early.open(target.host, target.port);
      // And the SSH library: loaded before the step's run needs it, ahead of supabase-js (the SSH path is the longer).
      import('./ssh/ssh2.ts').then((m) => m.loadSsh2()).catch(() => {}); // a failure to load shows at connectSpark, which loads it again
    },
    async connectSpark(settings, onUnknownHost) {
      const { host, port } = settings.target;
      try {
        // ssh2 is loaded here, not with the ports: --help and a run without SPARK_HOST never load it.
        const { connectSpark } = await import('./ssh/connect.ts');
        return await connectSpark({
          target: settings.target,
          auth: settings.auth,
          knownHostsText: realFiles.read(settings.knownHostsPath),
          knownHostsPath: settings.knownHostsPath,
          pinnedFingerprint: settings.pinnedFingerprint,
          onUnknownHost,
          readTextFile: (p) => readFile(p, 'utf8'),
          timeoutMs: opts.timeoutMs,
          keepaliveIntervalMs: 0,
          takeSocket: () => early.take(host, port),
        });
      } finally {
        early.release(); // an early socket the connect did not take (it failed before dialling)
      }
    },
    operator: (configured) => configured || gitEmail() || os.userInfo().username,
  };
}
