/**
 * What to do next, in order, with the exact commands: shown as a numbered block above the first question and at the
 * end. Pure: built from the evidence and the findings; nothing here runs a command (a restart is shown, never run).
 */
import { atLeastWarning, type Finding } from '../core/finding.ts';
import { clip } from '../core/text.ts';
import type { Evidence } from '../evidence/evidence.ts';
import { fixGate } from '../findings/fix-gate.ts';
import { onSpark, restartHint } from '../findings/restart.ts';
import { configFileFlag } from '../io/cli.ts';
import type { Job } from '../io/jobs-db.ts';
import { shellQuote } from '../io/shell-quote.ts';
import type { CommonFlags } from './run.ts';

/** A requeue the runbook can offer: a finding's jobs, the fix gate's verdict on them, the pasteable command. */
export interface RequeueOffer {
  finding: Finding;
  gate: { deployed: boolean | undefined; line: string };
  command: string;
}

/** The same config flag the operator gave, so a printed command runs against the same project. */
export function configArg(flags: CommonFlags): string {
  const file = configFileFlag(flags);
  return file ? `--config ${shellQuote(file)} ` : '';
}

/** Every finding whose jobs are safe to requeue once fixed, with the fix gate's verdict and the command. */
export function requeueOffers(ev: Evidence, findings: readonly Finding[], flags: CommonFlags): RequeueOffer[] {
  const jobsById = new Map<string, Job>(
    [...(ev.queue?.failed.recent ?? []), ...(ev.queue?.running.jobs ?? [])].map((j) => [j.id, j]),
  );
  return findings
    .filter((f) => f.requeueSafe && f.jobIds?.length)
    .map((f) => {
      const jobs = f.jobIds!.map((id) => jobsById.get(id)).filter((j): j is Job => Boolean(j));
      // Pasteable as printed: every id (--id takes a comma list), the same config, and what running jobs need.
      const running = jobs.some((j) => j.status === 'running') ? ' --include-running' : '';
      const command = `npx zx runbooks/requeue.mts ${configArg(flags)}--id ${f.jobIds!.join(',')}${running} --reason ${shellQuote(`${f.id} fixed`)}`;
      return { finding: f, gate: fixGate(ev, jobs), command };
    });
}

/** A fix's first clause: enough to recognise it (the whole fix is shown with its finding). */
function firstClause(fix: string): string {
  const cut = fix.search(/[;:(]|, (?:then|and|or) /);
  return cut > 20 ? fix.slice(0, cut).trim() : fix;
}

/**
 * The restart step: WORKER_RESTART_CMD when set, else what the probe saw of how the worker runs (a systemd unit
 * gives a command; tmux, screen, a container or a hand-started process give advice). Shown, never run.
 */
export function restartStep(ev: Evidence, restartCmd: string | undefined): string {
  const t = ev.spark?.target;
  const probe = ev.spark?.ok ? ev.spark.probe : undefined;
  if (restartCmd)
    return `Restart the worker so the fix is live (WORKER_RESTART_CMD): ${t ? onSpark(t, restartCmd) : restartCmd}`;
  const hint = restartHint(probe);
  if (hint?.command)
    return `Restart the worker so the fix is live (${hint.how}): ${t ? onSpark(t, hint.command) : hint.command}`;
  if (hint?.advice) return `Restart the worker so the fix is live (${hint.how}): ${hint.advice}`;
  const how = hint ? `${hint.how}; ` : '';
  return `Restart the worker so the fix is live (${how}WORKER_RESTART_CMD shows the command)`;
}

/**
 * The numbered steps: fix what the first finding names; restart the worker when the fix gate says the fix is not
 * live yet; requeue each finding's jobs; then check the queue drains. Empty when nothing is at warning or above.
 */
export function nextSteps(
  ev: Evidence,
  findings: readonly Finding[],
  offers: readonly RequeueOffer[],
  options: { flags: CommonFlags; restartCmd?: string; runbook: string },
): string[] {
  const serious = findings.filter(atLeastWarning);
  if (!serious.length) return [];
  const steps: string[] = [];
  const notLive = offers.some((o) => o.gate.deployed !== true);
  const offered = new Set(offers.map((o) => o.finding.id));
  // Each serious finding's fix is printed in full with the finding: here it is named, in order, by its id.
  for (const f of findings) {
    if (!atLeastWarning(f) || (offered.has(f.id) && !notLive)) continue;
    steps.push(`Fix [${f.id}]: ${clip(firstClause(f.fix), 90)}`);
  }
  if (offers.length && notLive) {
    steps.push(restartStep(ev, options.restartCmd));
  }
  for (const o of offers) {
    steps.push(`Requeue the ${o.finding.jobIds!.length} job(s) of [${o.finding.id}]: ${o.command}`);
  }
  steps.push(`Check the queue drains: npx zx runbooks/${options.runbook}.mts ${configArg(options.flags)}`.trimEnd());
  return steps.map((s, i) => `${i + 1}. ${s}`);
}
