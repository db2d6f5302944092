/** The prompt port. Interactive runs ask through `prompts`; non-interactive runs never ask (and never hang). */
import { type Readable, Writable } from 'node:stream';
import type prompts from 'prompts';
import { AbortedError, RunbookError } from '../core/exit-codes.ts';
import { inert } from './inert.ts';

export interface Choice<T extends string> {
  title: string;
  value: T;
  description?: string;
}

export interface Prompter {
  readonly interactive: boolean;
  /** Yes/no; the default is No unless `initial` says otherwise. */
  confirm(name: string, message: string, initial?: boolean): Promise<boolean>;
  text(name: string, message: string, validate?: (value: string) => true | string): Promise<string>;
  select<T extends string>(name: string, message: string, choices: Array<Choice<T>>, initial?: T): Promise<T>;
}

/** Decides whether a run may ask: a terminal on both ends, no `--ci`, no `CI` in the environment. */
export function isInteractive(opts: {
  ci: boolean;
  env: Record<string, string | undefined>;
  stdinIsTTY: boolean | undefined;
  stdoutIsTTY: boolean | undefined;
}): boolean {
  const ciEnv = opts.env.CI !== undefined && opts.env.CI !== '' && opts.env.CI !== 'false' && opts.env.CI !== '0';
  return !opts.ci && !ciEnv && Boolean(opts.stdinIsTTY) && Boolean(opts.stdoutIsTTY);
}

/** For runs without a terminal: any question is a bug in the flow, reported as exit 2, never a hang. */
export function nonInteractivePrompter(): Prompter {
  const refuse = (name: string): never => {
    throw new RunbookError(
      `this run is non-interactive and would have to ask "${name}"`,
      'pass the answer as a flag (see --help), or run in a terminal without --ci and CI unset',
    );
  };
  return {
    interactive: false,
    confirm: async (name) => refuse(name),
    text: async (name) => refuse(name),
    select: async (name) => refuse(name),
  };
}

const SGR = /\x1b\[[0-9;]*m/g;

/** The stream as prompts sees it, minus colour codes (its cursor moves stay); its width and TTY-ness are the real one's. */
function withoutColour(out: Writable): Writable {
  const plain = new Writable({
    write(chunk, _encoding, done) {
      out.write(String(chunk).replace(SGR, ''), done);
    },
  });
  for (const key of ['columns', 'rows', 'isTTY'] as const)
    Object.defineProperty(plain, key, { get: () => (out as unknown as Record<string, unknown>)[key] });
  return plain;
}

/**
 * Terminal prompts. Ctrl-C (or Esc) at any prompt aborts the run with exit 3. `clean` is applied to every text the
 * prompt shows (the output port's inert + redact): a question can name a job type or a host. `color` is the output's
 * decision (NO_COLOR, a dumb terminal): prompts colours through kleur, which reads no NO_COLOR and fixes some colours
 * when it loads, so without colour its output passes through a stream that drops colour codes.
 */
export function terminalPrompter(
  stdin: Readable,
  stdout: Writable,
  clean: (text: string) => string = inert,
  color = true,
): Prompter {
  const shown = color ? stdout : withoutColour(stdout);
  const ask = async <T>(question: prompts.PromptObject): Promise<T> => {
    let cancelled = false;
    // Loaded at the first question: a run that never asks (--ci, a pipe) never loads it.
    const { default: prompt } = await import('prompts');
    const answers = await prompt(
      { ...question, stdin, stdout: shown },
      {
        onCancel: () => {
          cancelled = true;
          return false;
        },
      },
    );
    if (cancelled || !((question.name as string) in answers)) throw new AbortedError();
    return answers[question.name as string] as T;
  };
  return {
    interactive: true,
    confirm: (name, message, initial = false) =>
      ask<boolean>({ type: 'confirm', name, message: clean(message), initial }),
    text: (name, message, validate) =>
      ask<string>({
        type: 'text',
        name,
        message: clean(message),
        validate: validate && ((v: string) => (typeof validate(v) === 'string' ? clean(validate(v) as string) : true)),
      }),
    select: <T extends string>(name: string, message: string, choices: Array<Choice<T>>, initial?: T) =>
      ask<T>({
        type: 'select',
        name,
        message: clean(message),
        choices: choices.map((c) => ({
          ...c,
          title: clean(c.title),
          ...(c.description ? { description: clean(c.description) } : {}),
        })),
        initial: initial
          ? Math.max(
              0,
              choices.findIndex((c) => c.value === initial),
            )
          : 0,
      }),
  };
}
