/**
 * Untrusted text made inert for a terminal. Job rows (anyone with the app's public key can insert a job), worker
 * log lines, remote files and process command lines can carry terminal control sequences: `ESC ] 52` writes the
 * operator's clipboard, `ESC [2J` clears the screen, OSC 8 hides a link behind innocent text, a title change or a
 * bidi override makes text read differently than it is. Every such character is shown, never sent:
 * - C0 controls but newline and tab, and DEL, in caret notation: ESC is `^[`, BEL `^G`, a lone CR `^M`
 *   (CRLF line ends become plain newlines first);
 * - C1 controls (U+0080–U+009F, e.g. the one-character CSI U+009B) as `\u009b`;
 * - bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) and the line/paragraph separators
 *   (U+2028, U+2029) as `<U+202E>`.
 * Since each dangerous character becomes printable text, no cut of the result can split a live sequence.
 */

const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function visible(ch: string): string {
  const code = ch.charCodeAt(0);
  if (code < 0x20) return `^${String.fromCharCode(code + 0x40)}`;
  if (code === 0x7f) return '^?';
  if (code <= 0x9f) return `\\u${code.toString(16).padStart(4, '0')}`;
  return `<U+${code.toString(16).toUpperCase()}>`;
}

/** The text with every terminal control, bidi control and line separator shown as printable text. */
export function inert(text: string): string {
  return text.replace(/\r\n/g, '\n').replace(UNSAFE, visible);
}

/** True when {@link inert} would change the text (for tests and for choosing a quoting style). */
export function hasUnsafeText(text: string): boolean {
  UNSAFE.lastIndex = 0;
  return UNSAFE.test(text);
}

/**
 * JSON text that is safe to print on a terminal: JSON.stringify already escapes C0 controls, but passes C1
 * controls and bidi characters through raw. They become `\uXXXX` escapes: the same JSON value, inert text.
 */
export function inertJson(json: string): string {
  return json.replace(/[\u0080-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (ch) => {
    return `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}
