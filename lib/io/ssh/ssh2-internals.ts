/**
 * The places the run reaches into ssh2 (1.17.0, pinned) beyond its public API, each to save a round trip, each
 * doing nothing (the public behaviour, one round trip slower) when a later ssh2 names its internals otherwise:
 *
 * - `socketOf`: the connection's socket, so that closing need not wait for the server's answer to the disconnect.
 * - `sendStdinWithExec`: a command's stdin sent right behind its exec request, as OpenSSH's client does, instead of
 *   after the server has accepted the request (ssh2 hands the channel over only then). The server reads the request
 *   before the data that follows it on the connection, so the command gets its stdin as before; a refused request
 *   closes the channel, data and all. With `end: false` stdin stays open (a shell's first script, shell.ts).
 * - `signAtOnce`: a key file's publickey request goes out signed, as RFC 4252 section 7 allows, instead of first
 *   asking whether the key would be accepted (the answer to which ssh2 and OpenSSH both wait for). A server that
 *   refuses the key answers the signed request as it answers the question (failure: the next method or key); the
 *   agent's keys still ask first (the agent signs only once asked to).
 */
import { Socket } from 'node:net';
import type { Client } from 'ssh2';

type ExecRequest = (remoteId: number, command: string, wantReply: boolean) => unknown;

/** ssh2's Protocol.authPK: without `sign`, only the question whether the key would do. */
type AuthPk = (username: string, key: unknown, keyAlgo?: unknown, sign?: unknown) => unknown;
type SignCallback = (data: Buffer, send: (signature: Buffer) => void) => void;

interface Internals {
  _sock?: unknown;
  _protocol?: { exec?: ExecRequest; authPK?: AuthPk };
  _chanMgr?: { _channels?: Record<string, unknown> };
}

interface ChannelLike {
  outgoing?: { id?: number; state?: string };
  end?: (data: string) => unknown;
  write?: (data: string) => unknown;
}

/** What was asked to go with an exec request; `sent` once it went. */
export interface StdinWithExec {
  sent: boolean;
  /** Drops the request if it has not gone (the run ended first). */
  cancel(): void;
}

interface Pending {
  command: string;
  stdin: string;
  /** Send EOF after stdin (a command's whole input) or not (a shell's first script). */
  end: boolean;
  onSent?: () => void;
  state: StdinWithExec;
}

const pendingOf = new WeakMap<Client, Pending[]>();

/** ssh2's socket for this client, or undefined. */
export function socketOf(client: Client): Socket | undefined {
  const sock = (client as unknown as Internals)._sock;
  return sock instanceof Socket ? sock : undefined;
}

/**
 * Asks for `stdin` (then EOF) to go out with the next exec request of `command` on this client. Call it before
 * `client.exec`; when `sent` is still false at the exec's callback, write stdin there as usual.
 */
export function sendStdinWithExec(
  client: Client,
  command: string,
  stdin: string,
  o: { end: boolean; onSent?: () => void } = { end: true },
): StdinWithExec {
  const state: StdinWithExec = { sent: false, cancel: () => {} };
  const internals = client as unknown as Internals;
  const proto = internals._protocol;
  const channels = internals._chanMgr?._channels;
  if (!proto || typeof proto.exec !== 'function' || !channels || typeof channels !== 'object') return state;
  let pending = pendingOf.get(client);
  if (!pending) {
    const list: Pending[] = [];
    pending = list;
    pendingOf.set(client, list);
    const request = proto.exec;
    proto.exec = function (this: unknown, remoteId, cmd, wantReply) {
      const result = request.call(this, remoteId, cmd, wantReply);
      const at = list.findIndex((p) => p.command === cmd);
      if (at >= 0) {
        const [p] = list.splice(at, 1);
        const channel = Object.values(channels).find(
          (c): c is ChannelLike => (c as ChannelLike | undefined)?.outgoing?.id === remoteId,
        );
        const send = p.end ? channel?.end : channel?.write;
        if (channel?.outgoing?.state === 'open' && typeof send === 'function') {
          send.call(channel, p.stdin);
          p.state.sent = true;
          p.onSent?.();
        }
      }
      return result;
    };
  }
  const entry: Pending = { command, stdin, end: o.end, onSent: o.onSent, state };
  pending.push(entry);
  state.cancel = () => {
    const list = pendingOf.get(client);
    const at = list?.indexOf(entry) ?? -1;
    if (list && at >= 0) list.splice(at, 1);
  };
  return state;
}

interface PrivateKeyLike {
  isPrivateKey?: () => boolean;
  sign?: (data: Buffer, hash?: string) => Buffer | Error;
}

/** The hash each RSA signature algorithm signs with (ssh2's getKeyAlgos); other key types choose their own. */
const RSA_HASH: Record<string, string> = { 'rsa-sha2-256': 'sha256', 'rsa-sha2-512': 'sha512', 'ssh-rsa': 'sha1' };

/** Makes this client's publickey requests with a key file go out signed (see the file's comment). */
export function signAtOnce(client: Client): void {
  const proto = (client as unknown as Internals)._protocol;
  const ask = proto?.authPK;
  if (!proto || typeof ask !== 'function') return;
  proto.authPK = function (this: unknown, username, key, keyAlgo, sign) {
    const k = key as PrivateKeyLike | undefined;
    const algo = typeof keyAlgo === 'string' ? keyAlgo : undefined;
    if (sign === undefined && typeof keyAlgo !== 'function' && k?.isPrivateKey?.() === true && k.sign) {
      const hash = algo === undefined ? undefined : RSA_HASH[algo];
      // A key that cannot sign is left to ssh2's own path (it asks, then reports the signing error as before).
      if (!(k.sign(Buffer.from('probe'), hash) instanceof Error)) {
        const signNow: SignCallback = (data, send) => send(k.sign?.(data, hash) as Buffer);
        return ask.call(this, username, key, keyAlgo, signNow);
      }
    }
    return ask.call(this, username, key, keyAlgo, sign);
  };
}
