/** Plain-text tables and number formats for the benchmark's output. Pure. */
import type { Summary } from './stats.ts';

/** Left-aligned first column, right-aligned numbers, columns separated by two spaces. */
export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((cell, i) => (i === 0 ? (cell ?? '').padEnd(widths[i]) : (cell ?? '').padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** `median [min–max]`, or just the value when every run gave the same. */
export function fmt(s: Summary | undefined, unit = '', digits = 0): string {
  if (!s?.n) return '—';
  const f = (v: number) => v.toFixed(digits);
  return s.min === s.max ? `${f(s.median)}${unit}` : `${f(s.median)}${unit} [${f(s.min)}–${f(s.max)}]`;
}

export function kb(bytes: Summary | undefined): string {
  if (!bytes?.n) return '—';
  const k = (v: number) => (v / 1024).toFixed(1);
  return bytes.min === bytes.max ? `${k(bytes.median)} KB` : `${k(bytes.median)} KB [${k(bytes.min)}–${k(bytes.max)}]`;
}

export function ratio(x: number, y: number): string {
  return Number.isFinite(x) && Number.isFinite(y) && y > 0 ? `${(x / y).toFixed(2)}x` : '—';
}
