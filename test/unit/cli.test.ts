import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AbortedError, EXIT, type ExitCode, RunbookError } from '../../lib/core/exit-codes.ts';
import { parseFlags, runMain, scriptArgs, timeoutMsFrom } from '../../lib/io/cli.ts';
import { makeRedactor, REDACTED } from '../../lib/io/redact.ts';
import { opaqueKey } from '../helpers/fake-ports.ts';

const SCRIPT = path.resolve('runbooks/debug-stuck-jobs.mts');
const SCRIPT_URL = pathToFileURL(SCRIPT).href;

describe('scriptArgs', () => {
  const cases: [name: string, argv: string[], expected: string[]][] = [
    ['node runbook.mts a b', ['/usr/bin/node', SCRIPT, '--ci', '--json', '-'], ['--ci', '--json', '-']],
    [
      'npx zx runbook.mts a b (zx CLI first, script path relative)',
      ['/usr/bin/node', '/repo/node_modules/zx/build/cli.js', 'runbooks/debug-stuck-jobs.mts', '--ci', '--verbose'],
      ['--ci', '--verbose'],
    ],
    [
      'zx-cli with an absolute script path',
      ['/usr/bin/node', '/usr/lib/node_modules/zx/build/cli.js', SCRIPT, '--timeout', '5'],
      ['--timeout', '5'],
    ],
    ['node runbook.mts with no arguments', ['/usr/bin/node', SCRIPT], []],
    ['an argv that never names the script', ['/usr/bin/node', '/elsewhere/other.mts', '--ci'], ['--ci']],
  ];
  it.each(cases)('returns the runbook arguments for %s', (_name, argv, expected) => {
    expect(scriptArgs(argv, SCRIPT_URL)).toEqual(expected);
  });
});

describe('parseFlags', () => {
  const OWN = { 'queued-minutes': { type: 'string' }, 'job-type-rule': { type: 'string', multiple: true } } as const;

  it('parses the common flags and the runbook own ones', () => {
    const f = parseFlags(
      [
        '--ci',
        '--json',
        '-',
        '--queued-minutes',
        '30',
        '--job-type-rule',
        'a:queued=1',
        '--job-type-rule',
        'b:queued=2',
      ],
      OWN,
    );
    expect(f.ci).toBe(true);
    expect(f.json).toBe('-');
    expect(f.verbose).toBe(false);
    expect(f['queued-minutes']).toBe('30');
    expect(f['job-type-rule']).toEqual(['a:queued=1', 'b:queued=2']);
  });

  const usage: [name: string, argv: string[], message: RegExp][] = [
    ['an unknown flag', ['--force'], /^usage: Unknown option '--force'$/],
    ['a misspelled flag', ['--queued-minute', '3'], /^usage: Unknown option '--queued-minute'$/],
    ['a missing value', ['--json'], /^usage: Option '--json <value>' argument missing$/],
    ['a positional argument', ['requeue'], /^usage: Unexpected argument 'requeue'/],
    ['a value given to a boolean', ['--ci=yes'], /^usage: Option '--ci' does not take an argument$/],
  ];
  it.each(usage)('turns %s into a one-line usage RunbookError (exit 2)', (_name, argv, message) => {
    let error: unknown;
    try {
      parseFlags(argv, OWN);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RunbookError);
    const e = error as RunbookError;
    expect(e.code).toBe(EXIT.couldNotRun);
    expect(e.message).toMatch(message);
    expect(e.message).not.toContain('\n');
    expect(e.fix).toMatch(/^(see --help for the options|did you mean --[\w-]+\? \(see --help\))$/);
  });

  it.each([
    ['--verbos', 'verbose'],
    ['--queued-minute', 'queued-minutes'],
    ['--jsn', 'json'],
  ])('suggests the option a typo was meant to be: %s', (typo, meant) => {
    let error: RunbookError | undefined;
    try {
      parseFlags([typo], OWN);
    } catch (e) {
      error = e as RunbookError;
    }
    expect(error?.fix).toBe(`did you mean --${meant}? (see --help)`);
  });

  it('suggests nothing for a flag that is nothing like one', () => {
    expect(() => parseFlags(['--frobnicate'], OWN)).toThrow(RunbookError);
    try {
      parseFlags(['--frobnicate'], OWN);
    } catch (e) {
      expect((e as RunbookError).fix).toBe('see --help for the options');
    }
  });
});

describe('timeoutMsFrom', () => {
  const good: [flag: string | undefined, ms: number][] = [
    [undefined, 10_000],
    ['10', 10_000],
    ['0.5', 500],
    ['600', 600_000],
    ['2.25', 2_250],
  ];
  it.each(good)('reads --timeout %s as %i ms', (flag, ms) => {
    expect(timeoutMsFrom(flag)).toBe(ms);
  });

  const bad = ['0', '0.0', '600.5', '601', '10000', '-1', '1e3', 'ten', '', ' 5', '5s'];
  it.each(bad)('rejects --timeout "%s" with a RunbookError', (flag) => {
    expect(() => timeoutMsFrom(flag)).toThrow(RunbookError);
    expect(() => timeoutMsFrom(flag)).toThrow(/^--timeout must be seconds between 0 and 600/);
  });
});

