/**
 * The finding table itself (lib/findings/table.ts): ids, what the run makes of them (exit 2, scope, root-cause rank,
 * the typos that may explain them), the README's findings list, and how the table runs its entries.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../lib/core/finding.ts';
import { DEFAULT_RULES } from '../../lib/core/stuck-rules.ts';
import type { Evidence } from '../../lib/evidence/evidence.ts';
import { BUILTIN_ERROR_PATTERNS } from '../../lib/findings/error-patterns.ts';
import { byCause } from '../../lib/findings/rank.ts';
import type { FindingRule, TableEntry } from '../../lib/findings/rule.ts';
import {
  BLOCKS_RUN_IDS,
  FINDING_RULES,
  FINDING_TABLE,
  isRule,
  rootCauseOf,
  ruleFor,
  runEntries,
} from '../../lib/findings/table.ts';
import { COULD_NOT_RUN_IDS, exitCodeFor } from '../../lib/flows/run.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ids = FINDING_RULES.map((r) => r.id);

/** The ids in README.md's "## Findings" table (first column, every `id` in it). */
function readmeIds(): Set<string> {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## Findings$/m)[1]?.split(/^#{2,3} /m)[0] ?? '';
  const firstColumns = section
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) => l.split('|')[1]);
  return new Set(firstColumns.flatMap((c) => [...c.matchAll(/`([a-z0-9-]+)`/g)].map((m) => m[1])));
}

/** Finding ids written as literals (`id: '…'`) outside lib/findings: the requeue action's own findings. */
function idsMadeOutsideTheTable(): Set<string> {
  const files = readdirSync(path.join(ROOT, 'lib'), { recursive: true, encoding: 'utf8' }).filter(
    (f) => f.endsWith('.ts') && !f.startsWith(`findings${path.sep}`),
  );
  const text = files.map((f) => readFileSync(path.join(ROOT, 'lib', f), 'utf8')).join('\n');
  return new Set([...text.matchAll(/\bid: '([a-z0-9-]+)',\s*\n\s*severity:/g)].map((m) => m[1]));
}

describe('the finding table', () => {
  it('has one entry per id, and every id is stable-looking (lowercase, dashes)', () => {
    expect(ids.length).toBeGreaterThan(25);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[a-z0-9][a-z0-9-]+$/);
  });

  it("lists every id of the table and of the built-in failure patterns in README.md's findings, and no other", () => {
    const readme = readmeIds();
    const made = new Set([...ids, ...BUILTIN_ERROR_PATTERNS.map((p) => p.id)]);
    expect([...made].filter((id) => !readme.has(id))).toEqual([]);
    // The rest of the README's list is made by the requeue action itself, not by rules over evidence.
    const outside = idsMadeOutsideTheTable();
    const rest = [...readme].filter((id) => !made.has(id));
    expect(rest.filter((id) => !outside.has(id))).toEqual([]);
    expect(rest).toEqual(
      expect.arrayContaining(['fix-not-deployed', 'requeue-skipped', 'requeue-failed-again', 'requeue-not-picked-up']),
    );
  });

  it('makes exactly the could-not-run findings block the run (exit 2)', () => {
    const expected = [
      'supabase-unreachable',
      'supabase-key-rejected',
      'jobs-table-missing',
      'spark-unreachable',
      'host-key-mismatch',
      'host-key-unknown',
      'spark-probe-incomplete',
    ];
    expect([...BLOCKS_RUN_IDS].sort()).toEqual([...expected].sort());
    expect(COULD_NOT_RUN_IDS).toBe(BLOCKS_RUN_IDS);
    const finding = (id: string): Finding => ({ id, severity: 'warning', title: id, evidence: [], cause: '', fix: '' });
    for (const id of expected) expect(exitCodeFor([finding('clock-skew'), finding(id)])).toBe(2);
    expect(exitCodeFor([finding('clock-skew')])).toBe(1);
  });

  it('blames a stalled queue on the root causes in the order of today', () => {
    const ranked = FINDING_RULES.filter((r) => r.rootCauseRank !== undefined).sort(
      (a, b) => (a.rootCauseRank ?? 0) - (b.rootCauseRank ?? 0),
    );
    expect(ranked.map((r) => r.id)).toEqual([
      'worker-dir-missing',
      'worker-env-unreadable',
      'wrong-key-role',
      'worker-key-missing',
      'project-mismatch',
      'spark-supabase-unreachable',
      'worker-key-rejected',
      'worker-crash-loop',
      'worker-down',
    ]);
    expect(new Set(ranked.map((r) => r.rootCauseRank)).size).toBe(ranked.length);
  });

  it('names the findings a misspelled connection variable may explain', () => {
    const shaped = (c: string) => ids.filter((id) => ruleFor(id)?.shapedBy === c).sort();
    expect(shaped('spark')).toEqual([
      'host-key-mismatch',
      'host-key-unknown',
      'spark-unreachable',
      'worker-dir-missing',
    ]);
    expect(shaped('supabase')).toEqual([
      'jobs-table-missing',
      'supabase-key-rejected',
      'supabase-unreachable',
      'wrong-key-role',
    ]);
  });

  it("keeps the queue's findings out of diagnose-env's scope, and the worker's state in it", () => {
    expect(FINDING_RULES.filter((r) => r.scope === 'all').map((r) => r.id)).toEqual([
      'queue-stalled',
      'queue-backlog',
      'stale-running',
      'attempts-exhausted',
      'unknown-failure',
    ]);
    expect(FINDING_TABLE.filter((e) => !isRule(e)).map((e) => e.scope)).toEqual(['all']);
    for (const id of ['worker-down', 'worker-ambiguous', 'worker-log-stale', 'worker-log-missing'])
      expect(ruleFor(id)?.scope).toBe('env');
  });
});

