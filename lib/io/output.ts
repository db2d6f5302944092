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
      write(`${inert(text)}\n`);
    },
    heading(text) {
      clearTransient();
      write(`\n${paint('bold', inert(text))}\n`);
    },
    check(r) {
      clearTransient();
      const m = MARK[r.status];
      const time =
        options.verbose && r.durationMs !== undefined ? paint('dim', ` (${Math.round(r.durationMs)} ms)`) : '';
      write(`${paint(m.style, m.glyph)} ${inert(r.title)}: ${inert(r.summary)}${time}\n`);
      const details = r.status === 'ok' && !options.verbose ? [] : (r.details ?? []);
      for (const d of details) write(`    ${paint('dim', inert(d))}\n`);
      if (r.fix && (r.status === 'warning' || r.status === 'failed'))
        write(`    ${paint('cyan', '→')} ${inert(r.fix)}\n`);
    },
    finding(f, index) {
      clearTransient();
      const sev =
        f.severity === 'critical'
          ? paint('red', 'CRITICAL')
          : f.severity === 'warning'
            ? paint('yellow', 'WARNING')
            : paint('blue', 'info');
      write(`${index + 1}. ${sev} ${paint('bold', inert(f.title))} ${paint('dim', `[${inert(f.id)}]`)}\n`);
      for (const e of f.evidence) write(`   ${paint('dim', '·')} ${inert(e)}\n`);
      write(`   cause: ${inert(f.cause)}\n`);
      write(`   ${paint('cyan', 'fix:')} ${inert(f.fix)}\n`);
    },
    progress(title) {
      if (!options.spinner) return () => {};
      clearTransient();
      write(paint('dim', `… ${inert(title)}`));
      transient = true;
      return clearTransient;
    },
  };
}
