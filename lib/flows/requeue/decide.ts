/**
 * The requeue's steps before the first write (decide, then act): the target guard, the selection, the preview with
 * the fix gate, and every confirmation. Nothing here writes; each step may end the run (`endRun`).
 */
import { parseAuditText, pendingIntents, readAuditFile, resolveAuditFile } from '../../actions/requeue/audit.ts';
import { fixNotDeployed, notEligible, runningNotConfirmed } from '../../actions/requeue/findings.ts';
import { buildPlan, opIdFor, withoutRunning } from '../../actions/requeue/plan.ts';
import { exclusionLines, previewLines, targetLines } from '../../actions/requeue/receipt.ts';
import { describeSelection, readSelection } from '../../actions/requeue/select.ts';
import { AbortedError, EXIT, RunbookError } from '../../core/exit-codes.ts';
import { requeueGate } from '../../findings/fix-gate.ts';
import { check, type Step } from '../../io/steps.ts';
import { parseOneLine, TYPE_COUNT_THRESHOLD } from '../requeue-usage.ts';
import { endRun, plural, type RequeueRun } from './state.ts';

type RequeueStep = Step<RequeueRun>;

/** Which project, with which key: a key that row-level security binds stops the run here. */
export const guardTarget: RequeueStep = {
  id: 'target',
  title: 'Check the target',
  progress: false,
  async run(run) {
    const { ctx, opts, ports } = run;
    const project = ctx.project;
    run.auditFile = resolveAuditFile(
      opts.auditFlag,
      ctx.values.REQUEUE_AUDIT_FILE,
      ports.env,
      ports.homeDir,
      ports.cwd,
    );
    ports.out.heading('Target');
    for (const l of targetLines(project)) ports.out.line(l);
    if (!project.privileged) {
      throw new RunbookError(
        `the key in use (${project.keyVar ?? 'none'}) is not a service-role or secret key: row-level security hides the jobs from it`,
        "set SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_SECRET_KEY) to the project's service-role key",
      );
    }
    const summary = `${project.origin} (project ${project.ref ?? 'unknown'}); ${project.credentials}`;
    run.checks.push(check('target', 'Target guard', 'ok', summary));
    const sel = opts.selection;
    if (sel.kind === 'filter' && sel.ignoredStatuses.length) {
      ports.out.line(
        `--status ${sel.ignoredStatuses.join(', ')}: those jobs already wait for the worker; nothing to do for them`,
      );
    }
    if (sel.kind === 'filter' && sel.statuses.length === 0) {
      return endRun(run, EXIT.ok, 'nothing to do: queued and pending jobs already wait for the worker');
    }
    return [];
  },
};

/** Reads the selected jobs (by id or by filter). */
export const selectJobs: RequeueStep = {
  id: 'select',
  title: 'Read the selected jobs',
  async run(run) {
    const sel = run.opts.selection;
    const read = await readSelection(run.ctx.db, sel, run.opts.limit);
    run.read = read;
    const missing = read.missingIds.length ? `; ${read.missingIds.length} id(s) not found` : '';
    const c = check(
      'select',
      'Select the jobs',
      read.missingIds.length ? 'warning' : 'ok',
      `${plural(read.jobs.length, 'job')} found (${describeSelection(sel)})${missing}`,
    );
    run.checks.push(c);
    run.ports.out.check(c);
    return [];
  },
};

function makePlan(run: RequeueRun) {
  const { opts } = run;
  // A skipped gate is part of why the jobs were requeued: kept in each job's history and the audit file.
  const reason =
    opts.skipFixGate === undefined
      ? run.reason
      : `${run.reason ?? 'no reason given'} (fix gate skipped: ${opts.skipFixGate})`;
  const sel = opts.selection;
  return buildPlan({
    selection: sel,
    read: run.read!,
    rules: run.ctx.rules,
    now: run.now,
    includeDone: opts.includeDone,
    resetAttempts: opts.resetAttempts,
    by: run.by,
    reason,
    runId: run.runId,
    opId: opIdFor({ selection: sel, reason, includeDone: opts.includeDone, resetAttempts: opts.resetAttempts }),
    project: run.ctx.project,
    selectionText: describeSelection(sel),
    limit: opts.limit,
  });
}

