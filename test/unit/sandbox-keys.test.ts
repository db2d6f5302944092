import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { generateParsableKeyPair, generateSparkKeys } from '../../sandbox/spark/keys.ts';

const { utils } = ssh2;

describe('sandbox keys', () => {
  // ssh2's own generator makes about 1 ed25519 key in 270-330 that its parser rejects (mscdex/ssh2 #1390, #1513);
  // at 3,000 keys, a generator without the check fails this test with near certainty (1 - (1 - 1/330)^3000).
  it('every one of 3,000 generated ed25519 pairs parses, both halves', () => {
    const failures: string[] = [];
    for (let i = 0; i < 3_000; i++) {
      const pair = generateParsableKeyPair('ed25519');
      for (const half of [pair.private, pair.public]) {
        const parsed = utils.parseKey(half);
        if (parsed instanceof Error) failures.push(`${i}: ${parsed.message}`);
        else if ((Array.isArray(parsed) ? parsed[0] : parsed)?.type !== 'ssh-ed25519')
          failures.push(`${i}: wrong type`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('the sandbox pair (host and client) parses and carries the comments', () => {
    for (let i = 0; i < 200; i++) {
      const keys = generateSparkKeys({ host: 'spark-host', client: 'sparkuser@laptop' });
      expect(utils.parseKey(keys.host.private)).not.toBeInstanceOf(Error);
      expect(utils.parseKey(keys.client.private)).not.toBeInstanceOf(Error);
      expect(keys.host.public).toMatch(/^ssh-ed25519 \S+ spark-host$/);
      expect(keys.client.public).toMatch(/^ssh-ed25519 \S+ sparkuser@laptop$/);
    }
  });

  it('an encrypted key parses with its passphrase and not without it', () => {
    const pair = generateParsableKeyPair('ed25519', { passphrase: 'correct horse', cipher: 'aes256-ctr', rounds: 4 });
    expect(utils.parseKey(pair.private, 'correct horse')).not.toBeInstanceOf(Error);
    expect(utils.parseKey(pair.private)).toBeInstanceOf(Error);
  });
});
