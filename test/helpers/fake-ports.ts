/**
 * Fakes for the ports in lib/io/context.ts, for unit tests: nothing here touches the network, the terminal or the disk.
 * Every fake that stands for a side effect the test did not ask for throws, so an unexpected call fails the test
 * loudly instead of passing quietly.
 */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Clock, SshConnectResult, SshTarget } from '../../lib/core/ports.ts';
import type { Files, Ports } from '../../lib/io/context.ts';
import type { JobsDb } from '../../lib/io/jobs-db.ts';
import { createOutput, type Output } from '../../lib/io/output.ts';
import type { Choice, Prompter } from '../../lib/io/prompt.ts';

/** One scripted answer per question name; a list answers the same question several times, in order. */
export type PromptScript = Record<string, unknown>;

export interface ScriptedPrompter extends Prompter {
  /** The question names asked so far, in order. */
  readonly asked: string[];
  /** Names scripted but never asked (a test can assert this is empty). */
  unasked(): string[];
}

/**
 * A prompter that answers from a script by question name and throws on any question the script does not hold
 * (np's mock-inquirer habit): a new prompt in a flow is a deliberate change to its test.
 */
export function scriptedPrompter(script: PromptScript, interactive = true): ScriptedPrompter {
  const queues = new Map<string, unknown[]>(
    Object.entries(script).map(([name, a]) => [name, Array.isArray(a) ? [...a] : [a]]),
  );
  const asked: string[] = [];
  const answer = (name: string, message: string): unknown => {
    asked.push(name);
    const queue = queues.get(name);
    if (!queue || queue.length === 0) {
      throw new Error(`unscripted prompt "${name}": ${message}`);
    }
    return queue.shift();
  };
  return {
    interactive,
    asked,
    unasked: () => [...queues.entries()].filter(([, q]) => q.length > 0).map(([n]) => n),
    confirm: async (name, message) => {
      const a = answer(name, message);
      if (typeof a !== 'boolean') throw new Error(`prompt "${name}" is a confirm; scripted ${JSON.stringify(a)}`);
      return a;
    },
    text: async (name, message, validate) => {
      const a = answer(name, message);
      if (typeof a !== 'string') throw new Error(`prompt "${name}" is a text; scripted ${JSON.stringify(a)}`);
      const v = validate?.(a);
      if (v !== undefined && v !== true) throw new Error(`prompt "${name}": scripted answer rejected: ${v}`);
      return a;
    },
    select: async <T extends string>(name: string, message: string, choices: Array<Choice<T>>) => {
      const a = answer(name, message);
      if (!choices.some((c) => c.value === a)) {
        throw new Error(`prompt "${name}": scripted ${JSON.stringify(a)} is not one of the choices`);
      }
      return a as T;
    },
  };
}

export interface RecordingOutput {
  out: Output;
  /** Everything written so far, as one string. */
  text(): string;
  /** Each write, in order. */
  readonly writes: string[];
}

/** The real createOutput over an in-memory buffer. No colour and no spinner unless asked. */
export function recordingOutput(opts: { color?: boolean; spinner?: boolean; verbose?: boolean } = {}): RecordingOutput {
  const writes: string[] = [];
  const out = createOutput({
    write: (t) => writes.push(t),
    color: opts.color ?? false,
    spinner: opts.spinner ?? false,
    verbose: opts.verbose ?? false,
  });
  return { out, writes, text: () => writes.join('') };
}

export interface FakeClock extends Clock {
  /** Every sleep requested, in ms; sleeping moves the clock forward instead of waiting. */
  readonly sleeps: number[];
  advance(ms: number): void;
}

export function fakeClock(start: Date | string = '2026-01-15T12:00:00Z'): FakeClock {
  let t = new Date(start).getTime();
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => new Date(t),
    sleep: async (ms) => {
      sleeps.push(ms);
      t += ms;
    },
    advance: (ms) => {
      t += ms;
    },
  };
}

export interface MemoryFiles extends Files {
  readonly store: Map<string, string>;
}

