import { describe, expect, it } from 'vitest';
import { guardedFetch, TRANSPORT_ERROR_PATTERN, TransportError } from '../../lib/io/http.ts';

const URL_ = 'https://abcdefghijklmnopqrst.supabase.co/rest/v1/hd_ingestion_jobs?select=id';

type Step = number | Error | 'hang';

/** A fetch that plays a script: a status answers with that status, an Error is thrown, 'hang' waits for abort. */
function scriptedFetch(steps: Step[]) {
  const calls: { method: string; signal: AbortSignal | undefined }[] = [];
  const cancelled: number[] = [];
  const fn = (async (input: string | URL | Request, init?: RequestInit) => {
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    calls.push({ method, signal: init?.signal ?? undefined });
    const step = steps[Math.min(calls.length - 1, steps.length - 1)];
    if (step === 'hang') {
      return new Promise<Response>((_resolve, reject) => {
        const signal = init?.signal;
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    }
    if (step instanceof Error) throw step;
    const n = calls.length;
    const body = new ReadableStream({
      cancel: () => {
        cancelled.push(n);
      },
    });
    return new Response(body, { status: step });
  }) as typeof fetch;
  return { fn, calls, cancelled };
}

function guarded(steps: Step[], over: { readRetries?: number; timeoutMs?: number } = {}) {
  const f = scriptedFetch(steps);
  const sleeps: number[] = [];
  const fetch = guardedFetch({
    timeoutMs: over.timeoutMs ?? 5_000,
    readRetries: over.readRetries ?? 2,
    backoffMs: (n) => 100 * 2 ** n,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    fetch: f.fn,
  });
  return { fetch, calls: f.calls, cancelled: f.cancelled, sleeps };
}

const networkError = (code: string) =>
  Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error(code), { code }) });

describe('guardedFetch retries', () => {
  it('retries a GET on 503 with backoff, then returns the success', async () => {
    const g = guarded([503, 200]);
    const res = await g.fetch(URL_);
    expect(res.status).toBe(200);
    expect(g.calls).toHaveLength(2);
    expect(g.sleeps).toEqual([100]);
    expect(g.cancelled).toEqual([1]);
  });

  it.each([502, 504, 520])('retries a GET on %i', async (status) => {
    const g = guarded([status, 200]);
    expect((await g.fetch(URL_)).status).toBe(200);
    expect(g.calls).toHaveLength(2);
  });

  it.each([400, 401, 404, 500])('does not retry a GET answered %i', async (status) => {
    const g = guarded([status, 200]);
    expect((await g.fetch(URL_)).status).toBe(status);
    expect(g.calls).toHaveLength(1);
  });

  it('gives up after readRetries and returns the last 503', async () => {
    const g = guarded([503]);
    expect((await g.fetch(URL_)).status).toBe(503);
    expect(g.calls).toHaveLength(3);
    expect(g.sleeps).toEqual([100, 200]);
  });

  it('retries a HEAD on a network error, then succeeds', async () => {
    const g = guarded([networkError('ECONNRESET'), 200]);
    expect((await g.fetch(URL_, { method: 'head' })).status).toBe(200);
    expect(g.calls).toHaveLength(2);
  });

  it.each(['POST', 'PATCH', 'DELETE', 'patch'])('never retries a %s on 503', async (method) => {
    const g = guarded([503, 200]);
    expect((await g.fetch(URL_, { method, body: '{}' })).status).toBe(503);
    expect(g.calls).toHaveLength(1);
    expect(g.sleeps).toEqual([]);
  });

  it.each(['POST', 'PATCH'])('never retries a %s on a network error', async (method) => {
    const g = guarded([networkError('ECONNRESET'), 200]);
    await expect(g.fetch(URL_, { method, body: '{}' })).rejects.toMatchObject({ kind: 'reset' });
    expect(g.calls).toHaveLength(1);
  });

  it('never retries a PATCH passed as a Request object', async () => {
    const g = guarded([503, 200]);
    const res = await g.fetch(new Request(URL_, { method: 'PATCH', body: '{}' }));
    expect(res.status).toBe(503);
    expect(g.calls).toHaveLength(1);
  });
});

