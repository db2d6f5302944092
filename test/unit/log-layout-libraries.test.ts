/**
 * A job's lines in logs written by the logging libraries real workers use (python-json-logger, structlog, loguru):
 * genuine output captured in test/fixtures/log-layouts (see its README). Job A fails with a real traceback among
 * polls and job B's records; B never gets A's traceback and A gets it whole, ending in the exception line.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { detectLayout, linesOfJob } from '../../lib/evidence/log-layout.ts';
import { BUILTIN_ERROR_PATTERNS, matchPattern } from '../../lib/findings/error-patterns.ts';
import { storyLines } from '../../lib/findings/log-story.ts';

const A = '7f3c2a10-0000-4000-8000-00000000000a';
const B = '9b1e4d20-0000-4000-8000-00000000000b';
const EXCEPTION = 'ValueError: Circular reference detected';

const read = (name: string) => readFileSync(new URL(`../fixtures/log-layouts/${name}`, import.meta.url), 'utf8');
/** As the Spark probe hands the log over: split on \n, empty lines dropped. */
const tailOf = (text: string) => text.split('\n').filter((l) => l !== '');

const CASES = [
  // The traceback is the one traceback.format_exc() gives: A's lines end with it exactly.
  { name: 'python-json-logger', kind: 'json-lines', sameTraceback: true },
  { name: 'structlog-json', kind: 'json-lines', sameTraceback: true },
  { name: 'structlog-console', kind: 'timestamped', sameTraceback: true },
  // loguru formats its own traceback (frames from where the logger was called, `> File`, variable annotations).
  { name: 'loguru-serialized', kind: 'json-lines', sameTraceback: false },
  { name: 'loguru-default', kind: 'timestamped', sameTraceback: false },
] as const;

describe('logs written by python-json-logger, structlog and loguru', () => {
  for (const c of CASES) {
    for (const eol of ['LF', 'CRLF'] as const) {
      it(`${c.name}, ${eol}`, () => {
        const log = read(`${c.name}.log.txt`);
        const tail = tailOf(eol === 'CRLF' ? log.replace(/\n/g, '\r\n') : log);
        const layout = detectLayout(tail);
        expect(layout).toEqual({ kind: c.kind, also: [], ansi: false, crlf: eol === 'CRLF' });

        const a = linesOfJob(A, tail);
        const b = linesOfJob(B, tail);
        expect(a[0]).toMatch(/INFO.*claimed/i);
        expect(a[1]).toMatch(/ERROR.*failed/i);
        expect(a).toContain('Traceback (most recent call last):');
        expect(a.at(-1)).toBe(EXCEPTION);
        if (c.sameTraceback) expect(a.slice(2)).toEqual(tailOf(read(`${c.name}.traceback.txt`)));
        expect(b).toHaveLength(2);
        expect(b.join('\n')).not.toMatch(/Traceback|File "|ValueError|failed|polling/);
        expect(b[1]).toMatch(/done/);
        expect(a.join('\n')).not.toMatch(/polling|\r/);

        const job = { job_type: 'import_assets_jsonl', error: null, debug: null };
        expect(matchPattern(BUILTIN_ERROR_PATTERNS, job, a)?.id).toBe('circular-metadata');
        expect(matchPattern(BUILTIN_ERROR_PATTERNS, job, b)).toBeUndefined();
        const story = storyLines(a);
        expect(story[0]).toBe(a[1]);
        expect(story).toContain('    return json.dumps({"metadata": row})');
        expect(story.at(-1)).toBe(EXCEPTION);
      });
    }
  }
});

describe('the failure line in the story', () => {
  it("structlog's console level column marks it, whatever the event says", () => {
    // The captured log with the event reworded: only the `[error    ]` column says it is the failure.
    const tail = tailOf(read('structlog-console.log.txt').replace('job failed', 'job stopped'));
    const a = linesOfJob(A, tail);
    expect(a[1]).toMatch(/\[error {4}\] job stopped/);
    expect(storyLines(a)[0]).toBe(a[1]);
  });
});
