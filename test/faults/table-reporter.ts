/**
 * Prints the table of fault cases tried and held at the end of a vitest run (only when the run included some):
 * one row per case from `task.meta.faultCase`, totals per group and overall. The same rows go to a JSON file in the
 * temporary folder (never into the repository), for whoever wants the figures.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';
import type { FaultCaseMeta } from './harness.ts';

interface Row extends FaultCaseMeta {
  state: 'held' | 'FAILED' | 'pending' | 'known';
  why?: string;
}

export const RESULTS_FILE = path.join(os.tmpdir(), 'hd-worker-runbooks-faults.json');

const GROUP_ORDER = [
  'Supabase',
  'SSH',
  'Retries',
  'Writes',
  'Fix gate',
  'Bad input',
  'Hostile text',
  'Secrets',
  'Races',
  'Worker identity',
];

function cell(text: string, width: number): string {
  const t = text.replace(/\s+/g, ' ');
  return t.length > width ? `${t.slice(0, width - 1)}…` : t.padEnd(width);
}

export function renderTable(rows: readonly Row[]): string {
  const out: string[] = [];
  const rank = (g: string) => (GROUP_ORDER.includes(g) ? GROUP_ORDER.indexOf(g) : GROUP_ORDER.length);
  const groups = [...new Set(rows.map((r) => r.group))].sort((a, b) => rank(a) - rank(b));
  const w = { state: 7, runbook: 17, name: 46, expected: 40, observed: 46 };
  out.push('', 'Fault harness: the cases tried and whether each held', '');
  out.push(
    `${cell('', w.state)} ${cell('runbook', w.runbook)} ${cell('case', w.name)} ${cell('expected', w.expected)} observed`,
  );
  for (const g of groups) {
    const inGroup = rows.filter((r) => r.group === g);
    const held = inGroup.filter((r) => r.state === 'held').length;
    out.push('', `${g} (${held}/${inGroup.length} held)`);
    for (const r of inGroup) {
      const mark =
        r.state === 'held' ? '✔ held' : r.state === 'pending' ? '- pend' : r.state === 'known' ? '! known' : '✖ FAIL';
      out.push(
        `${cell(mark, w.state)} ${cell(r.runbook, w.runbook)} ${cell(r.name, w.name)} ${cell(r.expected, w.expected)} ${cell(r.observed ?? '', w.observed)}`,
      );
      if (r.why) out.push(`${' '.repeat(w.state + 1)}  ↳ ${r.why}`);
      if (r.state === 'known' && r.known) out.push(`${' '.repeat(w.state + 1)}  ↳ known issue: ${r.known}`);
    }
  }
  const held = rows.filter((r) => r.state === 'held').length;
  const failed = rows.filter((r) => r.state === 'FAILED').length;
  const pending = rows.filter((r) => r.state === 'pending').length;
  const known = rows.filter((r) => r.state === 'known').length;
  out.push(
    '',
    `Totals: ${rows.length} cases tried, ${held} held, ${failed} failed${known ? `, ${known} known issue${known === 1 ? '' : 's'} (not held)` : ''}${pending ? `, ${pending} pending` : ''} (${groups
      .map((g) => `${g} ${rows.filter((r) => r.group === g).length}`)
      .join(', ')})`,
    `(rows also in ${RESULTS_FILE})`,
    '',
  );
  return out.join('\n');
}

export default class FaultTableReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const rows: Row[] = [];
    for (const m of testModules) {
      for (const t of m.children.allTests()) {
        const meta = t.meta().faultCase;
        if (!meta) continue;
        const result = t.result();
        // A known issue runs as `it.fails`: passing means it still fails as described.
        const state =
          result.state === 'passed'
            ? meta.known
              ? 'known'
              : 'held'
            : result.state === 'failed'
              ? 'FAILED'
              : 'pending';
        const why = result.state === 'failed' ? result.errors?.[0]?.message?.split('\n')[0]?.slice(0, 160) : undefined;
        rows.push({ ...meta, state, ...(why ? { why } : {}) });
      }
    }
    if (!rows.length) return;
    process.stdout.write(renderTable(rows));
    try {
      writeFileSync(RESULTS_FILE, `${JSON.stringify(rows, null, 2)}\n`);
    } catch {
      // The table on stdout is what counts; the file is a convenience.
    }
  }
}