describe('running the table', () => {
  const ev = { now: new Date('2026-01-15T12:00:00Z'), rules: DEFAULT_RULES } as unknown as Evidence;
  const seen: { prior: string[]; rootCause?: string }[] = [];
  const entry = (id: string, over: Partial<FindingRule> = {}): FindingRule => ({
    id,
    severity: 'warning',
    scope: 'env',
    detect: ({ prior, rootCause }) => {
      seen.push({ prior: prior.map((f) => f.id), rootCause: rootCause?.id });
      return [{ title: `${id} seen`, evidence: ['a fact'], cause: 'c', fix: 'f' }];
    },
    ...over,
  });

  it("stamps each draft with its entry's id and severity, and shows each rule what came before", () => {
    seen.length = 0;
    const before: Finding = { id: 'worker-down', severity: 'critical', title: 't', evidence: [], cause: '', fix: '' };
    const entries: TableEntry[] = [entry('first-new-finding', { severity: 'critical' }), entry('second-new-finding')];
    const made = runEntries(entries, ev, [], [before]);
    expect(made).toEqual([
      {
        id: 'first-new-finding',
        severity: 'critical',
        title: 'first-new-finding seen',
        evidence: ['a fact'],
        cause: 'c',
        fix: 'f',
      },
      {
        id: 'second-new-finding',
        severity: 'warning',
        title: 'second-new-finding seen',
        evidence: ['a fact'],
        cause: 'c',
        fix: 'f',
      },
    ]);
    expect(seen).toEqual([
      { prior: ['worker-down'], rootCause: 'worker-down' },
      { prior: ['worker-down', 'first-new-finding'], rootCause: 'worker-down' },
    ]);
  });

  it('picks the lowest root-cause rank present, the first made among equals', () => {
    const f = (id: string, title = id): Finding => ({
      id,
      severity: 'critical',
      title,
      evidence: [],
      cause: '',
      fix: '',
    });
    expect(rootCauseOf([f('worker-down'), f('project-mismatch', 'a'), f('project-mismatch', 'b')])?.title).toBe('a');
    expect(rootCauseOf([f('clock-skew'), f('circular-metadata')])).toBeUndefined();
  });

  it('links a typo to its symptoms without changing either', () => {
    const typo: Finding = {
      id: 'config-warning',
      severity: 'warning',
      title: 'SUPABSE_URL: is not read',
      evidence: ['in .env'],
      cause: 'x',
      fix: 'did you mean SUPABASE_URL?',
    };
    const symptom: Finding = {
      id: 'jobs-table-missing',
      severity: 'critical',
      title: 't',
      evidence: ['e'],
      cause: '',
      fix: '',
    };
    const input = Object.freeze([Object.freeze(symptom), Object.freeze(typo)]);
    const [first, second] = byCause(input);
    expect(first.id).toBe('config-warning');
    expect(first.severity).toBe('critical');
    expect(second.evidence).toEqual([
      'e',
      'probably because of SUPABSE_URL: SUPABASE_URL is not set, so its default was used',
    ]);
    expect(symptom.evidence).toEqual(['e']);
    expect(typo.severity).toBe('warning');
  });
});
