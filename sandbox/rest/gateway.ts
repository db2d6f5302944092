/**
 * The answers of Supabase's gateway (Cloudflare) in front of the API, served from the captured pages in
 * test/fixtures/gateway (their sources: its README.md).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { HttpAnswer } from './query.ts';

/** Where Cloudflare's captured pages live (their sources: test/fixtures/gateway/README.md). */
const GATEWAY_FIXTURES = new URL('../../test/fixtures/gateway/', import.meta.url);
/** The Cloudflare data centre each captured page names (Newark, Singapore), for its CF-RAY header. */
const GATEWAY_COLO: Record<number, string> = { 520: 'EWR', 522: 'EWR', 524: 'SIN' };

/**
 * What Supabase's gateway answers instead of the API: for 520/522/524 the genuine Cloudflare page with Cloudflare's
 * error-page headers and its Ray ID; for 540/544, whose bodies were never found captured, the status and the same
 * headers with an empty body (nothing invented: see test/fixtures/gateway/README.md).
 */
export function gatewayAnswer(status: number): HttpAnswer {
  const headers = JSON.parse(readFileSync(new URL('headers.json', GATEWAY_FIXTURES), 'utf8')) as Record<string, string>;
  let body = '';
  let ray = randomBytes(8).toString('hex');
  if (status in GATEWAY_COLO) {
    body = readFileSync(new URL(`cloudflare-${status}.html`, GATEWAY_FIXTURES), 'utf8');
    ray = /Ray ID: <strong[^>]*>([0-9a-f]+)</.exec(body)?.[1] ?? ray;
  }
  return {
    status,
    headers: { ...headers, 'cf-ray': `${ray}-${GATEWAY_COLO[status] ?? 'EWR'}` },
    body,
    rollback: false,
  };
}
