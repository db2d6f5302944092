import { describe, expect, it } from 'vitest';
import { BUILTIN_ERROR_PATTERNS, compilePatternFile } from '../../lib/findings/error-patterns.ts';

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
    for (const p of BUILTIN_ERROR_PATTERNS) for (const re of [...p.error, ...p.log]) expect(re.global).toBe(false);
  });
});
