/**
 * The gateway's answers, named: the genuine Cloudflare pages of test/fixtures/gateway (a supabase.co project's 520
 * and 522, a 524), Supabase's own 540/544 (no captured body: empty, as the sandbox serves them) and PostgREST's
 * 504 PGRST003. Each becomes one inert line with the status and the page's title, never the markup.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { withoutMarkup } from '../../lib/core/html.ts';
import { classifyDbError, htmlSummary } from '../../lib/io/db-failure.ts';
import { RETRY_STATUSES } from '../../lib/io/http.ts';

const URL_ = 'https://fyhftlxokyjtpndbkfse.supabase.co';
const page = (status: number) =>
  readFileSync(new URL(`../fixtures/gateway/cloudflare-${status}.html`, import.meta.url), 'utf8');

/** No markup, no line break, no stack: what a line on the terminal may be. */
function expectOneInertLine(text: string): void {
  expect(text).not.toMatch(/[<>]/);
  expect(text).not.toContain('\n');
  expect(text).not.toMatch(/cf-error-details|DOCTYPE|<\/?\w+/i);
  expect(text.length).toBeLessThan(400);
}

describe('the genuine Cloudflare pages', () => {
  it.each([
    [520, 'fyhftlxokyjtpndbkfse.supabase.co | 520: Web server is returning an unknown error'],
    [522, 'fyhftlxokyjtpndbkfse.supabase.co | 522: Connection timed out'],
    [524, 'neuoptic.in | 524: A timeout occurred'],
  ])('%i is a gateway failure named by its status and the page title', (status, title) => {
    const f = classifyDbError(status, { message: page(status) }, URL_);
    expect(f.kind).toBe('gateway');
    expect(f.status).toBe(status);
    expect(f.message).toBe(`the gateway in front of Supabase (Cloudflare) answered ${status}: ${title}`);
    expect(f.fix).toMatch(/status\.supabase\.com/);
    expectOneInertLine(f.message);
    expectOneInertLine(f.fix);
  });

  it('reads the title, not the markup or the Ray ID footer', () => {
    expect(htmlSummary(page(522))).toBe('fyhftlxokyjtpndbkfse.supabase.co | 522: Connection timed out');
    expect(htmlSummary('{"message":"x"}')).toBeUndefined();
    expect(htmlSummary('')).toBeUndefined();
  });

  it('reads every gateway status as retryable for reads, and 540 as not', () => {
    for (const s of [520, 521, 522, 523, 524, 544]) expect(RETRY_STATUSES.has(s)).toBe(true);
    expect(RETRY_STATUSES.has(540)).toBe(false);
  });
});

describe("Supabase's own statuses", () => {
  it('540 (empty body, as a HEAD or the sandbox gets it): the project is paused; restore it, do not retry', () => {
    const f = classifyDbError(540, { message: '' }, URL_);
    expect(f.kind).toBe('paused');
    expect(f.message).toBe('the Supabase project at fyhftlxokyjtpndbkfse.supabase.co is paused (540: project paused)');
    expect(f.fix).toMatch(/^restore it in the Supabase dashboard \(Project → Restore\)/);
    expect(f.fix).toMatch(/retrying does not help/);
  });

  it('540 with an HTML page still says paused, with the page as one line', () => {
    const f = classifyDbError(540, { message: '<html><head><title>Project\npaused</title></head></html>' }, URL_);
    expect(f.kind).toBe('paused');
    expect(f.message).toContain('(540: Project paused)');
    expectOneInertLine(f.message);
  });

  it("544 (empty body): Supabase's gateway time limit, named", () => {
    const f = classifyDbError(544, { message: '' }, URL_);
    expect(f.kind).toBe('gateway');
    expect(f.message).toBe("Supabase's API gateway answered 544: project API gateway timeout");
    expect(f.fix).toMatch(/API logs and slow queries/);
  });

  it('504 PGRST003: the database pool was saturated', () => {
    // PostgREST's body for an exhausted pool (its error table: PGRST003, 504).
    const f = classifyDbError(
      504,
      { code: 'PGRST003', message: 'Timed out acquiring connection from connection pool.', hint: null },
      URL_,
    );
    expect(f.kind).toBe('pool-exhausted');
    expect(f.message).toBe(
      'the database pool was saturated (504 PGRST003: Timed out acquiring connection from connection pool.)',
    );
    expect(f.fix).toMatch(/raise the pool size/);
  });

  it('a 504 that is not PGRST003 stays a server failure', () => {
    expect(classifyDbError(504, { message: 'upstream request timeout' }, URL_).kind).toBe('server');
  });
});

