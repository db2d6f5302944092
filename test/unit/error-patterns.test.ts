import { describe, expect, it } from 'vitest';
import {
  BUILTIN_ERROR_PATTERNS,
  compilePatternFile,
  type ErrorPattern,
  logLinesMatching,
  matchPattern,
} from '../../lib/findings/error-patterns.ts';

const FILE = 'patterns.json';

const GOOD = {
  id: 'cuda-oom',
  title: 'the GPU runs out of memory',
  severity: 'critical',
  cause: 'batches too large for the card',
  fix: 'lower BATCH_SIZE in the worker .env and restart it',
  requeueSafe: true,
  match: { error: ['CUDA out of memory', 'OutOfMemoryError'], log: 'torch\\.cuda', jobType: 'embed' },
};

const compile = (value: unknown) => compilePatternFile(JSON.stringify(value), FILE);

describe('compilePatternFile', () => {
  it('compiles a good file into case-insensitive regexes with every field', () => {
    const r = compile({ patterns: [GOOD] });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const [p] = r.patterns;
    expect(p).toMatchObject({
      id: 'cuda-oom',
      title: GOOD.title,
      severity: 'critical',
      cause: GOOD.cause,
      fix: GOOD.fix,
      requeueSafe: true,
      jobType: 'embed',
    });
    expect(p.error).toHaveLength(2);
    expect(p.error[0].test('RuntimeError: cuda OUT OF MEMORY. Tried to allocate')).toBe(true);
    expect(p.log).toHaveLength(1);
    expect(p.log[0].test('TORCH.CUDA.alloc')).toBe(true);
    expect(p.log[0].test('torchXcuda')).toBe(false);
  });

  it('accepts a bare array as well as { patterns }', () => {
    const r = compile([GOOD]);
    expect(r.ok && r.patterns.map((p) => p.id)).toEqual(['cuda-oom']);
  });

  it('defaults severity to warning and requeueSafe to false', () => {
    const { severity: _s, requeueSafe: _r, ...rest } = GOOD;
    const r = compile([rest]);
    expect(r.ok && r.patterns[0].severity).toBe('warning');
    expect(r.ok && r.patterns[0].requeueSafe).toBe(false);
  });

  it('treats only a literal true as requeueSafe', () => {
    const r = compile([{ ...GOOD, requeueSafe: 'yes' }]);
    expect(r.ok && r.patterns[0].requeueSafe).toBe(false);
  });

  it('compiles a list of job types, the fields read and the exclusions', () => {
    const r = compile([
      { ...GOOD, match: { error: 'boom', jobType: ['embed', 'thumbnail'], fields: ['debug'], unless: 'harmless' } },
    ]);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const [p] = r.patterns;
    expect(p.jobType).toEqual(['embed', 'thumbnail']);
    expect(p.fields).toEqual(['debug']);
    expect(p.unless?.map((re) => re.test('HARMLESS boom'))).toEqual([true]);
  });

  it('leaves fields, unless and jobType unset when the file does not name them (the old format)', () => {
    const r = compile([{ ...GOOD, match: { error: 'boom' } }]);
    expect(r.ok && r.patterns[0]).not.toHaveProperty('fields');
    expect(r.ok && r.patterns[0]).not.toHaveProperty('unless');
    expect(r.ok && r.patterns[0]).not.toHaveProperty('jobType');
  });

  it('accepts a pattern that matches only the log', () => {
    const r = compile([{ ...GOOD, match: { log: ['disk full'] } }]);
    expect(r.ok && r.patterns[0].error).toEqual([]);
  });

  const bad: [name: string, text: string, error: RegExp][] = [
    ['bad JSON', '{ "patterns": [ ', /^patterns\.json is not valid JSON \(/],
    [
      'neither an array nor { patterns }',
      '{"pattern": []}',
      /^patterns\.json must hold \{ "patterns": \[ \.\.\. \] \}$/,
    ],
    ['null', 'null', /must hold \{ "patterns"/],
    ['a pattern that is not an object', '[42]', /^patterns\.json: pattern 1 is not an object$/],
    [
      'an id with capitals',
      JSON.stringify([{ ...GOOD, id: 'CudaOOM' }]),
      /pattern 1 \(CudaOOM\): "id" must be lowercase letters, digits and dashes/,
    ],
    ['an id of one character', JSON.stringify([{ ...GOOD, id: 'x' }]), /"id" must be lowercase/],
    ['an id with a space', JSON.stringify([{ ...GOOD, id: 'cuda oom' }]), /"id" must be lowercase/],
    ['no id', JSON.stringify([{ ...GOOD, id: undefined }]), /pattern 1: "id" must be lowercase/],
    ['an empty title', JSON.stringify([{ ...GOOD, title: '  ' }]), /\(cuda-oom\): "title" must be a non-empty string/],
    ['no fix', JSON.stringify([{ ...GOOD, fix: undefined }]), /"fix" must be a non-empty string/],
    [
      'an unknown severity',
      JSON.stringify([{ ...GOOD, severity: 'fatal' }]),
      /"severity" must be info, warning or critical/,
    ],
    [
      'a bad regex',
      JSON.stringify([{ ...GOOD, match: { error: ['(unclosed'] } }]),
      /match\.error "\(unclosed" is not a valid regular expression/,
    ],
    [
      'a bad log regex',
      JSON.stringify([{ ...GOOD, match: { log: '[a-' } }]),
      /match\.log "\[a-" is not a valid regular expression/,
    ],
    [
      'an empty regex',
      JSON.stringify([{ ...GOOD, match: { error: [''] } }]),
      /match\.error entries must be non-empty strings/,
    ],
    [
      'a regex that is not a string',
      JSON.stringify([{ ...GOOD, match: { error: [42] } }]),
      /match\.error entries must be non-empty strings/,
    ],
    [
      'a regex over 500 characters',
      JSON.stringify([{ ...GOOD, match: { error: ['a'.repeat(501)] } }]),
      /non-empty strings/,
    ],
    [
      'no match at all',
      JSON.stringify([{ ...GOOD, match: undefined }]),
      /\(cuda-oom\): needs match\.error or match\.log$/,
    ],
    [
      'an empty match',
      JSON.stringify([{ ...GOOD, match: { error: [], log: [] } }]),
      /needs match\.error or match\.log/,
    ],
    [
      'a jobType that is not a string',
      JSON.stringify([{ ...GOOD, match: { error: 'x', jobType: 3 } }]),
      /match\.jobType must be a string/,
    ],
    [
      'an empty jobType list',
      JSON.stringify([{ ...GOOD, match: { error: 'x', jobType: [] } }]),
      /match\.jobType must be a string or a list of strings/,
    ],
    [
      'a jobType list with a number',
      JSON.stringify([{ ...GOOD, match: { error: 'x', jobType: ['embed', 3] } }]),
      /match\.jobType must be a string or a list of strings/,
    ],
    [
      'an unknown field',
      JSON.stringify([{ ...GOOD, match: { error: 'x', fields: ['error', 'payload'] } }]),
      /match\.fields must be a list of error, debug, log/,
    ],
    [
      'fields that is not a list',
      JSON.stringify([{ ...GOOD, match: { error: 'x', fields: 'error' } }]),
      /match\.fields must be a list/,
    ],
    [
      'a bad unless regex',
      JSON.stringify([{ ...GOOD, match: { error: 'x', unless: ['(x'] } }]),
      /match\.unless "\(x" is not a valid regular expression/,
    ],
    ['a bad second pattern', JSON.stringify([GOOD, { ...GOOD, id: 'Bad' }]), /pattern 2 \(Bad\)/],
  ];
  it.each(bad)('rejects %s, naming the file, the pattern and the field', (_name, text, error) => {
    const r = compilePatternFile(text, FILE);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toMatch(error);
      expect(r.error.startsWith(FILE)).toBe(true);
    }
  });
});

describe('BUILTIN_ERROR_PATTERNS', () => {
  const circular = BUILTIN_ERROR_PATTERNS.find((p) => p.id === 'circular-metadata')!;
  const texts: [name: string, text: string, matches: boolean][] = [
    ["Python's json error", 'ValueError: Circular reference detected', true],
    [
      "Node's JSON.stringify error",
      'TypeError: Converting circular structure to JSON\n    --> starting at object',
      true,
    ],
    ['another error', 'ValueError: Out of range float values are not JSON compliant', false],
  ];
  it.each(texts)('circular-metadata matches %s: %s', (_name, text, matches) => {
    expect(circular.error.some((re) => re.test(text))).toBe(matches);
    expect(circular.log.some((re) => re.test(text))).toBe(matches);
  });

  it('have no global flag, so a regex used twice gives the same answer', () => {
    for (const p of BUILTIN_ERROR_PATTERNS)
      for (const re of [...p.error, ...p.log, ...(p.unless ?? [])]) expect(re.global).toBe(false);
  });

  it('have unique ids, each with a title, a cause and a fix', () => {
    const ids = BUILTIN_ERROR_PATTERNS.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of BUILTIN_ERROR_PATTERNS) {
      const compiled = compilePatternFile(
        JSON.stringify([{ ...p, match: { error: p.error.map((re) => re.source) } }]),
        'builtin.json',
      );
      expect(compiled.ok, p.id).toBe(true);
    }
  });

  it('name import_assets_jsonl in the title of the pattern scoped to it', () => {
    expect(circular.jobType).toBe('import_assets_jsonl');
    expect(circular.title).toMatch(/^import_assets_jsonl /);
  });
});

