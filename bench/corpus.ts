/**
 * The bench's "corpus" section: the diagnosis corpus's score (test/diagnosis-corpus/score.ts), named right / total.
 * Pure and fast (no sandbox): every incident through the diagnosis as debug-stuck-jobs runs it on that evidence.
 */
import { scoreCorpus } from '../test/diagnosis-corpus/score.ts';
import { table } from './table.ts';

export interface CorpusResult {
  total: number;
  right: number;
  topRight: number;
  mixed: { total: number; right: number };
  ms: number;
  misses: Array<{ name: string; problems: string[] }>;
}

export function corpusSection(): CorpusResult {
  const started = performance.now();
  const s = scoreCorpus();
  return { ...s, ms: Math.round(performance.now() - started) };
}

const pct = (n: number, d: number) => (d ? `${Math.round((n / d) * 100)} %` : '—');

/** The section's lines for the printed report. */
export function corpusReport(r: CorpusResult): string[] {
  return [
    `Diagnosis corpus (test/diagnosis-corpus: incidents named right, ${r.ms} ms)`,
    table(
      ['incidents', 'named right', 'top finding right'],
      [
        ['all', `${r.right} / ${r.total} (${pct(r.right, r.total)})`, `${r.topRight} / ${r.total}`],
        ['mixed', `${r.mixed.right} / ${r.mixed.total} (${pct(r.mixed.right, r.mixed.total)})`, ''],
      ],
    ),
    ...(r.misses.length ? ['misses:', ...r.misses.map((m) => `  ${m.name}: ${m.problems.join('; ')}`)] : []),
    '',
  ];
}
