import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AbortedError, EXIT, RunbookError } from '../../lib/core/exit-codes.ts';
import { isInteractive, nonInteractivePrompter, type Prompter, terminalPrompter } from '../../lib/io/prompt.ts';
import { scriptedPrompter } from '../helpers/fake-ports.ts';

describe('isInteractive', () => {
  const TTY = { stdinIsTTY: true, stdoutIsTTY: true };
  const cases: [name: string, opts: Parameters<typeof isInteractive>[0], expected: boolean][] = [
    ['a terminal on both ends', { ci: false, env: {}, ...TTY }, true],
    ['--ci', { ci: true, env: {}, ...TTY }, false],
    ['CI=true', { ci: false, env: { CI: 'true' }, ...TTY }, false],
    ['CI=1', { ci: false, env: { CI: '1' }, ...TTY }, false],
    ['CI set to anything else', { ci: false, env: { CI: 'github' }, ...TTY }, false],
    ['CI=false', { ci: false, env: { CI: 'false' }, ...TTY }, true],
    ['CI=0', { ci: false, env: { CI: '0' }, ...TTY }, true],
    ['an empty CI', { ci: false, env: { CI: '' }, ...TTY }, true],
    ['stdin not a terminal (piped)', { ci: false, env: {}, stdinIsTTY: false, stdoutIsTTY: true }, false],
    ['stdout not a terminal (redirected)', { ci: false, env: {}, stdinIsTTY: true, stdoutIsTTY: false }, false],
    ['unknown streams', { ci: false, env: {}, stdinIsTTY: undefined, stdoutIsTTY: undefined }, false],
  ];
  it.each(cases)('with %s → %s', (_name, opts, expected) => {
    expect(isInteractive(opts)).toBe(expected);
  });
});

describe('nonInteractivePrompter', () => {
  const asks: [kind: string, ask: (p: Prompter) => Promise<unknown>][] = [
    ['confirm', (p) => p.confirm('apply-requeue', 'Requeue 3 jobs?')],
    ['text', (p) => p.text('reason', 'Why?')],
    ['select', (p) => p.select('which', 'Which?', [{ title: 'A', value: 'a' }], 'a')],
  ];
  it.each(asks)('refuses a %s at once with a RunbookError (exit 2) naming the question', async (_kind, ask) => {
    const p = nonInteractivePrompter();
    expect(p.interactive).toBe(false);
    const error = await ask(p).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RunbookError);
    expect((error as RunbookError).code).toBe(EXIT.couldNotRun);
    expect((error as RunbookError).message).toMatch(/^this run is non-interactive and would have to ask "/);
    expect((error as RunbookError).fix).toMatch(/pass the answer as a flag/);
  });

  it('settles without waiting for any input', async () => {
    // Nothing feeds it; if it waited for a terminal this would never settle and the test would time out.
    await expect(nonInteractivePrompter().confirm('x', 'x?')).rejects.toThrow(RunbookError);
  });
});

describe('terminalPrompter', () => {
  function terminal(color = true) {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const shown: string[] = [];
    stdout.on('data', (d: Buffer) => shown.push(d.toString()));
    return { stdin, stdout, shown, prompter: terminalPrompter(stdin, stdout, undefined, color) };
  }

  it('asks without colour when the output has none (NO_COLOR), and with it otherwise', async () => {
    for (const color of [false, true]) {
      const t = terminal(color);
      const answer = t.prompter.confirm('apply', 'Requeue?');
      t.stdin.write('\r');
      await answer;
      await new Promise((r) => setImmediate(r));
      const sgr = t.shown.join('').match(/\x1b\[\d+(?:;\d+)*m/g) ?? [];
      if (color) expect(sgr.length).toBeGreaterThan(0);
      else expect(sgr).toEqual([]);
      expect(t.shown.join('')).toContain('Requeue?');
    }
  });

  it('answers No to a confirm when the operator just presses Enter', async () => {
    const t = terminal();
    const answer = t.prompter.confirm('apply', 'Requeue?');
    t.stdin.write('\r');
    await expect(answer).resolves.toBe(false);
  });

  it('answers Yes when the operator types y', async () => {
    const t = terminal();
    const answer = t.prompter.confirm('apply', 'Requeue?');
    t.stdin.write('y');
    await expect(answer).resolves.toBe(true);
  });

  it('aborts the run (exit 3) on Ctrl-C', async () => {
    const t = terminal();
    const answer = t.prompter.confirm('apply', 'Requeue?', true);
    t.stdin.write('\x03');
    const error = await answer.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AbortedError);
    expect((error as AbortedError).code).toBe(EXIT.aborted);
  });
});

describe('scriptedPrompter (test helper)', () => {
  it('answers scripted questions by name, in order', async () => {
    const p = scriptedPrompter({ apply: [true, false], reason: 'fixed in v2' });
    expect(await p.confirm('apply', '?')).toBe(true);
    expect(await p.text('reason', '?')).toBe('fixed in v2');
    expect(await p.confirm('apply', '?')).toBe(false);
    expect(p.asked).toEqual(['apply', 'reason', 'apply']);
    expect(p.unasked()).toEqual([]);
  });

  it('fails on any question the script does not hold', async () => {
    const p = scriptedPrompter({ apply: true });
    await expect(p.confirm('delete-everything', 'Sure?')).rejects.toThrow(/unscripted prompt "delete-everything"/);
    await p.confirm('apply', '?');
    await expect(p.confirm('apply', '?')).rejects.toThrow(/unscripted prompt "apply"/);
  });

  it('fails when a scripted answer does not fit the question', async () => {
    const p = scriptedPrompter({ apply: 'yes', which: 'c' });
    await expect(p.confirm('apply', '?')).rejects.toThrow(/is a confirm/);
    await expect(p.select('which', '?', [{ title: 'A', value: 'a' }])).rejects.toThrow(/not one of the choices/);
  });
});