/** Files in a Map; `read` of an absent path is undefined, as the real port says. */
export function memoryFiles(initial: Record<string, string> = {}): MemoryFiles {
  const store = new Map(Object.entries(initial));
  return {
    store,
    read: (file) => store.get(file),
    write: (file, text) => {
      store.set(file, text);
    },
    append: (file, text) => {
      store.set(file, (store.get(file) ?? '') + text);
    },
  };
}

export interface FakePorts {
  ports: Ports;
  output: RecordingOutput;
  /** What went to the machine-output port (`--json -`). */
  stdout: string[];
  files: MemoryFiles;
  clock: FakeClock;
  /** The targets `preconnectSpark` was called with (a step's prepare), in order. */
  preconnected: SshTarget[];
}

export interface FakePortsOptions {
  prompt?: PromptScript;
  /** Defaults to a non-interactive prompter that throws on every question. */
  interactive?: boolean;
  files?: Record<string, string>;
  env?: Record<string, string | undefined>;
  cwd?: string;
  homeDir?: string;
  now?: Date | string;
  verbose?: boolean;
  color?: boolean;
  openDb?: (url: string, key: string) => JobsDb;
  openCatalog?: Ports['openCatalog'];
  connectSpark?: Ports['connectSpark'];
  /** Default: records the target in `preconnected` (no socket is opened). */
  preconnectSpark?: Ports['preconnectSpark'];
  operator?: string;
}

/**
 * A whole Ports object from fakes. `openDb`, `openCatalog` and `connectSpark` throw unless the test passes them: a unit test that
 * reaches the network by accident fails instead of hanging.
 */
export function fakePorts(o: FakePortsOptions = {}): FakePorts {
  const output = recordingOutput({ verbose: o.verbose, color: o.color });
  const files = memoryFiles(o.files);
  const clock = fakeClock(o.now);
  const stdout: string[] = [];
  const preconnected: SshTarget[] = [];
  const ports: Ports = {
    out: output.out,
    prompt: scriptedPrompter(o.prompt ?? {}, o.interactive ?? o.prompt !== undefined),
    clock,
    files,
    env: o.env ?? {},
    cwd: o.cwd ?? '/work/laptop',
    homeDir: o.homeDir ?? '/home/operator',
    stdout: (t) => {
      stdout.push(t);
    },
    openDb:
      o.openDb ??
      ((url) => {
        throw new Error(`unexpected openDb(${url}) in a unit test`);
      }),
    openCatalog:
      o.openCatalog ??
      (() => {
        throw new Error('unexpected openCatalog() in a unit test');
      }),
    preconnectSpark: o.preconnectSpark ?? ((target) => preconnected.push(target)),
    connectSpark:
      o.connectSpark ??
      (async (settings): Promise<SshConnectResult> => {
        throw new Error(`unexpected connectSpark(${settings.target.host}) in a unit test`);
      }),
    operator: (configured) => configured || o.operator || 'test-operator',
    timeoutMs: 10_000,
  };
  return { ports, output, stdout, files, clock, preconnected };
}

/**
 * Supabase-shaped keys made at run time, so no key-looking string is ever committed: an HS256 JWT signed with a
 * random secret (legacy anon/service_role keys), and opaque sb_secret_/sb_publishable_ keys with a random suffix.
 */
export async function signedJwt(claims: {
  role: string;
  ref?: string;
  iss?: string;
  /** Expiry; defaults to ten years from now. */
  exp?: Date;
}): Promise<string> {
  const exp = claims.exp ?? new Date(Date.now() + 10 * 365 * 86_400_000);
  const payload: Record<string, string> = { iss: claims.iss ?? 'supabase', role: claims.role };
  if (claims.ref) payload.ref = claims.ref;
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt(Math.floor(exp.getTime() / 1000) - 86_400)
    .setExpirationTime(Math.floor(exp.getTime() / 1000))
    .sign(randomBytes(32));
}

export function opaqueKey(kind: 'secret' | 'publishable'): string {
  // Letters and digits only, so the key never starts or ends with a character a tool might trim.
  const suffix = randomBytes(32).toString('hex').slice(0, 31);
  return ['sb', kind, suffix].join('_');
}
