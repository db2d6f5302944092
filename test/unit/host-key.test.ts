/** The verdict on the host key Spark presents, and the verifier that keeps the accepted key for re-keys. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { SshFailure } from '../../lib/core/ports.ts';
import { createHostVerifier, type HostKeyPolicy, judgeHostKey } from '../../lib/io/ssh/host-key.ts';
import { fingerprintSha256, keyTypeOfBlob, parseKnownHosts } from '../../lib/io/ssh/known-hosts.ts';

/** A syntactically valid public key blob (no crypto is done with it). */
function fakeBlob(seed: string): Buffer {
  const type = Buffer.from('ssh-ed25519');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(type.length);
  return Buffer.concat([length, type, Buffer.from([0, 0, 0, 32]), createHash('sha256').update(seed).digest()]);
}

const A = fakeBlob('a');
const B = fakeBlob('b');
const TARGET = { host: 'spark', port: 2222, user: 'sparkuser', source: 'SPARK_HOST in .env' };
const knownHosts = (blob: Buffer, marker = '') =>
  parseKnownHosts(`${marker}[spark]:2222 ${keyTypeOfBlob(blob)} ${blob.toString('base64')}\n`);
const policy = (over: Partial<HostKeyPolicy> = {}): HostKeyPolicy => ({
  target: TARGET,
  knownHostsPath: '~/.ssh/known_hosts',
  ...over,
});

describe('judgeHostKey', () => {
  it.each([
    ['the pinned key', policy({ pinned: fingerprintSha256(A) }), A, true],
    ['the key known_hosts records', policy({ knownHosts: knownHosts(A) }), A, true],
  ])('accepts %s', (_, p, blob, accept) => {
    expect(judgeHostKey(p, blob).accept).toBe(accept);
  });

  it.each([
    [
      'another key than the pin',
      policy({ pinned: fingerprintSha256(A) }),
      'host-key-mismatch',
      /pinned SPARK_HOST_KEY_SHA256/,
    ],
    ['another key than known_hosts', policy({ knownHosts: knownHosts(A) }), 'host-key-mismatch', /man-in-the-middle/],
    ['a revoked key', policy({ knownHosts: knownHosts(B, '@revoked ') }), 'host-key-revoked', /@revoked/],
    ['an unknown host', policy(), 'host-key-unknown', /is not in ~\/\.ssh\/known_hosts/],
  ])('refuses %s', (_, p, kind, message) => {
    const verdict = judgeHostKey(p, B);
    expect(verdict.accept).toBe(false);
    if (verdict.accept) return;
    expect(verdict.failure).toMatchObject({ kind, presentedFingerprint: fingerprintSha256(B) });
    expect(verdict.failure.message).toMatch(message);
    expect(verdict.ask).toBe(false);
  });

  it('asks about an unknown host only when someone can answer', () => {
    const verdict = judgeHostKey(policy({ onUnknownHost: async () => true }), B);
    expect(verdict).toMatchObject({ accept: false, ask: true, failure: { kind: 'host-key-unknown' } });
  });
});

describe('createHostVerifier', () => {
  function harness(p: HostKeyPolicy) {
    const refused: SshFailure[] = [];
    const verdicts: boolean[] = [];
    let settled = false;
    let paused = 0;
    const v = createHostVerifier(p, {
      refuse: (failure, verify) => {
        refused.push(failure);
        verify(false);
        settled = true;
      },
      pauseTimer: () => paused++,
      resumeTimer: () => paused--,
      settled: () => settled,
    });
    const present = (blob: Buffer) => v.hostVerifier(blob, (ok) => verdicts.push(ok));
    return { v, present, refused, verdicts, paused: () => paused, settle: () => (settled = true) };
  }

  it('keeps the accepted key and refuses another one on a re-key', () => {
    const h = harness(policy({ knownHosts: knownHosts(A) }));
    h.present(A);
    h.present(A);
    h.present(B);
    expect(h.verdicts).toEqual([true, true, false]);
    expect(h.v.accepted()).toBe(fingerprintSha256(A));
    expect(h.refused[0].message).toMatch(/different host key .* while re-keying/);
  });

  it('pauses the connect timer while the operator decides, and takes their yes', async () => {
    const h = harness(policy({ onUnknownHost: async () => true }));
    h.present(B);
    expect(h.paused()).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(h.verdicts).toEqual([true]);
    expect(h.paused()).toBe(0);
    expect(h.v.accepted()).toBe(fingerprintSha256(B));
  });

  it('refuses a key the operator declines, or one whose decider fails', async () => {
    for (const decider of [async () => false, async () => Promise.reject(new Error('tty gone'))]) {
      const h = harness(policy({ onUnknownHost: decider }));
      h.present(B);
      await new Promise((r) => setImmediate(r));
      expect(h.verdicts).toEqual([false]);
      expect(h.refused[0].message).toMatch(/and the operator declined it$/);
    }
  });

  it('does nothing with an answer that comes after the connection ended', async () => {
    const h = harness(policy({ onUnknownHost: async () => true }));
    h.present(B);
    h.settle();
    await new Promise((r) => setImmediate(r));
    expect(h.verdicts).toEqual([]);
    expect(h.v.accepted()).toBeUndefined();
  });
});
