/**
 * The fetch every Supabase request goes through: a timeout on each attempt, and bounded retries for reads only.
 * Writes are never retried here: a compare-and-set write is retried, if at all, by its caller after reading again.
 */

export interface GuardedFetchOptions {
  /** Per attempt. */
  timeoutMs: number;
  /** Retries for GET/HEAD on a network error, a timeout, or a status in {@link RETRY_STATUSES}. */
  readRetries: number;
  backoffMs: (attempt: number) => number;
  sleep: (ms: number) => Promise<void>;
  fetch?: typeof fetch;
}

/**
 * Answers a read is tried again on: PostgREST's 502/503/504 (connection, schema cache, pool), Cloudflare's 520–524
 * (it could not get an answer from the project) and Supabase's 544 (its gateway's time limit). Never 540: a paused
 * project stays paused until its owner restores it, so asking again only delays saying so.
 */
export const RETRY_STATUSES: ReadonlySet<number> = new Set([502, 503, 504, 520, 521, 522, 523, 524, 544]);

/** Statuses answered by the gateway, not by PostgREST (the retried ones above from 520): writes are read back. */
export const GATEWAY_STATUSES: ReadonlySet<number> = new Set([...RETRY_STATUSES].filter((s) => s >= 520));

/** A failure of the transport itself, classified so callers can say what to do. */
export const TRANSPORT_ERROR_PATTERN = /^TransportError: (timeout|refused|dns|reset|network): (.*)$/s;

export class TransportError extends Error {
  readonly kind: 'timeout' | 'refused' | 'dns' | 'reset' | 'network';

  constructor(kind: TransportError['kind'], message: string, options?: { cause?: unknown }) {
    // The kind leads the message: supabase-js turns a thrown fetch error into `{ message: name + ': ' + message }`,
    // and that string is all that reaches our caller.
    super(`${kind}: ${message}`, options);
    this.name = 'TransportError';
    this.kind = kind;
  }
}

function classify(e: unknown, url: string, timeoutMs: number): TransportError {
  const err = e as { name?: string; code?: string; cause?: { code?: string; message?: string } };
  const host = new URL(url).host;
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') {
    return new TransportError('timeout', `no answer from ${host} within ${timeoutMs} ms`, { cause: e });
  }
  const code = err?.cause?.code ?? err?.code ?? '';
  if (code === 'ECONNREFUSED') return new TransportError('refused', `connection to ${host} refused`, { cause: e });
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new TransportError('dns', `cannot resolve ${new URL(url).hostname}`, { cause: e });
  }
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') {
    return new TransportError('reset', `connection to ${host} was reset`, { cause: e });
  }
  return new TransportError(
    'network',
    `request to ${host} failed (${code || err?.cause?.message || err?.name || 'network error'})`,
    {
      cause: e,
    },
  );
}

export function guardedFetch(options: GuardedFetchOptions): typeof fetch {
  const base = options.fetch ?? fetch;
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const retries = method === 'GET' || method === 'HEAD' ? options.readRetries : 0;
    for (let attempt = 0; ; attempt++) {
      const timeout = AbortSignal.timeout(options.timeoutMs);
      const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
      try {
        const res = await base(input, { ...init, signal });
        if (attempt < retries && RETRY_STATUSES.has(res.status)) {
          await res.body?.cancel();
          await options.sleep(options.backoffMs(attempt));
          continue;
        }
        // The body is read after this returns; a stall there is caught by the same timeout signal.
        return res;
      } catch (e) {
        if (init?.signal?.aborted) throw e;
        const classified = classify(e, url, options.timeoutMs);
        if (attempt < retries) {
          await options.sleep(options.backoffMs(attempt));
          continue;
        }
        throw classified;
      }
    }
  };
}
