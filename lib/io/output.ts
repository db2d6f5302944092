/**
 * The output port: every line a runbook prints goes through here, made inert (terminal controls in untrusted text
 * shown, never sent: lib/io/inert.ts), redacted and (on a terminal) coloured. Only the port's own colours are escapes.
 */
import type { CheckResult, CheckStatus } from '../core/check.ts';
import type { Finding } from '../core/finding.ts';
import { inert } from './inert.ts';
import { makeRedactor } from './redact.ts';

export interface Output {
  /** Registers a secret: from now on it (and its encodings) never reaches the stream. */
  addSecret(value: string | undefined): void;
  /** Scrubs every registered secret from a text (for files the runbook writes, too). */
  redact(text: string): string;
  line(text?: string): void;
  heading(text: string): void;
  check(result: CheckResult): void;
  finding(finding: Finding, index: number): void;
  /** A transient "working on it" indicator on a terminal; returns the function that clears it. */
  progress(title: string): () => void;
  readonly verbose: boolean;
  readonly color: boolean;
}

export interface OutputOptions {
  write: (text: string) => void;
  /** Colours and the progress indicator: only on a terminal, never with NO_COLOR. */
  color: boolean;
  spinner: boolean;
  verbose: boolean;
  /** The terminal's width: long lines wrap at spaces, with a hanging indent. Unset (a pipe, a file): never wrapped. */
  columns?: number;
  /**
   * How a line is wrapped to `columns`: lib/io/wrap.ts's wrapLine, which the caller loads for a terminal only (its
   * text-width tables take tens of milliseconds to build). Without it lines are not wrapped.
   */
  wrap?: (text: string, columns: number, hang: number) => string;
}

/** The hanging indent of a line: its leading spaces plus a bullet, a number or a short label ("fix: "). */
function hangOf(plain: string): number {
  const m = /^( *)(?:[·→•-] |\d{1,3}\. |[A-Za-z][\w -]{0,18}: )?/.exec(plain);
  return m ? m[0].length : 0;
}

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, dim: 2, bold: 1 } as const;
type Style = keyof typeof CODES;

const MARK: Record<CheckStatus, { glyph: string; style: Style }> = {
  ok: { glyph: '✔', style: 'green' },
  warning: { glyph: '!', style: 'yellow' },
  failed: { glyph: '✖', style: 'red' },
  skipped: { glyph: '-', style: 'dim' },
};

/** Decides colour from the stream and the environment, as `NO_COLOR` (no-color.org) asks. */
export function wantsColor(isTTY: boolean | undefined, env: Record<string, string | undefined>): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  return Boolean(isTTY) && env.TERM !== 'dumb';
}

export function createOutput(options: OutputOptions): Output {
  const secrets: string[] = [];
  let redact = makeRedactor([]);
  const paint = (style: Style, text: string) => (options.color ? `\x1b[${CODES[style]}m${text}\x1b[0m` : text);
  const write = (text: string) => options.write(redact(text));
  /** One line, wrapped: `plain` is the line without colours (its hanging indent is read from it), or the indent. */
  const { columns, wrap } = options;
  const emit = (text: string, plain: string | number) =>
    write(`${columns && wrap ? wrap(text, columns, typeof plain === 'number' ? plain : hangOf(plain)) : text}\n`);
  let transient = false;

  const clearTransient = () => {
    if (transient) {
      options.write('\r\x1b[2K');
      transient = false;
    }
  };

  return {
    verbose: options.verbose,
    color: options.color,
    addSecret(value) {
      if (!value || value.length < 8 || secrets.includes(value)) return;
      secrets.push(value);
      redact = makeRedactor(secrets);
    },
    redact: (text) => redact(text),
    line(text = '') {
      clearTransient();
      const safe = inert(text);
      emit(safe, safe);
    },
    heading(text) {
      clearTransient();
      write('\n');
      emit(paint('bold', inert(text)), 0);
    },
    check(r) {
      clearTransient();
      const m = MARK[r.status];
      const time =
        options.verbose && r.durationMs !== undefined ? paint('dim', ` (${Math.round(r.durationMs)} ms)`) : '';
      emit(`${paint(m.style, m.glyph)} ${inert(r.title)}: ${inert(r.summary)}${time}`, 2);
      const details = r.status === 'ok' && !options.verbose ? [] : (r.details ?? []);
      for (const d of details) emit(`    ${paint('dim', inert(d))}`, `    ${inert(d)}`);
      if (r.fix && (r.status === 'warning' || r.status === 'failed'))
        emit(`    ${paint('cyan', '→')} ${inert(r.fix)}`, '    → ');
    },
    finding(f, index) {
      clearTransient();
      const sev =
        f.severity === 'critical'
          ? paint('red', 'CRITICAL')
          : f.severity === 'warning'
            ? paint('yellow', 'WARNING')
            : paint('blue', 'info');
      const n = `${index + 1}. `;
      emit(`${n}${sev} ${paint('bold', inert(f.title))} ${paint('dim', `[${inert(f.id)}]`)}`, n);
      for (const e of f.evidence) emit(`   ${paint('dim', '·')} ${inert(e)}`, '   · ');
      emit(`   cause: ${inert(f.cause)}`, '   cause: ');
      emit(`   ${paint('cyan', 'fix:')} ${inert(f.fix)}`, '   fix: ');
    },
    progress(title) {
      if (!options.spinner) return () => {};
      clearTransient();
      // One row only: clearing it (\r, erase line) cannot reach a row the terminal folded it onto.
      const text = `… ${inert(title)}`;
      const max = options.columns ? options.columns - 1 : text.length;
      write(paint('dim', text.length > max ? `${text.slice(0, max - 1)}…` : text));
      transient = true;
      return clearTransient;
    },
  };
}