function validReason(value: string): true | string {
  try {
    parseOneLine('reason', value, 500, '"fix deployed"');
    return true;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * The preview: the planned writes, the fix gate's verdict on them, the audit file and what it still holds from
 * an interrupted run. The reason is part of the command (and of each history entry): asked before the preview.
 */
export const preview: RequeueStep = {
  id: 'preview',
  title: 'Preview the writes',
  progress: false,
  async run(run) {
    const { ports, opts } = run;
    const { out, prompt } = ports;
    run.plan = makePlan(run);
    if (opts.apply && run.reason === null && run.plan.writes.length > 1 && prompt.interactive) {
      const n = run.plan.writes.length;
      const asked = `Why are these ${n} jobs requeued? (kept in their history and the audit file)`;
      run.reason = (await prompt.text('reason', asked, validReason)).trim();
      run.plan = makePlan(run);
    }
    const plan = run.plan;
    out.heading(opts.apply ? 'Plan' : 'Preview (dry run: nothing is written)');
    for (const l of previewLines(plan, run.now, out.verbose)) out.line(l);
    const failures = plan.writes.filter((w) => !w.running).map((w) => ({ finished_at: w.before.finished_at }));
    const gate = requeueGate(run.ctx.evidence, failures, opts.skipFixGate);
    run.gate = gate;
    out.line(`fix gate: ${gate.line}`);
    const gateStatus = gate.deployed === false ? 'warning' : gate.deployed ? 'ok' : 'skipped';
    run.checks.push(check('fix-gate', 'Fix gate', gateStatus, gate.line));
    run.findings.push(...fixNotDeployed(gate, plan.writes.length));
    const audited = pendingIntents(parseAuditText(readAuditFile(ports.files, run.auditFile)));
    run.pending = audited.filter((p) => p.intent.project.origin === run.ctx.project.origin);
    out.line(`audit file: ${run.auditFile}`);
    if (run.pending.length) {
      const jobs = plural(
        run.pending.reduce((n, p) => n + p.jobIds.length, 0),
        'unsettled job',
      );
      const runs = [...new Set(run.pending.map((p) => p.intent.run_id))].join(', ');
      out.line(
        `the audit file has ${jobs} from an interrupted run (${runs}): settled from the database when this run writes`,
      );
    }
    run.findings.push(...notEligible(plan.excluded));
    return [];
  },
};

const problemCode = (run: RequeueRun) => (run.plan!.excluded.some((e) => e.problem) ? EXIT.findings : EXIT.ok);

/** A dry run ends after the preview, with the command that applies it; an apply with nothing to write ends too. */
export const endOfPreview: RequeueStep = {
  id: 'dry-run',
  title: 'End a dry run',
  progress: false,
  async run(run) {
    const { opts, ports } = run;
    const plan = run.plan!;
    const n = plan.writes.length;
    if (!opts.apply) {
      ports.out.line();
      if (n) {
        // The hint is for a person: it asks for --apply and lets the confirmation do its work. It never adds --yes
        // (that would skip the confirmation for whoever pastes it) and leaves a reason for them to write.
        const hint = [
          n > 1 && run.reason === null ? ' --reason REASON' : '',
          plan.writes.some((w) => w.running) && !opts.includeRunning ? ' --include-running' : '',
          ' --apply',
        ].join('');
        const script = ports.prompt.interactive ? '' : ' (in a script, add --yes)';
        const target = n === 1 ? 'it' : `these ${n} jobs`;
        ports.out.line(
          `dry run: nothing was written.${opts.commandLine ? ` To requeue ${target}: ${opts.commandLine}${hint}${script}` : ''}`,
        );
      }
      return endRun(run, problemCode(run), `dry run: ${plural(n, 'job')} would be requeued; nothing written`);
    }
    if (n) return [];
    const leftAlone = plan.excluded.length
      ? exclusionLines(plan.excluded, false)
          .filter((l) => l.startsWith('left alone'))
          .join('; ')
      : 'no job matches';
    return endRun(run, problemCode(run), `nothing to do: ${leftAlone}`);
  },
};

/** Running jobs: the worker may still hold them, so they are confirmed on their own (default No). */
export const confirmRunning: RequeueStep = {
  id: 'confirm-running',
  title: 'Confirm the running jobs',
  progress: false,
  async run(run) {
    const { opts, ports } = run;
    const { prompt, out } = ports;
    const running = run.plan!.writes.filter((w) => w.running);
    if (!running.length) return [];
    const one = running.length === 1;
    let keep = opts.includeRunning && opts.yes;
    if (!keep && prompt.interactive) {
      keep = await prompt.confirm(
        'confirm-running',
        `${plural(running.length, 'running job')} ${one ? 'is' : 'are'} stale by the rule (${run.ctx.rules.runningMinutes} min). Requeue ${one ? 'it' : 'them'} too? Only if no worker still processes ${one ? 'it' : 'them'}.`,
        false,
      );
      if (!keep) run.plan = withoutRunning(run.plan!, 'running: not confirmed by the operator', false);
    } else if (!keep) {
      run.plan = withoutRunning(run.plan!, 'running: needs --include-running --yes without a terminal', true);
    }
    if (keep) return [];
    out.line(`${plural(running.length, 'running job')} left alone (not confirmed)`);
    if (run.plan!.excluded.some((e) => e.reason === 'running-not-confirmed' && e.problem)) {
      run.findings.push(runningNotConfirmed(running));
    }
    if (!run.plan!.writes.length) {
      return endRun(run, EXIT.findings, 'nothing requeued: the running jobs were not confirmed');
    }
    return [];
  },
};

function gateWarning(run: RequeueRun): string {
  const gate = run.gate!;
  if (gate.deployed === false) return ' (the worker has NOT restarted since they failed)';
  if (gate.unreachable) return ' (the fix gate cannot tell: Spark did not answer)';
  return run.opts.skipFixGate !== undefined ? ' (fix gate skipped)' : '';
}

/**
 * The last word before the first write: a reason for more than one job, then the operator's yes (default No, the
 * gate's verdict in the question, the count typed for a large batch), or with --yes the gate itself decides.
 */
export const confirm: RequeueStep = {
  id: 'confirm',
  title: 'Confirm the requeue',
  progress: false,
  async run(run) {
    const { opts, ports } = run;
    const { prompt } = ports;
    const n = run.plan!.writes.length;
    if (n > 1 && run.reason === null) {
      throw new RunbookError(
        `--reason is required to requeue more than one job (${n} selected); nothing was written`,
        'add --reason "why", e.g. --reason "fix deployed: metadata subset"',
      );
    }
    if (!opts.yes) {
      if (!prompt.interactive) {
        throw new RunbookError(
          `this run is non-interactive (no terminal, --ci or CI set): nothing is written without --apply --yes (${plural(n, 'job')} planned)`,
          'review the preview, then rerun with --apply --yes',
        );
      }
      const project = run.ctx.project;
      const question = `Requeue ${plural(n, 'job')} in project ${project.ref ?? '?'} (${project.host})${gateWarning(run)}?`;
      if (!(await prompt.confirm('confirm-apply', question, false))) {
        throw new AbortedError('not confirmed: nothing was written');
      }
      if (n > TYPE_COUNT_THRESHOLD) {
        const typed = (await prompt.text('type-count', `Type the number of jobs to requeue (${n}) to go ahead`)).trim();
        if (typed !== String(n))
          throw new AbortedError(`typed ${JSON.stringify(typed.slice(0, 20))}, not ${n}: nothing was written`);
      }
      return [];
    }
    // --yes: nobody reads the gate's verdict before the writes, so the gate itself decides. A canary (a few
    // first, the rest only when they finish) or an explicit, recorded --skip-fix-gate REASON goes ahead.
    if (opts.canary || opts.skipFixGate !== undefined) return [];
    const gate = run.gate!;
    if (gate.deployed === false) {
      const verdict = `nothing requeued: the fix is probably not deployed (${plural(n, 'job')} would fail again)`;
      return endRun(run, EXIT.findings, verdict);
    }
    if (gate.unreachable) {
      throw new RunbookError(
        `the fix gate cannot tell whether the fix is deployed: Spark did not answer (${gate.unreachable}); nothing was written`,
        'fix the connection to Spark (npx zx runbooks/diagnose-env.mts), or go ahead with --canary N (a few first) or --skip-fix-gate "REASON"',
      );
    }
    return [];
  },
};
