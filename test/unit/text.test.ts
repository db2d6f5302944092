import { describe, expect, it } from 'vitest';
import { clip, countText } from '../../lib/core/text.ts';
import { makeRedactor } from '../../lib/io/redact.ts';

describe('clip', () => {
  it.each([
    ['short text stays as it is', 'hello world', 20, 'hello world'],
    ['a cut between words keeps the words', 'one two three four', 9, 'one two…'],
    ['a cut inside a word drops the word', 'one two three four', 10, 'one two…'],
    ['one giant token says how long it was', 'x'.repeat(50), 10, '… (50 chars)'],
  ])('%s', (_name, text, max, expected) => {
    expect(clip(text, max)).toBe(expected);
  });

  it('never leaves part of a key behind for the redactor to miss', () => {
    const key = `sb_secret_${'Ab3'.repeat(11)}`;
    const line = `2026-01-01T00:00:00Z ERROR upstream said: bad key ${key} rejected`;
    const redact = makeRedactor([key]);
    for (let max = 20; max < line.length; max++) {
      const shown = redact(clip(line, max));
      expect(shown).not.toContain(key.slice(0, 12));
    }
  });
});

describe('countText', () => {
  it.each([
    [0, false, '0'],
    [52_341, false, '52341'],
    [1_001, true, 'about 1,000'],
    [52_341, true, 'about 52,000'],
    [9_912_345, true, 'about 9,900,000'],
    [87, true, 'about 87'],
  ])('%s (estimated: %s) is %s', (n, estimated, text) => {
    expect(countText(n, estimated)).toBe(text);
  });
});