describe('runMain', () => {
  function io(argv: string[] = [], secrets: string[] = []) {
    const err: string[] = [];
    const exits: number[] = [];
    let redactorAskedAfterMain = false;
    let mainDone = false;
    return {
      err,
      exits,
      markDone: () => {
        mainDone = true;
      },
      redactorAskedAfterMain: () => redactorAskedAfterMain,
      io: {
        argv,
        stderr: (t: string) => {
          err.push(t);
        },
        redact: () => {
          redactorAskedAfterMain = mainDone;
          return makeRedactor(secrets);
        },
        exit: (code: number) => {
          exits.push(code);
        },
      },
    };
  }

  it('exits with the code main returns and prints nothing', async () => {
    const t = io();
    await runMain(async () => EXIT.findings, t.io);
    expect(t.exits).toEqual([1]);
    expect(t.err).toEqual([]);
  });

  it('prints a RunbookError as one line and its fix, and exits with its code', async () => {
    const t = io();
    await runMain(async () => {
      throw new RunbookError('no configuration', 'copy .env.example to .env');
    }, t.io);
    expect(t.err.join('')).toBe('error: no configuration\n  fix: copy .env.example to .env\n');
    expect(t.exits).toEqual([2]);
  });

  it('on a terminal wraps the error and its fix under their labels, a secret redacted before the wrap', async () => {
    const secret = opaqueKey('secret');
    const t = io([], [secret]);
    const { wrapLine } = await import('../../lib/io/wrap.ts');
    await runMain(
      async () => {
        throw new RunbookError(
          `could not read the jobs: the gateway in front of Supabase (Cloudflare) answered 522 with ${secret}`,
          'check status.supabase.com and the project health in the dashboard, then run this again',
        );
      },
      { ...t.io, wrap: async () => (text: string, hang: number) => wrapLine(text, 60, hang) },
    );
    const lines = t.err.join('').trimEnd().split('\n');
    expect(lines.every((l) => l.length <= 60)).toBe(true);
    expect(lines[0]).toMatch(/^error: could not read the jobs:/);
    expect(lines[1]).toMatch(/^ {7}\S/);
    expect(lines.find((l) => l.startsWith('  fix: '))).toBeDefined();
    expect(t.err.join('')).not.toContain(secret.slice(10));
  });

  it('exits 3 when the operator aborted', async () => {
    const t = io();
    await runMain(async () => {
      throw new AbortedError();
    }, t.io);
    expect(t.exits).toEqual([EXIT.aborted]);
    expect(t.err.join('')).toMatch(
      /^stopped: at your request \(Ctrl-C or Esc at a question\)\n {2}next: run the runbook again/,
    );
  });

  it('shows the cause of a RunbookError only with --verbose', async () => {
    const fail = async (): Promise<ExitCode> => {
      throw new RunbookError('cannot read x', 'check it', EXIT.couldNotRun, { cause: new Error('EACCES deep cause') });
    };
    const quiet = io();
    await runMain(fail, quiet.io);
    expect(quiet.err.join('')).not.toContain('EACCES deep cause');
    const verbose = io(['--verbose']);
    await runMain(fail, verbose.io);
    expect(verbose.err.join('')).toContain('EACCES deep cause');
  });

  it('reports an unexpected error in one line without a stack, and exits 2', async () => {
    const t = io();
    await runMain(async () => {
      throw new TypeError("Cannot read properties of undefined (reading 'x')");
    }, t.io);
    const text = t.err.join('');
    expect(text).toBe(
      "error: unexpected failure: Cannot read properties of undefined (reading 'x')\n  fix: run again with --verbose and report it\n",
    );
    expect(text).not.toMatch(/\bat .*\(.*:\d+:\d+\)/);
    expect(t.exits).toEqual([2]);
  });

  it('adds the stack of an unexpected error with --verbose', async () => {
    const t = io(['--ci', '--verbose']);
    await runMain(async () => {
      throw new TypeError('boom');
    }, t.io);
    expect(t.err.join('')).toMatch(/TypeError: boom\n\s+at /);
    expect(t.exits).toEqual([2]);
  });

  it('copes with a thrown value that is not an Error', async () => {
    const t = io();
    await runMain(async () => {
      throw 'plain string';
    }, t.io);
    expect(t.err.join('')).toContain('error: unexpected failure: plain string');
    expect(t.exits).toEqual([2]);
  });

  it('redacts secrets registered while main ran, in the message, the fix and the stack', async () => {
    const secret = opaqueKey('secret');
    const t = io(['--verbose'], [secret]);
    await runMain(async () => {
      t.markDone();
      throw new Error(`request with ${secret} failed`);
    }, t.io);
    const text = t.err.join('');
    expect(text).not.toContain(secret);
    expect(text).toContain(`request with ${REDACTED} failed`);
    expect(t.redactorAskedAfterMain()).toBe(true);

    const r = io([], [secret]);
    await runMain(async () => {
      throw new RunbookError(`key ${secret} rejected`, `replace ${secret}`);
    }, r.io);
    expect(r.err.join('')).toBe(`error: key ${REDACTED} rejected\n  fix: replace ${REDACTED}\n`);
  });
});
