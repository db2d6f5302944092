/** Lines fit the terminal: wrapped at spaces with a hanging indent, words never cut, commands never broken. */
import { describe, expect, it } from 'vitest';
import { createOutput } from '../../lib/io/output.ts';
import { wrapLine } from '../../lib/io/wrap.ts';

const strip = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

function printed(columns: number | undefined, color = false) {
  const chunks: string[] = [];
  const out = createOutput({
    write: (t) => chunks.push(t),
    color,
    spinner: false,
    verbose: false,
    columns,
    wrap: wrapLine,
  });
  return { out, text: () => chunks.join(''), lines: () => strip(chunks.join('')).split('\n') };
}

const CAUSE =
  'the worker puts a whole parsed object (one that refers to itself, or a whole payload) into metadata.source_line, which cannot be serialised to JSON';

describe('wrapping to the terminal width', () => {
  it('a finding at 80 columns: every line fits, no word is cut, continuation lines hang under their label', () => {
    const { out, lines } = printed(80);
    out.finding(
      {
        id: 'circular-metadata',
        severity: 'critical',
        title: 'import_assets_jsonl writes a circular structure into metadata',
        evidence: [
          '2 failed import_assets_jsonl jobs in the last 24 h with "Circular reference detected" in their error',
        ],
        cause: CAUSE,
        fix: 'store only a small flat subset as source_line, deploy the worker, then requeue the failed jobs',
      },
      0,
    );
    const all = lines().filter(Boolean);
    for (const l of all) expect(l.length).toBeLessThanOrEqual(80);
    const words = (t: string) => t.split(/\s+/).filter((w) => w && w !== '·');
    // The same words, in order: nothing cut, nothing lost.
    expect(words(all.join(' '))).toEqual(
      words(
        `1. CRITICAL import_assets_jsonl writes a circular structure into metadata [circular-metadata] · 2 failed import_assets_jsonl jobs in the last 24 h with "Circular reference detected" in their error cause: ${CAUSE} fix: store only a small flat subset as source_line, deploy the worker, then requeue the failed jobs`,
      ),
    );
    const causeAt = all.findIndex((l) => l.startsWith('   cause: '));
    expect(all[causeAt + 1]).toMatch(/^ {10}\S/);
    const evidenceAt = all.findIndex((l) => l.startsWith('   · '));
    expect(all[evidenceAt + 1]).toMatch(/^ {5}\S/);
  });

  it('a pasteable command is never broken across lines, even when it is longer than the terminal', () => {
    const command =
      "npx zx runbooks/requeue.mts --config /home/alice/incidents/.env --id 3f1c0e2a-0000-4000-8000-000000000001,3f1c0e2a-0000-4000-8000-000000000002 --reason 'circular-metadata fixed'";
    const wrapped = wrapLine(`  when fixed: ${command}`, 80, 16);
    const lines = wrapped.split('\n');
    expect(lines).toEqual(['  when fixed:', `                ${command}`]);
    expect(wrapLine(`fix: restart it (${'x'.repeat(10)}) then ssh -p 2222 sparkuser@100.64.0.7`, 80, 5)).toBe(
      `fix: restart it (${'x'.repeat(10)}) then ssh -p 2222 sparkuser@100.64.0.7`,
    );
  });

  it('the first line uses the whole width: a label and a path that fit stay on one line', () => {
    const line = 'audit file: /root/.local/state/hd-worker-runbooks/requeue-audit.jsonl';
    expect(wrapLine(line, 80, 12)).toBe(line);
    const long = `cause: ${'word '.repeat(30).trim()}`;
    const [first, second] = wrapLine(long, 80, 7).split('\n');
    expect(first.length).toBeGreaterThan(74);
    expect(second).toMatch(/^ {7}word/);
  });

  it('colours are not counted as width, and survive the wrap', () => {
    const { out, text } = printed(40, true);
    out.check({
      id: 'x',
      title: 'Free disk on Spark',
      status: 'warning',
      summary: 'only 512 MB free (97% used) on /srv with more words',
    });
    const lines = strip(text()).split('\n').filter(Boolean);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(40);
    expect(lines[1]).toMatch(/^ {2}\S/);
    expect(text()).toContain('\x1b[33m!\x1b[0m');
  });

  it('the progress line stays on one row, so clearing it leaves nothing behind', () => {
    const chunks: string[] = [];
    const out = createOutput({
      write: (t) => chunks.push(t),
      color: false,
      spinner: true,
      verbose: false,
      columns: 40,
    });
    const stop = out.progress('Query Supabase from this machine · Connect to Spark and probe the worker');
    expect(chunks.join('')).toHaveLength(39);
    expect(chunks.join('')).toMatch(/^… Query Supabase .*…$/);
    stop();
    expect(chunks.at(-1)).toBe('\r\x1b[2K');
  });

  it('without a terminal width (a pipe, a file, CI logs) nothing is wrapped', () => {
    const { out, text } = printed(undefined);
    out.line(`cause: ${CAUSE}`);
    expect(text()).toBe(`cause: ${CAUSE}\n`);
  });
});
