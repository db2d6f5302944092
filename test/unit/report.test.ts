import { describe, expect, it } from 'vitest';
import { RunbookError } from '../../lib/core/exit-codes.ts';
import type { Finding } from '../../lib/core/finding.ts';
import { REDACTED } from '../../lib/io/redact.ts';
import { buildReport, mdText, renderMarkdown, writeReports } from '../../lib/io/report.ts';
import type { CheckResult } from '../../lib/io/steps.ts';
import { fakePorts, opaqueKey } from '../helpers/fake-ports.ts';

const SECRET = opaqueKey('secret');

const FINDINGS: Finding[] = [
  {
    id: 'stale-running',
    severity: 'warning',
    title: '2 jobs have been running longer than 60 min',
    evidence: ['job-1 import started 2 h ago', 'job-2 import started 3 h ago'],
    cause: 'the worker died',
    fix: 'requeue them',
    jobIds: ['job-1', 'job-2'],
    requeueSafe: true,
  },
  {
    id: 'worker-down',
    severity: 'critical',
    title: 'the worker is not running on Spark',
    evidence: ['no process'],
    cause: 'it crashed',
    fix: 'start it',
    jobIds: [],
  },
];

const CHECKS: CheckResult[] = [
  { id: 'queue', title: 'Read the queue', status: 'ok', summary: '3 queued | 1 running', durationMs: 20 },
  { id: 'spark', title: 'Connect to Spark', status: 'failed', summary: 'refused\nby host', fix: 'start sshd' },
];

function report(over: Partial<Parameters<typeof buildReport>[0]> = {}) {
  return buildReport({
    runbook: 'debug-stuck-jobs',
    exitCode: 1,
    generatedAt: '2026-01-15T12:00:00.000Z',
    operator: 'oncall@example.com',
    target: {
      supabase: 'https://abcdefghijklmnopqrst.supabase.co',
      projectRef: 'abcdefghijklmnopqrst',
      spark: 'sparkuser@spark:2222',
    },
    findings: FINDINGS,
    checks: CHECKS,
    actions: [],
    ...over,
  });
}

describe('buildReport', () => {
  it('has the shared schema: runbook, verdict, findings with id/severity/title/evidence/fix, checks', () => {
    const r = JSON.parse(JSON.stringify(report()));
    expect(Object.keys(r)).toEqual(
      expect.arrayContaining([
        'runbook',
        'verdict',
        'exitCode',
        'generatedAt',
        'operator',
        'target',
        'findings',
        'checks',
        'actions',
      ]),
    );
    expect(r.runbook).toBe('debug-stuck-jobs');
    expect(r.findings[0]).toMatchObject({
      id: 'stale-running',
      severity: 'warning',
      title: FINDINGS[0].title,
      evidence: FINDINGS[0].evidence,
      fix: 'requeue them',
      cause: 'the worker died',
    });
    expect(r.checks).toEqual(CHECKS);
  });

  it('puts the most severe finding in the verdict', () => {
    expect(report().verdict).toBe('CRITICAL: the worker is not running on Spark [worker-down] (+1 more)');
    expect(report({ findings: [] }).verdict).toMatch(/^healthy/);
  });

  it('keeps jobIds and requeueSafe only when they say something', () => {
    const [stale, down] = report().findings;
    expect(stale.jobIds).toEqual(['job-1', 'job-2']);
    expect(stale.requeueSafe).toBe(true);
    expect('jobIds' in down).toBe(false);
    expect('requeueSafe' in down).toBe(false);
  });
});

