/**
 * The watch's HTTP connections, kept from one refresh to the next. Node's fetch (undici) closes an idle keep-alive
 * connection after 4 s (its keepAliveTimeout, unless the answer's `Keep-Alive: timeout=` says longer; Supabase's edge,
 * Cloudflare, keeps an idle HTTP/1.1 client connection 400 s by its documentation, and no such hint from it is known), so
 * at the watch's 5 s every refresh opened its seven connections again: TCP and TLS, two more round trips. It also
 * closes a connection after every HEAD request (undici's client marks the socket for reset, "to interop with
 * misbehaving servers that may send a body"), whatever the answer says: the watch's three counts are HEADs.
 *
 * The watch's db client alone gets its own dispatcher: idle connections last one refresh interval and a margin, and a
 * HEAD keeps its connection when the answer allows it (undici's per-request `reset: false`; its parser still keeps
 * the connection only for an answer that is framed, with a Content-Length, as PostgREST's and the sandbox's are). The
 * undici Agent is loaded only here, at the watch's first refresh (about 20 ms), never by a one-shot runbook.
 */

import type { Dispatcher } from 'undici';

/** Over the refresh interval: the next refresh finds the connections still open. */
export const KEEP_ALIVE_MARGIN_MS = 5_000;
/** At most this long, well under the 400 s Cloudflare keeps an idle client connection: a slower watch reconnects. */
export const KEEP_ALIVE_CAP_MS = 300_000;

/** How long the watch keeps an idle connection: the interval plus the margin, capped. */
export function keepAliveFor(everyMs: number): number {
  return Math.min(everyMs + KEEP_ALIVE_MARGIN_MS, KEEP_ALIVE_CAP_MS);
}

/** A fetch whose connections outlive a refresh interval; `close` ends them (in-flight requests too). */
export interface KeptConnections {
  fetch: typeof fetch;
  close(): Promise<void>;
}

/** Builds the dispatcher (loading undici's Agent) and a fetch that goes through it. */
export async function keepConnections(keepAliveMs: number, base: typeof fetch = fetch): Promise<KeptConnections> {
  const { default: Agent } = await import('undici/lib/dispatcher/agent.js');
  class KeepAfterHead extends Agent {
    override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandlers): boolean {
      return super.dispatch(opts.method === 'HEAD' ? { ...opts, reset: false } : opts, handler);
    }
  }
  const agent = new KeepAfterHead({ keepAliveTimeout: keepAliveMs, keepAliveMaxTimeout: keepAliveMs });
  return {
    // `dispatcher` is Node's fetch's own extension of RequestInit (undici's), absent from the DOM type.
    fetch: (input, init) => base(input, { ...init, dispatcher: agent } as RequestInit),
    // destroy, not close: a Ctrl-C during a refresh does not wait for its requests.
    close: () => agent.destroy(),
  };
}
