/** The lines that carry a job's story, cut from genuine tracebacks (test/fixtures/tracebacks, made by the libraries). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { storyLines } from '../../lib/findings/log-story.ts';

const traceback = (name: string) =>
  readFileSync(new URL(`../fixtures/tracebacks/${name}.txt`, import.meta.url), 'utf8')
    .trimEnd()
    .split('\n');

describe('storyLines', () => {
  it("Python's json: the failure line, the worker's own frame and source line, the exception line", () => {
    const lines = [
      '2026-12-01T10:00:00Z ERROR job 7f3c failed: ValueError: Circular reference detected',
      ...traceback('json-circular'),
    ];
    expect(storyLines(lines)).toEqual([
      '2026-12-01T10:00:00Z ERROR job 7f3c failed: ValueError: Circular reference detected',
      '  File "generate.py", line 122, in json_circular',
      '    json.dumps(circular())',
      'ValueError: Circular reference detected',
    ]);
  });

  it('a library frame is never taken for the one that raised (requests, deep in site-packages)', () => {
    const lines = traceback('requests-connection-refused');
    const story = storyLines(lines);
    expect(story[0]).toBe('Traceback (most recent call last):');
    expect(story.some((l) => /site-packages|dist-packages|\/usr\/lib\/python/.test(l))).toBe(false);
    expect(story.at(-1)).toMatch(/^requests\.exceptions\.ConnectionError: /);
    expect(story.length).toBeLessThanOrEqual(4);
  });

  it("Node's stack: the worker's own frame, not node:internal", () => {
    let stack = '';
    try {
      const o: Record<string, unknown> = {};
      o.self = o;
      JSON.stringify(o);
    } catch (e) {
      stack = (e as Error).stack ?? '';
    }
    const lines = ['2026-12-01T10:00:00Z ERROR job 7f3c failed', ...stack.split('\n')];
    const story = storyLines(lines);
    expect(story[0]).toContain('ERROR job 7f3c failed');
    expect(story.some((l) => l.includes('log-story.test.ts'))).toBe(true);
    expect(story.some((l) => l.includes('node:internal'))).toBe(false);
  });

  it('a job with no failure in its lines keeps its first two', () => {
    expect(
      storyLines(['10:00 INFO job 7f3c claimed', '10:00 INFO job 7f3c step 1', '10:01 INFO job 7f3c step 2']),
    ).toEqual(['10:00 INFO job 7f3c claimed', '10:00 INFO job 7f3c step 1']);
  });
});