describe('renderMarkdown', () => {
  it('names the time, the operator, the targets and the exit code', () => {
    const md = renderMarkdown(report());
    expect(md).toMatch(/^# debug-stuck-jobs: CRITICAL: /);
    expect(md).toContain('- time: 2026-01-15T12:00:00.000Z');
    expect(md).toContain('- operator: oncall@example.com');
    expect(md).toContain('- Supabase: https://abcdefghijklmnopqrst.supabase.co (project abcdefghijklmnopqrst)');
    expect(md).toContain('- Spark: sparkuser@spark:2222');
    expect(md).toContain('- exit code: 1');
  });

  it('shows each finding with its evidence, cause, fix and jobs', () => {
    const md = renderMarkdown(report());
    expect(md).toContain('### 1. WARNING 2 jobs have been running longer than 60 min (`stale-running`)');
    expect(md).toContain('- job-2 import started 3 h ago');
    expect(md).toContain('**Cause:** the worker died');
    expect(md).toContain('**Fix:** requeue them');
    expect(md).toContain('Jobs: `job-1`, `job-2`');
    expect(md).toContain('### 2. CRITICAL the worker is not running on Spark (`worker-down`)');
  });

  it('says "None." for no findings and unknown for an unknown Supabase target', () => {
    const md = renderMarkdown(report({ findings: [], target: {} }));
    expect(md).toContain('## Findings\n\nNone.\n');
    expect(md).toContain('- Supabase: unknown\n');
    expect(md).not.toContain('- Spark:');
  });

  it('escapes pipes and line breaks inside the checks table', () => {
    const md = renderMarkdown(report());
    expect(md).toContain('| Read the queue | ok | 3 queued \\| 1 running |');
    expect(md).toContain('| Connect to Spark | failed | refused by host |');
  });

  it('says nothing was written when no action was taken', () => {
    expect(renderMarkdown(report())).toContain('## Actions taken\n\nNone: nothing was written.');
  });

  it('lists the actions taken, and then does not claim nothing was written', () => {
    const md = renderMarkdown(
      report({ actions: [{ title: 'Requeued 2 jobs', lines: ['job-1 → queued', 'job-2 → queued'] }] }),
    );
    expect(md).toContain('### Requeued 2 jobs\n\n- job-1 → queued\n- job-2 → queued');
    expect(md).not.toContain('nothing was written');
  });

  it('cuts a long job list at 20 ids', () => {
    const ids = Array.from({ length: 25 }, (_, i) => `j${i}`);
    const md = renderMarkdown(report({ findings: [{ ...FINDINGS[0], jobIds: ids }] }));
    expect(md).toContain('`j19` and 5 more');
    expect(md).not.toContain('`j20`');
  });
});

describe('writeReports', () => {
  const leaky = () =>
    report({
      findings: [{ ...FINDINGS[0], evidence: [`key ${SECRET} seen`] }],
      checks: [{ id: 'c', title: 'Check', status: 'failed', summary: `with ${SECRET}` }],
      actions: [{ title: 'a', lines: [`used ${SECRET}`] }],
    });

  it('writes JSON and markdown files with every registered secret redacted', () => {
    const f = fakePorts();
    f.ports.out.addSecret(SECRET);
    writeReports(f.ports, leaky(), { json: '/tmp/r.json', markdown: '/tmp/r.md' });
    const json = f.files.store.get('/tmp/r.json')!;
    const md = f.files.store.get('/tmp/r.md')!;
    expect(json).not.toContain(SECRET);
    expect(md).not.toContain(SECRET);
    expect(JSON.parse(json).findings[0].evidence).toEqual([`key ${REDACTED} seen`]);
    // The markdown is rendered from the redacted report, so the marker is escaped like any other text.
    expect(md).toContain(`used ${mdText(REDACTED)}`);
    expect(f.stdout).toEqual([]);
  });

  it('writes the JSON to the stdout port for -, and no file', () => {
    const f = fakePorts();
    f.ports.out.addSecret(SECRET);
    writeReports(f.ports, leaky(), { json: '-' });
    expect(f.stdout).toHaveLength(1);
    expect(JSON.parse(f.stdout[0]).runbook).toBe('debug-stuck-jobs');
    expect(f.stdout[0]).not.toContain(SECRET);
    expect(f.files.store.size).toBe(0);
  });

  it('appends the markdown to GITHUB_STEP_SUMMARY when it is set', () => {
    const f = fakePorts({
      env: { GITHUB_STEP_SUMMARY: '/gh/summary.md' },
      files: { '/gh/summary.md': 'earlier step\n' },
    });
    f.ports.out.addSecret(SECRET);
    writeReports(f.ports, leaky(), {});
    const summary = f.files.store.get('/gh/summary.md')!;
    expect(summary.startsWith('earlier step\n# debug-stuck-jobs: ')).toBe(true);
    expect(summary).not.toContain(SECRET);
  });

  /** A report builder that counts its calls. */
  const counted = () => {
    const c = {
      built: 0,
      report: () => {
        c.built++;
        return report();
      },
    };
    return c;
  };

  it('writes nothing at all without flags and outside GitHub Actions, and does not even build the report', () => {
    const f = fakePorts();
    const c = counted();
    writeReports(f.ports, c.report, {});
    expect(c.built).toBe(0);
    expect(f.files.store.size).toBe(0);
    expect(f.stdout).toEqual([]);
  });

  it('builds the report once when it is asked for', () => {
    const f = fakePorts();
    const c = counted();
    writeReports(f.ports, c.report, { json: '-', markdown: '/tmp/r.md' });
    expect(c.built).toBe(1);
    expect(JSON.parse(f.stdout[0]).runbook).toBe('debug-stuck-jobs');
    expect(f.files.store.get('/tmp/r.md')).toContain('# debug-stuck-jobs: ');
  });

  it('turns a write failure into a RunbookError that names the flags', () => {
    const f = fakePorts();
    f.ports.files.write = () => {
      throw new Error('EACCES: permission denied');
    };
    expect(() => writeReports(f.ports, report(), { json: '/ro/r.json' })).toThrow(RunbookError);
    expect(() => writeReports(f.ports, report(), { json: '/ro/r.json' })).toThrow(/could not write the report: EACCES/);
  });
});