describe('an HTML body anywhere', () => {
  it('a 502 nginx page is a server failure shown by its title', () => {
    const nginx =
      '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';
    const f = classifyDbError(502, { message: nginx }, URL_);
    expect(f.kind).toBe('server');
    expect(f.message).toBe('the API failed (502: an HTML page: 502 Bad Gateway)');
  });

  it('a title carrying terminal escapes and entities is shown inert', () => {
    const hostile = '<!DOCTYPE html><title>x &amp; y \u001b]52;c;ZXZpbA==\u0007 &#x202E;z</title>';
    const f = classifyDbError(520, { message: hostile }, URL_);
    expect(f.message).not.toMatch(/[\u001b\u0007\u202e]/);
    expect(f.message).toContain('x & y ^[]52;c;ZXZpbA==^G <U+202E>z');
  });

  it('a 401 whose body is a login page names the page, not its markup', () => {
    const f = classifyDbError(401, { message: '<!doctype html><html><head><title>Sign in</title>' }, URL_);
    expect(f.kind).toBe('unauthorized');
    expect(f.message).toContain('an HTML page: Sign in');
    expectOneInertLine(f.message);
  });
});

describe('an HTML page inside a longer text (a worker log line)', () => {
  it('stands for its title, the text around it kept', () => {
    const line = `2026-12-02T01:32:41Z ERROR poll failed: 522 ${page(522).trim().replace(/\n/g, ' ')} (retrying)`;
    expect(withoutMarkup(line)).toBe(
      '2026-12-02T01:32:41Z ERROR poll failed: 522 [HTML page: fyhftlxokyjtpndbkfse.supabase.co | 522: Connection timed out] (retrying)',
    );
  });

  it('a page cut short by the line limit still becomes its title', () => {
    expect(withoutMarkup(`poll failed: ${page(520).slice(0, page(520).indexOf('<meta'))}`)).toBe(
      'poll failed: [HTML page: fyhftlxokyjtpndbkfse.supabase.co | 520: Web server is returning an unknown error]',
    );
  });

  it('leaves text without a page alone', () => {
    expect(withoutMarkup('a < b and c > d')).toBe('a < b and c > d');
  });
});

describe('the statement timeout', () => {
  it("500 57014 (PostgREST passes PostgreSQL's cancel through) names the timeout and the indexes migration", () => {
    // The body the sandbox's integration test gets from a real cancel (test/integration/sandbox-limits.test.ts),
    // PostgreSQL's own message in PostgREST's shape.
    const f = classifyDbError(
      500,
      { code: '57014', message: 'canceling statement due to statement timeout', details: undefined, hint: null },
      URL_,
    );
    expect(f.kind).toBe('server');
    expect(f.message).toBe(
      'the database cancelled the query at its statement timeout (500 57014: canceling statement due to statement timeout)',
    );
    expect(f.fix).toContain('sandbox/migrations/004_queue_read_indexes.sql');
    expectOneInertLine(f.message);
  });
});

describe('a request too large for a proxy or the gateway', () => {
  it("413 and 414 (Cloudflare's own pages, as the sandbox serves them) name the size and what to do", async () => {
    const { bodyTooLarge, uriTooLong } = await import('../../sandbox/rest/limits.ts');
    const body = classifyDbError(413, { message: bodyTooLarge().body }, URL_);
    expect(body.message).toBe(
      "a proxy or the gateway refused the request's body as too large (413: 413 Request Entity Too Large)",
    );
    expect(body.fix).toContain('--rpc-batch');
    const url = classifyDbError(414, { message: uriTooLong().body }, URL_);
    expect(url.message).toBe(
      "a proxy or the gateway refused the request's URL as too long (414: 414 Request-URI Too Large)",
    );
    for (const f of [body, url]) expectOneInertLine(f.message);
  });
});
