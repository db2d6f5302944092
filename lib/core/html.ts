/**
 * HTML pages in text that is shown on a terminal: a gateway's error page (Cloudflare's 52x, an nginx 502) arrives
 * as a response body, or inside a worker's log line ("poll failed: 522 <!DOCTYPE html>…"). It is shown as one line,
 * its <title>, never the markup. Pure; the caller makes the result inert.
 */

const HTML_START = /^\s*(?:<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]|<!--\[if\b)/i;
/** Where a page starts inside a longer text (a log line, an error message that quotes a body). */
const HTML_INSIDE = /<!doctype\s+html|<html[\s>]/i;
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', bull: '•' };

/** Text from HTML: tags dropped, the common entities decoded, whitespace collapsed. */
function htmlText(html: string): string {
  return html
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
      if (e[0] !== '#') return ENTITIES[e.toLowerCase()] ?? m;
      const code = e[1] === 'x' || e[1] === 'X' ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1));
      return code > 0x1f && code < 0x110000 ? String.fromCodePoint(code) : ' ';
    })
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * The one line an HTML body stands for: its <title> (else its first heading; empty when it has neither), or
 * undefined when the body is not an HTML page. Never the markup.
 */
export function htmlSummary(body: string | undefined): string | undefined {
  if (!body || !(HTML_START.test(body) || /<\/?(?:html|title|body)[\s>]/i.test(body.slice(0, 2000)))) return undefined;
  // A page cut short (a clipped log line) may end inside its title: what there is of it stands.
  const title = /<title[^>]*>([\s\S]*?)(?:<\/title>|<|$)/i.exec(body)?.[1];
  const heading = /<h1[^>]*>([\s\S]*?)<\/h1>/i.exec(body)?.[1];
  return htmlText(title ?? heading ?? '');
}

/**
 * The text with an HTML page inside it (from `<!DOCTYPE html` or `<html` to `</html>` or the end, as a log line cut
 * short leaves it) replaced by `[HTML page: TITLE]`; text without one is returned as it is.
 */
export function withoutMarkup(text: string): string {
  const at = text.search(HTML_INSIDE);
  if (at < 0) return text;
  const rest = text.slice(at);
  const end = /<\/html\s*>/i.exec(rest);
  const page = end ? rest.slice(0, end.index + end[0].length) : rest;
  const title = htmlSummary(page);
  const after = end ? withoutMarkup(rest.slice(page.length)) : '';
  return `${text.slice(0, at)}[HTML page${title ? `: ${title}` : ''}]${after}`;
}
