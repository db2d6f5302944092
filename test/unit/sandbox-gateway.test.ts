/**
 * The sandbox's gateway switches answer as Supabase's gateway does: Cloudflare's captured page with its headers for
 * 520/522/524, the status with an empty body for 540/544 (never captured: nothing invented). What they serve is
 * what the runbooks classify.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { classifyDbError } from '../../lib/io/db-failure.ts';
import { gatewayAnswer } from '../../sandbox/rest/gateway.ts';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/gateway/${name}`, import.meta.url), 'utf8');

describe('gatewayAnswer', () => {
  it.each([
    [520, '9df824fdc71541c0-EWR'],
    [522, '9df84586146e8465-EWR'],
    [524, 'a1cf11b98f721195-SIN'],
  ] as const)('%i: the captured page, text/html, server cloudflare, CF-RAY from its Ray ID', (status, ray) => {
    const a = gatewayAnswer(status);
    expect(a.status).toBe(status);
    expect(a.body).toBe(fixture(`cloudflare-${status}.html`));
    expect(a.headers).toMatchObject({
      'content-type': 'text/html; charset=UTF-8',
      server: 'cloudflare',
      'cf-ray': ray,
      expires: 'Thu, 01 Jan 1970 00:00:01 GMT',
    });
    expect(classifyDbError(status, { message: a.body }, 'http://127.0.0.1:1').kind).toBe('gateway');
  });

  it.each([540, 544] as const)('%i: the status and the headers, an empty body', (status) => {
    const a = gatewayAnswer(status);
    expect(a.body).toBe('');
    expect(a.headers['cf-ray']).toMatch(/^[0-9a-f]{16}-EWR$/);
    expect(classifyDbError(status, { message: a.body }, 'http://127.0.0.1:1').kind).toBe(
      status === 540 ? 'paused' : 'gateway',
    );
  });
});
