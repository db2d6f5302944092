import { describe, expect, it } from 'vitest';
import type { Finding } from '../../lib/core/finding.ts';
import { type Output, wantsColor } from '../../lib/io/output.ts';
import { REDACTED } from '../../lib/io/redact.ts';
import type { CheckResult } from '../../lib/io/steps.ts';
import { opaqueKey, recordingOutput } from '../helpers/fake-ports.ts';

const ESC = '\x1b';
const SECRET = opaqueKey('secret');

describe('wantsColor', () => {
  const cases: [
    name: string,
    isTTY: boolean | undefined,
    env: Record<string, string | undefined>,
    expected: boolean,
  ][] = [
    ['a terminal', true, {}, true],
    ['no terminal', false, {}, false],
    ['an unknown stream', undefined, {}, false],
    ['a terminal with NO_COLOR=1', true, { NO_COLOR: '1' }, false],
    ['a terminal with NO_COLOR set to anything', true, { NO_COLOR: 'false' }, false],
    ['a terminal with an empty NO_COLOR', true, { NO_COLOR: '' }, true],
    ['a terminal with TERM=dumb', true, { TERM: 'dumb' }, false],
    ['no terminal with FORCE_COLOR=1', false, { FORCE_COLOR: '1' }, true],
    ['TERM=dumb with FORCE_COLOR=1', true, { TERM: 'dumb', FORCE_COLOR: '1' }, true],
    ['no terminal with FORCE_COLOR=0', false, { FORCE_COLOR: '0' }, false],
    ['FORCE_COLOR=1 and NO_COLOR=1 (NO_COLOR wins)', true, { FORCE_COLOR: '1', NO_COLOR: '1' }, false],
  ];
  it.each(cases)('on %s → %s', (_name, isTTY, env, expected) => {
    expect(wantsColor(isTTY, env)).toBe(expected);
  });
});

const finding = (text: string): Finding => ({
  id: 'wrong-key-role',
  severity: 'critical',
  title: `title ${text}`,
  evidence: [`evidence ${text}`, 'plain evidence'],
  cause: `cause ${text}`,
  fix: `fix ${text}`,
});

const failedCheck = (text: string): CheckResult => ({
  id: 'c',
  title: `check ${text}`,
  status: 'failed',
  summary: `summary ${text}`,
  details: [`detail ${text}`],
  fix: `fix ${text}`,
});

/** Every method that prints, each given the same text. */
const METHODS: [name: string, call: (out: Output, text: string) => void][] = [
  ['line', (out, t) => out.line(t)],
  ['heading', (out, t) => out.heading(t)],
  ['check (title, summary, details, fix)', (out, t) => out.check(failedCheck(t))],
  ['check with ok details in verbose mode', (out, t) => out.check({ ...failedCheck(t), status: 'ok' })],
  ['finding (title, evidence, cause, fix)', (out, t) => out.finding(finding(t), 0)],
  ['progress', (out, t) => out.progress(`title ${t}`)()],
];

