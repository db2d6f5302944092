/**
 * Lines wrapped to the terminal's width (the output port's `wrap`, lib/io/output.ts): at spaces, words never cut,
 * continuation lines hanging under their label, a pasteable command never broken. Loaded only for a terminal: the
 * text-width tables wrap-ansi builds as it loads (Unicode segmentation, emoji) cost tens of milliseconds.
 */
import wrapAnsi from 'wrap-ansi';

/**
 * Where a pasteable command starts in a line: from there on the line is never broken (a newline inside a command
 * would run half of it). A command longer than the terminal overflows and the terminal folds it, as it would anyway.
 */
const COMMAND_START =
  /(?:^|\s)(?=(?:npx |ssh |ssh-keygen |ssh-keyscan |sudo |systemctl |docker |tmux |screen |kill |export |curl )\S)/;

/**
 * Wraps one line to the terminal's width at spaces (words are never cut), continuation lines indented to `hang`.
 * The text may hold this port's own colours; widths are counted without them.
 */
export function wrapLine(text: string, columns: number | undefined, hang: number): string {
  if (!columns || columns < 30) return text;
  const hangAt = Math.min(hang, columns - 20);
  const indent = ' '.repeat(hangAt);
  const at = text.search(COMMAND_START);
  const prose = at > 0 ? text.slice(0, at) : at === 0 ? '' : text;
  const command = at >= 0 ? text.slice(at).trimStart() : '';
  // The hanging part (indent, bullet, label) stays on the first line; the rest wraps in the columns after it
  // (wrap-ansi trims the spaces at each break, also after a colour it re-opens).
  const [prefix, body] = splitVisible(prose, hangAt);
  const lines = body.trim()
    ? wrapAnsi(body, columns - hangAt, { hard: false, trim: true, wordWrap: true }).split('\n')
    : [];
  const fitted = lines.length
    ? [`${prefix}${lines[0]}`, ...lines.slice(1).map((l) => `${indent}${l}`)]
    : prose.trim()
      ? [prose.trimEnd()]
      : [];
  if (command) {
    const last = fitted.length ? fitted[fitted.length - 1] : '';
    if (!fitted.length) fitted.push(command);
    else if (visibleLength(last) + 1 + command.length <= columns) fitted[fitted.length - 1] = `${last} ${command}`;
    else fitted.push(`${indent}${command}`);
  }
  return fitted.join('\n');
}

const SGR_AT_START = /^\x1b\[[0-9;]*m/;
const visibleLength = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, '').length;

/** Splits a text after `n` visible characters; this port's colour codes are not counted. */
function splitVisible(text: string, n: number): [string, string] {
  let seen = 0;
  let i = 0;
  while (i < text.length && seen < n) {
    const sgr = SGR_AT_START.exec(text.slice(i));
    if (sgr) i += sgr[0].length;
    else {
      i++;
      seen++;
    }
  }
  return [text.slice(0, i), text.slice(i)];
}
