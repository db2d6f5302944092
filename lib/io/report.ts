/** Reports: the JSON shared by every runbook, the markdown incident report, and GitHub's step summary. */
import type { CheckResult } from '../core/check.ts';
import { RunbookError } from '../core/exit-codes.ts';
import { type Finding, verdictLine } from '../core/finding.ts';
import type { Ports } from './context.ts';
import { inert, inertJson } from './inert.ts';

export interface Report {
  runbook: string;
  verdict: string;
  exitCode: number;
  generatedAt: string;
  operator: string;
  target: { supabase?: string; projectRef?: string; spark?: string };
  findings: Array<Pick<Finding, 'id' | 'severity' | 'title' | 'evidence' | 'cause' | 'fix' | 'jobIds' | 'requeueSafe'>>;
  checks: CheckResult[];
  /** What the runbook did (requeues, with their receipts), when anything. */
  actions: Array<{ title: string; lines: string[] }>;
  /** Runbook-specific extras (queue counts, rules). */
  extra?: Record<string, unknown>;
}

export function buildReport(input: Omit<Report, 'verdict' | 'findings'> & { findings: readonly Finding[] }): Report {
  return {
    ...input,
    verdict: verdictLine(input.findings),
    findings: input.findings.map((f) => ({
      id: f.id,
      severity: f.severity,
      title: f.title,
      evidence: f.evidence,
      cause: f.cause,
      fix: f.fix,
      ...(f.jobIds?.length ? { jobIds: f.jobIds } : {}),
      ...(f.requeueSafe !== undefined ? { requeueSafe: f.requeueSafe } : {}),
    })),
  };
}

/**
 * Text for markdown (the incident report, GitHub's step summary): inert, on one line, with every character that
 * markdown or HTML would act on escaped. Job types, errors, log lines and env values reach these reports, and a
 * `<img onerror>`, a `</details>`, a `[link](javascript:…)` or a code fence in them must stay text.
 */
export function mdText(s: string): string {
  return inert(s)
    .replace(/\n/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\\`*_{}[\]()#+!|~]/g, '\\$&');
}

const esc = mdText;

/** A markdown code span: nothing in it acts, and without a backtick or newline it cannot be left. */
function code(s: string): string {
  return `\`${inert(s).replace(/[`\n]/g, ' ')}\``;
}

export function renderMarkdown(r: Report): string {
  const lines = [
    `# ${esc(r.runbook)}: ${esc(r.verdict)}`,
    '',
    `- time: ${esc(r.generatedAt)}`,
    `- operator: ${esc(r.operator)}`,
    `- Supabase: ${esc(r.target.supabase ?? 'unknown')}${r.target.projectRef ? ` (project ${esc(r.target.projectRef)})` : ''}`,
    ...(r.target.spark ? [`- Spark: ${esc(r.target.spark)}`] : []),
    `- exit code: ${r.exitCode}`,
    '',
    '## Findings',
    '',
  ];
  if (!r.findings.length) lines.push('None.', '');
  for (const [i, f] of r.findings.entries()) {
    lines.push(`### ${i + 1}. ${f.severity.toUpperCase()} ${esc(f.title)} (${code(f.id)})`, '');
    for (const e of f.evidence) lines.push(`- ${esc(e)}`);
    lines.push('', `**Cause:** ${esc(f.cause)}`, '', `**Fix:** ${esc(f.fix)}`, '');
    if (f.jobIds?.length)
      lines.push(
        `Jobs: ${f.jobIds
          .slice(0, 20)
          .map((id) => code(id))
          .join(', ')}${f.jobIds.length > 20 ? ` and ${f.jobIds.length - 20} more` : ''}`,
        '',
      );
  }
  lines.push('## Evidence (checks)', '', '| check | status | result |', '| --- | --- | --- |');
  for (const c of r.checks) lines.push(`| ${esc(c.title)} | ${c.status} | ${esc(c.summary)} |`);
  lines.push('', '## Actions taken', '');
  if (!r.actions.length) lines.push('None: nothing was written.');
  for (const a of r.actions) {
    lines.push(`### ${esc(a.title)}`, '');
    for (const l of a.lines) lines.push(`- ${esc(l)}`);
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Writes `--json` (a file, or stdout for `-`), `--markdown` and, in GitHub Actions, the step summary. Everything
 * passes through the output's redactor first: a report is never where a key leaks.
 */
export function writeReports(ports: Ports, report: Report, flags: { json?: string; markdown?: string }): void {
  const summary = ports.env.GITHUB_STEP_SUMMARY;
  // Nothing asked for: nothing rendered (a requeue of 100,000 jobs has a report of 100,000 results).
  if (!flags.json && !flags.markdown && !summary) return;
  // JSON escapes C0 controls itself; C1 controls and bidi characters become \u escapes too (same value).
  const json = ports.out.redact(inertJson(`${JSON.stringify(report, null, 2)}\n`));
  // Markdown escaping changes the text a secret is recognised by (`sb_secret_` becomes `sb\_secret\_`): render
  // the markdown from the redacted report, never redact after escaping.
  const md = ports.out.redact(renderMarkdown(JSON.parse(json) as Report));
  try {
    if (flags.json === '-') ports.stdout(json);
    else if (flags.json) ports.files.write(flags.json, json);
    if (flags.markdown) ports.files.write(flags.markdown, md);
    // Every file written is named (a report someone will look for; the stdout report needs no line).
    for (const file of [flags.json === '-' ? undefined : flags.json, flags.markdown])
      if (file) ports.out.line(`wrote ${file}`);
    if (summary) ports.files.append(summary, md);
  } catch (e) {
    throw new RunbookError(
      `could not write the report: ${(e as Error).message}`,
      'check the path given to --json / --markdown (the folder must be writable)',
    );
  }
}
