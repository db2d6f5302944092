/** Display helpers for text that comes from outside (logs, errors, flags). */

const TOKEN_CHAR = /[A-Za-z0-9_\-.+/=~]/;

/**
 * Shortens text for display to at most `max` characters plus "…". It never cuts through a word-like token: a key
 * cut in half is no longer recognised by the redactor, so a cut token is dropped whole instead of shown in part.
 */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max;
  if (TOKEN_CHAR.test(text[end] ?? '') && TOKEN_CHAR.test(text[end - 1] ?? '')) {
    while (end > 0 && TOKEN_CHAR.test(text[end - 1])) end--;
  }
  const kept = text.slice(0, end).trimEnd();
  return kept ? `${kept}…` : `… (${text.length} chars)`;
}

/**
 * Levenshtein distance.
 * LOCAL STAND-IN: swap for `distance` from `fastest-levenshtein` (same semantics) when the lead adds it.
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/**
 * A count as the server gave it: exact as is ("12"), a planner's estimate as "about 52,000" (two significant
 * figures: the estimate is not better than that).
 */
export function countText(n: number, estimated = false): string {
  if (!estimated) return String(n);
  const digits = Math.max(0, String(Math.round(n)).length - 2);
  const rounded = Math.round(n / 10 ** digits) * 10 ** digits;
  return `about ${rounded.toLocaleString('en-US')}`;
}