describe('guardedFetch and the gateway', () => {
  it.each([520, 522, 524, 544])('retries a GET answered %i, then returns the success', async (status) => {
    const g = guarded([status, 200]);
    expect((await g.fetch(URL_)).status).toBe(200);
    expect(g.calls).toHaveLength(2);
    expect(g.sleeps).toEqual([100]);
  });

  it('gives a GET answered 522 every time back after the retries: three tries, two backoffs', async () => {
    const g = guarded([522]);
    expect((await g.fetch(URL_)).status).toBe(522);
    expect(g.calls).toHaveLength(3);
    expect(g.sleeps).toEqual([100, 200]);
  });

  it('asks once when the project is paused (540), for a GET and a HEAD', async () => {
    for (const method of ['GET', 'HEAD']) {
      const g = guarded([540, 200]);
      expect((await g.fetch(URL_, { method })).status).toBe(540);
      expect(g.calls).toHaveLength(1);
      expect(g.sleeps).toEqual([]);
    }
  });

  it.each(['PATCH', 'POST'])(
    'never retries a %s answered 522 or 504: a write is settled by its caller reading back',
    async (method) => {
      for (const status of [522, 504]) {
        const g = guarded([status, 200]);
        expect((await g.fetch(URL_, { method })).status).toBe(status);
        expect(g.calls).toHaveLength(1);
      }
    },
  );
});

describe('guardedFetch failures', () => {
  const cases: [name: string, error: Error, kind: TransportError['kind'], message: RegExp][] = [
    [
      'a timeout',
      new DOMException('The operation was aborted due to timeout', 'TimeoutError'),
      'timeout',
      /^timeout: no answer from abcdefghijklmnopqrst\.supabase\.co within 5000 ms$/,
    ],
    [
      'ECONNREFUSED',
      networkError('ECONNREFUSED'),
      'refused',
      /^refused: connection to abcdefghijklmnopqrst\.supabase\.co refused$/,
    ],
    ['ENOTFOUND', networkError('ENOTFOUND'), 'dns', /^dns: cannot resolve abcdefghijklmnopqrst\.supabase\.co$/],
    ['EAI_AGAIN', networkError('EAI_AGAIN'), 'dns', /^dns: /],
    ['ECONNRESET', networkError('ECONNRESET'), 'reset', /^reset: connection to .* was reset$/],
    ['UND_ERR_SOCKET', networkError('UND_ERR_SOCKET'), 'reset', /^reset: /],
    ['a code on the error itself', Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), 'refused', /^refused: /],
    ['an unknown code', networkError('EHOSTUNREACH'), 'network', /^network: request to .* failed \(EHOSTUNREACH\)$/],
  ];
  it.each(cases)(
    'classifies %s as a TransportError whose text matches TRANSPORT_ERROR_PATTERN',
    async (_n, error, kind, message) => {
      const g = guarded([error], { readRetries: 0 });
      const e = await g.fetch(URL_, { method: 'POST' }).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(TransportError);
      const t = e as TransportError;
      expect(t.kind).toBe(kind);
      expect(t.message).toMatch(message);
      expect(t.cause).toBe(error);
      // What supabase-js reports: `${name}: ${message}`.
      const reported = TRANSPORT_ERROR_PATTERN.exec(`${t.name}: ${t.message}`);
      expect(reported?.[1]).toBe(kind);
      expect(reported?.[2]).toBe(t.message.slice(kind.length + 2));
    },
  );

  it('times out a request that never answers, through the signal it passes to fetch', async () => {
    const g = guarded(['hang'], { readRetries: 0, timeoutMs: 20 });
    await expect(g.fetch(URL_)).rejects.toMatchObject({ name: 'TransportError', kind: 'timeout' });
    expect(g.calls[0].signal).toBeDefined();
  });

  it('retries a GET that timed out, and throws the timeout when every attempt does', async () => {
    const timeout = new DOMException('timeout', 'TimeoutError');
    const g = guarded([timeout]);
    await expect(g.fetch(URL_)).rejects.toMatchObject({ kind: 'timeout' });
    expect(g.calls).toHaveLength(3);
  });

  it("rethrows the caller's own abort as is, without retrying", async () => {
    const controller = new AbortController();
    const abort = new DOMException('aborted by caller', 'AbortError');
    controller.abort(abort);
    const g = guarded([abort, 200]);
    await expect(g.fetch(URL_, { signal: controller.signal })).rejects.toBe(abort);
    expect(g.calls).toHaveLength(1);
  });
});

describe('TRANSPORT_ERROR_PATTERN', () => {
  const cases: [text: string, matches: boolean][] = [
    ['TransportError: timeout: no answer from x within 10 ms', true],
    ['TransportError: refused: connection to x refused', true],
    ['TransportError: network: request to x failed (E)', true],
    ['TypeError: fetch failed', false],
    ['FetchError: timeout: x', false],
    ['TransportError: exploded: x', false],
  ];
  it.each(cases)('matches "%s" → %s', (text, matches) => {
    expect(TRANSPORT_ERROR_PATTERN.test(text)).toBe(matches);
  });
});