describe('createOutput redaction', () => {
  for (const color of [false, true]) {
    it.each(METHODS)(`never prints a registered secret through %s (color ${color})`, (_name, call) => {
      const rec = recordingOutput({ color, spinner: true, verbose: true });
      rec.out.addSecret(SECRET);
      call(rec.out, `${SECRET} and base64 ${Buffer.from(SECRET).toString('base64')}`);
      expect(rec.text()).not.toContain(SECRET);
      expect(rec.text()).not.toContain(Buffer.from(SECRET).toString('base64'));
      expect(rec.text()).toContain(REDACTED);
    });
  }

  it('redacts every occurrence in a finding: title, each evidence line, cause and fix', () => {
    const rec = recordingOutput();
    rec.out.addSecret(SECRET);
    rec.out.finding(finding(SECRET), 2);
    const text = rec.text();
    expect(text.split(REDACTED)).toHaveLength(5);
    expect(text).toContain('3. CRITICAL');
    expect(text).toContain('plain evidence');
  });

  it('redacts text given to redact() for files: registered values, and secret shapes before any is registered', () => {
    const rec = recordingOutput();
    const plain = 'correct-horse-battery-staple';
    expect(rec.out.redact(`k=${plain}`)).toBe(`k=${plain}`);
    expect(rec.out.redact(`k=${SECRET}`)).toBe(`k=${REDACTED}`);
    rec.out.addSecret(plain);
    expect(rec.out.redact(`k=${plain}`)).toBe(`k=${REDACTED}`);
  });

  it('ignores values too short to be secrets, and undefined', () => {
    const rec = recordingOutput();
    rec.out.addSecret('short');
    rec.out.addSecret(undefined);
    rec.out.addSecret('');
    rec.out.line('a short word');
    expect(rec.text()).toBe('a short word\n');
  });

  it('keeps redacting secrets registered earlier when more are added', () => {
    const other = opaqueKey('publishable');
    const rec = recordingOutput();
    rec.out.addSecret(SECRET);
    rec.out.addSecret(other);
    rec.out.line(`${SECRET} ${other}`);
    expect(rec.text()).toBe(`${REDACTED} ${REDACTED}\n`);
  });
});

describe('createOutput colour', () => {
  it.each(METHODS)('writes no ANSI escape through %s when colour is off', (_name, call) => {
    const rec = recordingOutput({ color: false, spinner: false, verbose: true });
    call(rec.out, 'text');
    expect(rec.text()).not.toContain(ESC);
  });

  it('colours the status glyph and the severity when colour is on', () => {
    const rec = recordingOutput({ color: true });
    rec.out.check({ id: 'c', title: 'T', status: 'failed', summary: 's' });
    rec.out.finding(finding('x'), 0);
    expect(rec.text()).toContain(`${ESC}[31m✖${ESC}[0m T: s`);
    expect(rec.text()).toContain(`${ESC}[31mCRITICAL${ESC}[0m`);
  });

  it('shows no progress indicator without a spinner, and clears it before the next line with one', () => {
    const without = recordingOutput({ color: true, spinner: false });
    without.out.progress('Read the queue')();
    expect(without.text()).toBe('');

    const withSpinner = recordingOutput({ color: true, spinner: true });
    withSpinner.out.progress('Read the queue');
    withSpinner.out.line('next');
    expect(withSpinner.writes[0]).toContain('… Read the queue');
    expect(withSpinner.writes[1]).toBe('\r\x1b[2K');
    expect(withSpinner.writes[2]).toBe('next\n');
  });
});

describe('createOutput check lines', () => {
  const ok: CheckResult = {
    id: 'c',
    title: 'Read the queue',
    status: 'ok',
    summary: '3 queued',
    details: ['oldest 5 min'],
    fix: 'nothing to do',
    durationMs: 12.4,
  };

  it('hides the details and the timing of an ok check unless verbose', () => {
    const rec = recordingOutput({ verbose: false });
    rec.out.check(ok);
    expect(rec.text()).toBe('✔ Read the queue: 3 queued\n');
  });

  it('shows the details and the timing of an ok check when verbose', () => {
    const rec = recordingOutput({ verbose: true });
    rec.out.check(ok);
    expect(rec.text()).toBe('✔ Read the queue: 3 queued (12 ms)\n    oldest 5 min\n');
  });

  it('shows the details and the fix of a warning even without verbose', () => {
    const rec = recordingOutput({ verbose: false });
    rec.out.check({ ...ok, status: 'warning' });
    expect(rec.text()).toBe('! Read the queue: 3 queued\n    oldest 5 min\n    → nothing to do\n');
  });

  it('shows no fix for a skipped check', () => {
    const rec = recordingOutput();
    rec.out.check({ id: 'c', title: 'Spark', status: 'skipped', summary: 'SPARK_HOST is not set', fix: 'set it' });
    expect(rec.text()).toBe('- Spark: SPARK_HOST is not set\n');
  });
});
