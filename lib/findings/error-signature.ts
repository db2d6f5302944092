/**
 * Normalise an error text to a short signature, so that failures differing only in ids, numbers, paths or quoted
 * values group together: `CUDA out of memory. Tried to allocate <n> GiB` rather than one group per job.
 */

/** The signature of an empty or missing error text. */
import { withoutMarkup } from '../core/html.ts';
import { clip } from '../core/text.ts';

export const NO_ERROR_TEXT = '(no error text)';

const MAX_LENGTH = 120;

/** A Python frame line, `  File "x.py", line 3, in f`: its presence means the text is (part of) a traceback. */
const PY_FRAME = /^\s+File "[^"]*", line \d+/;
/** Lines in a traceback that are structure, not the exception. */
const PY_STRUCTURE =
  /^(Traceback \(most recent call last\):|During handling of the above exception|The above exception was the direct cause)/;
/** `ValueError: bad`, `torch.cuda.OutOfMemoryError: ...`, `KeyboardInterrupt`. */
const PY_EXCEPTION = /^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Failure|Timeout)\b(?::|$)/;

/** For a Python traceback, the line naming the final exception; undefined when the text is not one. */
function pythonExceptionLine(lines: readonly string[]): string | undefined {
  if (!lines.some((l) => PY_FRAME.test(l) || l.startsWith('Traceback (most recent call last):'))) return undefined;
  let candidate: string | undefined;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i];
    if (line.trim() === '' || /^\s/.test(line) || PY_STRUCTURE.test(line)) continue;
    if (PY_EXCEPTION.test(line)) return line;
    // A message spanning lines leaves its tail last; keep looking for the exception name above it,
    // but fall back to the last unindented line if there is none.
    candidate ??= line;
  }
  return candidate;
}

/** A leading log timestamp and level carry no grouping information. */
function stripLogPrefix(line: string): string {
  return line
    .replace(/^\[?\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?\]?\s*/, '')
    .replace(/^\[?(?:DEBUG|INFO|WARN|WARNING|ERROR|CRITICAL|FATAL)\]?:?\s+/, '');
}

function firstMeaningfulLine(lines: readonly string[]): string | undefined {
  for (const raw of lines) {
    const line = stripLogPrefix(raw.trim());
    // Rules, box drawing and bare punctuation say nothing about the failure.
    if (/[\p{L}\p{N}]/u.test(line)) return line;
  }
  return undefined;
}

/** Order matters: URLs and paths contain numbers and hex, and quoted strings swallow whatever is inside them. */
function normalise(line: string): string {
  return (
    line
      .replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`)\]]+/gi, '<url>')
      // An apostrophe inside a word (can't) does not open a quoted string.
      .replace(/"(?:[^"\\]|\\.)*"|(?<![\w])'(?:[^'\\\n]|\\.)*'(?![\w])|`[^`]*`|“[^”]*”|‘[^’]*’/g, '"<s>"')
      .replace(/(?<![\w.:/<>-])(?:~|[A-Za-z]:)?(?:[\\/][\w.@+-]+)+[\\/]?/g, (m) =>
        // A lone "/x" after a space is a path; a bare "/" (division, "and / or") is not.
        /[\w]/.test(m) ? '<path>' : m,
      )
      // Ids are often glued on with _ (job_3fa9c2e1), which \b would not split, hence the explicit lookarounds.
      .replace(
        /(?<![0-9A-Za-z])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9A-Za-z])/gi,
        '<uuid>',
      )
      // Long opaque tokens (keys, JWTs, hashes) say nothing about the failure, and a key must never survive into a
      // signature half-rewritten, where the redactor would no longer recognise it.
      .replace(/[A-Za-z0-9_\-+/=.]{32,}/g, '<token>')
      .replace(/(?<![0-9A-Za-z])0x[0-9a-f]+(?![0-9A-Za-z])/gi, '<hex>')
      // Hex needs a digit and a letter, so English words and plain numbers are left alone here.
      .replace(/(?<![0-9A-Za-z])(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{8,}(?![0-9A-Za-z])/gi, '<hex>')
      // Digits inside identifiers (float16, sha256, utf8) name things; digits leading a unit (12GiB) are amounts.
      .replace(/(?<![A-Za-z\d.<])\d+(?:\.\d+)*/g, '<n>')
      .replace(/\s+/g, ' ')
      .trim()
  );
}

/**
 * A short normalised signature for grouping failures: the first meaningful line (for a Python traceback, the
 * final `XxxError: message` line), with UUIDs → `<uuid>`, hex ids → `<hex>`, numbers → `<n>`, URLs → `<url>`,
 * absolute paths → `<path>`, quoted strings → `"<s>"`, whitespace collapsed, at most 120 characters.
 * Empty or missing text gives `(no error text)`.
 */
export function errorSignature(text: string | null | undefined): string {
  if (text === null || text === undefined || text.trim() === '') return NO_ERROR_TEXT;
  // A worker that stored a gateway's error page as the error: the page stands for its title, never its markup.
  const lines = withoutMarkup(text).replace(/\r\n?/g, '\n').split('\n');
  const line = pythonExceptionLine(lines) ?? firstMeaningfulLine(lines);
  if (line === undefined) return NO_ERROR_TEXT;
  const signature = normalise(line);
  if (signature === '') return NO_ERROR_TEXT;
  return clip(signature, MAX_LENGTH - 1);
}