const job = (job_type: string, error: string | null, debug: Record<string, unknown> | null = null) => ({
  job_type,
  error,
  debug,
});

const pattern = (id: string, over: Partial<ErrorPattern> = {}): ErrorPattern => ({
  id,
  title: id,
  severity: 'warning',
  cause: 'c',
  fix: 'f',
  requeueSafe: false,
  error: [/boom/i],
  log: [],
  ...over,
});

describe('matchPattern', () => {
  const CIRCULAR = 'ValueError: Circular reference detected';

  it('gives a circular error of import_assets_jsonl to circular-metadata, safe to requeue', () => {
    const p = matchPattern(BUILTIN_ERROR_PATTERNS, job('import_assets_jsonl', CIRCULAR), []);
    expect(p?.id).toBe('circular-metadata');
    expect(p?.requeueSafe).toBe(true);
  });

  it('never gives a circular error of another job type to circular-metadata: the generic entry, not safe', () => {
    const p = matchPattern(BUILTIN_ERROR_PATTERNS, job('thumbnail', CIRCULAR), []);
    expect(p?.id).toBe('unstorable-structure');
    expect(p?.requeueSafe).toBe(false);
  });

  it('lets a message outside every scope fall to unknown (undefined)', () => {
    const only = BUILTIN_ERROR_PATTERNS.filter((p) => p.id === 'circular-metadata');
    expect(matchPattern(only, job('thumbnail', CIRCULAR), [])).toBeUndefined();
    expect(matchPattern(BUILTIN_ERROR_PATTERNS, job('import_assets_jsonl', 'KeyError: asset_url'), [])).toBeUndefined();
  });

  it('falls to the next pattern when the first is out of scope', () => {
    const first = pattern('first', { jobType: 'embed' });
    const second = pattern('second');
    expect(matchPattern([first, second], job('thumbnail', 'boom'), [])?.id).toBe('second');
    expect(matchPattern([first, second], job('embed', 'boom'), [])?.id).toBe('first');
  });

  it('takes a list of job types', () => {
    const p = pattern('listed', { jobType: ['embed', 'thumbnail'] });
    expect(matchPattern([p], job('thumbnail', 'boom'), [])?.id).toBe('listed');
    expect(matchPattern([p], job('embed', 'boom'), [])?.id).toBe('listed');
    expect(matchPattern([p], job('import_assets_jsonl', 'boom'), [])).toBeUndefined();
  });

  it("reads the job's error and its log lines by default, not its debug", () => {
    const p = pattern('default');
    expect(matchPattern([p], job('x', null), ['  File "w.py", line 3', 'RuntimeError: boom'])?.id).toBe('default');
    expect(matchPattern([p], job('x', 'fine', { note: 'boom' }), [])).toBeUndefined();
  });

  it('reads only the fields it names', () => {
    const debugOnly = pattern('debug-only', { fields: ['debug'] });
    expect(matchPattern([debugOnly], job('x', null, { step: 'boom' }), [])?.id).toBe('debug-only');
    expect(matchPattern([debugOnly], job('x', 'boom'), ['boom'])).toBeUndefined();
    const errorOnly = pattern('error-only', { fields: ['error'] });
    expect(matchPattern([errorOnly], job('x', null), ['boom'])).toBeUndefined();
  });

  it('does not claim a job whose text matches an unless, and the next pattern may', () => {
    const picky = pattern('picky', { unless: [/harmless/] });
    const any = pattern('any');
    expect(matchPattern([picky, any], job('x', 'boom'), ['harmless retry'])?.id).toBe('any');
    expect(matchPattern([picky, any], job('x', 'boom'), [])?.id).toBe('picky');
  });

  it('takes requeue-safety from the matched pattern only', () => {
    const safe = pattern('safe', { requeueSafe: true, jobType: 'embed' });
    const unsafe = pattern('unsafe');
    expect(matchPattern([safe, unsafe], job('embed', 'boom'), [])?.requeueSafe).toBe(true);
    expect(matchPattern([safe, unsafe], job('thumbnail', 'boom'), [])?.requeueSafe).toBe(false);
  });

  it('lets a user pattern compiled from a file scope itself the same way', () => {
    const r = compilePatternFile(
      JSON.stringify([{ id: 'mine', title: 't', cause: 'c', fix: 'f', match: { error: 'boom', jobType: ['embed'] } }]),
      'p.json',
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(matchPattern([...BUILTIN_ERROR_PATTERNS, ...r.patterns], job('embed', 'boom'), [])?.id).toBe('mine');
    expect(matchPattern([...BUILTIN_ERROR_PATTERNS, ...r.patterns], job('thumbnail', 'boom'), [])).toBeUndefined();
  });
});

describe('logLinesMatching', () => {
  it("returns the tail's lines that match the pattern's log regexes and none of its unless", () => {
    const p = pattern('p', { log: [/boom/], unless: [/storage\/v1/] });
    expect(logLinesMatching(p, ['ok', 'boom at /rest/v1', 'boom at /storage/v1/object/x'])).toEqual([
      'boom at /rest/v1',
    ]);
  });

  it('finds nothing for a pattern without log regexes', () => {
    expect(logLinesMatching(pattern('p'), ['boom'])).toEqual([]);
  });
});
