/**
 * From evidence to findings: pure functions, one rule per finding id. The ids are stable (README, JSON, issues).
 * Root causes come first; a queue that stalls because of one carries its evidence instead of a second finding.
 */

import { byCause, type Finding, sortFindings } from '../core/finding.ts';
import { isAttemptsExhausted, isOverdueQueued, isStaleRunning } from '../core/stuck-rules.ts';
import { clip } from '../core/text.ts';
import { diskLow, SKEW_WARN_MS } from '../core/thresholds.ts';
import { type Evidence, formatAge, minutesBetween, type SupabaseSide } from '../evidence/evidence.ts';
import { topLevelProcesses } from '../evidence/spark-probe.ts';
import type { Job } from '../io/jobs-db.ts';
import { describeKey, isExpired } from '../io/keys.ts';
import type { ErrorPattern } from './error-patterns.ts';
import { errorSignature } from './error-signature.ts';
import { describeProcess } from './fix-gate.ts';

function originOf(side: SupabaseSide | undefined): string | undefined {
  return side?.url?.origin;
}

function refOf(side: SupabaseSide | undefined): string | undefined {
  return side?.url?.projectRef ?? side?.declaredRef;
}

function describeSide(side: SupabaseSide, now: Date): string {
  const url = side.url ? side.url.origin : '(no valid URL)';
  const key = side.key ? `; key ${side.keyVar}: ${describeKey(side.key, now)}` : '';
  return `${side.source}: ${url}${key}`;
}

/** The log lines that belong to a job: those naming its id, plus the traceback lines that follow them. */
export function logContextFor(jobId: string, tail: readonly string[]): string[] {
  const out: string[] = [];
  let inJob = false;
  for (const line of tail) {
    const startsEntry = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/.test(line);
    if (line.includes(jobId)) {
      inJob = true;
      out.push(line);
    } else if (inJob && !startsEntry) out.push(line);
    else inJob = false;
  }
  return out;
}

function jobLine(job: Job, now: Date): string {
  const age = formatAge(minutesBetween(now, job.finished_at ?? job.started_at ?? job.created_at));
  return `${job.id} ${job.job_type} ${job.status} attempts=${job.attempts} (${age} ago)`;
}

function lastActivity(ev: Evidence): Date | undefined {
  const q = ev.queue;
  if (!q) return undefined;
  const times = [
    q.done.latest?.finished_at,
    ...q.running.jobs.map((j) => j.started_at),
    ...q.failed.recent.map((j) => j.finished_at),
  ]
    .filter((t): t is string => Boolean(t))
    .map((t) => Date.parse(t));
  return times.length ? new Date(Math.max(...times)) : undefined;
}

/** Findings about configuration and reachability: what diagnose-env reports, and debug-stuck-jobs' preflight. */
export function environmentFindings(ev: Evidence): Finding[] {
  const out: Finding[] = [];
  const { laptop, worker, app, now } = ev;

  if (ev.supabase && !ev.supabase.ok) {
    const f = ev.supabase.failure;
    const keyProblem = f.kind === 'unauthorized' || f.kind === 'forbidden';
    out.push({
      id: keyProblem
        ? 'supabase-key-rejected'
        : f.kind === 'missing-table'
          ? 'jobs-table-missing'
          : 'supabase-unreachable',
      severity: 'critical',
      title: keyProblem
        ? "Supabase rejects the runbook's key"
        : f.kind === 'missing-table'
          ? 'the jobs table is not there'
          : 'Supabase does not answer from this machine',
      evidence: [`${laptop.url?.origin ?? laptop.source}: ${f.message}`],
      cause: keyProblem ? 'the key is for another project, revoked, or lacks the role' : f.message,
      fix: f.fix,
    });
  }

  if (ev.spark && !ev.spark.ok) {
    const f = ev.spark.failure;
    const target = ev.spark.target
      ? `${ev.spark.target.user}@${ev.spark.target.host}:${ev.spark.target.port}`
      : 'Spark';
    if (f.kind === 'host-key-mismatch' || f.kind === 'host-key-revoked') {
      out.push({
        id: 'host-key-mismatch',
        severity: 'critical',
        title: `Spark's host key changed: nothing was run on ${target}`,
        evidence: [f.message, ...(f.presentedFingerprint ? [`presented ${f.presentedFingerprint}`] : [])],
        cause: 'the host was reinstalled or re-keyed, or something is intercepting the connection',
        fix: f.fix,
      });
    } else if (f.kind === 'host-key-unknown') {
      out.push({
        id: 'host-key-unknown',
        severity: 'critical',
        title: `Spark's host key is not known: nothing was run on ${target}`,
        evidence: [f.message],
        cause: 'no known_hosts entry and no pinned fingerprint for this host and port',
        fix: f.fix,
      });
    } else {
      out.push({
        id: 'spark-unreachable',
        severity: 'critical',
        title: `cannot reach Spark over SSH (${target})`,
        evidence: [f.message],
        cause:
          f.kind === 'timeout'
            ? 'Spark is down, Tailscale is down on this machine or on Spark, or a firewall drops the connection'
            : f.kind === 'refused'
              ? 'nothing listens on that port: wrong SPARK_PORT, or sshd is down on Spark'
              : f.kind === 'auth-failed'
                ? 'the key is not authorised for that user on Spark'
                : f.message,
        fix: f.fix,
      });
    }
  }

  const probe = ev.spark?.ok ? ev.spark.probe : undefined;
  const seen = (section: string) => probe !== undefined && !probe.missingSections.includes(section);
  if (probe?.missingSections.length) {
    // Half a probe must not read as "no worker" or "no folder": say that the worker's side is unknown.
    out.push({
      id: 'spark-probe-incomplete',
      severity: 'critical',
      title: probe.missingTools?.length
        ? `Spark lacks ${probe.missingTools.join(', ')}: the worker's side is partly unknown`
        : "the probe of Spark was cut short: the worker's side is unknown",
      evidence: [
        `sections not received: ${probe.missingSections.join(', ')}`,
        ...(probe.missingTools?.length ? [`not installed on Spark: ${probe.missingTools.join(', ')}`] : []),
      ],
      cause: probe.missingTools?.length
        ? `the probe needs ${probe.missingTools.join(', ')}, which Spark does not have`
        : 'the SSH connection dropped, or a command timed out or is missing on Spark',
      fix: probe.missingTools?.length
        ? `install ${probe.missingTools.join(', ')} on Spark (ps, pgrep: procps; find: findutils; the others: coreutils), then run again`
        : 'run again; if it persists, run with --verbose and check the link (`tailscale ping`) and the load on Spark (`uptime`)',
    });
  }
  if (probe && seen('dir') && !probe.workerDir.exists) {
    out.push({
      id: 'worker-dir-missing',
      severity: 'critical',
      title: `the worker folder ${probe.workerDir.path} does not exist on Spark`,
      evidence: [`no folder at ${probe.workerDir.path}`],
      cause: 'SPARK_WORKER_DIR points elsewhere, or the worker was moved or never deployed',
      fix: 'set SPARK_WORKER_DIR to the folder holding the worker and its .env (default ~/srv/hd-worker)',
    });
  } else if (probe && seen('env') && probe.env.status !== 'ok') {
    out.push({
      id: 'worker-env-unreadable',
      severity: 'critical',
      title: `the worker's .env is ${probe.env.status}`,
      evidence: [`${probe.workerDir.path}/.env: ${probe.env.status}`],
      cause: 'without it the worker does not know which Supabase project to poll, or with which key',
      fix: `create ${probe.workerDir.path}/.env with SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY (readable by the worker's user), then restart the worker`,
    });
  }

  // Keys: kind and role, per side.
  const sides = [
    { name: 'the runbook (laptop)', side: laptop as SupabaseSide | undefined, needsPrivilege: true },
    { name: 'the worker', side: worker, needsPrivilege: true },
    { name: 'the app', side: app, needsPrivilege: false },
  ];
  const weak = sides.filter(
    (s) => s.needsPrivilege && s.side?.key && s.side.key.kind !== 'missing' && !s.side.key.privileged,
  );
  if (weak.length) {
    out.push({
      id: 'wrong-key-role',
      severity: 'critical',
      title: `${weak.map((s) => s.name).join(' and ')} ${weak.length > 1 ? 'hold' : 'holds'} a key that row-level security hides every job from`,
      evidence: weak.map((s) => `${describeSide(s.side!, now)}`),
      cause:
        'an anon/publishable (or user) key passes authentication, but row-level security returns no jobs: the queue looks empty to it',
      fix: `put the service-role key (or an sb_secret_ key) of the project in ${weak.map((s) => `${s.side!.keyVar ?? 'the key variable'} (${s.side!.source.replace(/^.*? in /, '')})`).join(' and ')}; restart the worker if its key changed`,
    });
  }
  if (worker && probe?.env.status === 'ok' && (!worker.key || worker.key.kind === 'missing')) {
    out.push({
      id: 'worker-key-missing',
      severity: 'critical',
      title: 'the worker has no Supabase key',
      evidence: [`${worker.source}: neither SUPABASE_SERVICE_ROLE_KEY nor SUPABASE_SECRET_KEY is set`],
      cause: 'the worker cannot authenticate to Supabase',
      fix: `set SUPABASE_SERVICE_ROLE_KEY in ${probe.workerDir.path}/.env and restart the worker`,
    });
  }
  const expired = sides.filter((s) => s.side?.key && isExpired(s.side.key, now));
  if (expired.length) {
    out.push({
      id: 'key-expired',
      severity: 'critical',
      title: `${expired.map((s) => s.name).join(' and ')} ${expired.length > 1 ? 'hold' : 'holds'} an expired key`,
      evidence: expired.map((s) => describeSide(s.side!, now)),
      cause: 'Supabase rejects expired JWTs',
      fix: 'copy the current key from Project Settings → API into the variables named above',
    });
  }

  // Failure A: the app writes to a local Supabase while the worker polls another instance.
  const workerOrigin = originOf(worker) ?? originOf(laptop);
  const appOrigin = originOf(app);
  const appLocal = app?.url?.kind === 'local';
  if (app && appOrigin && workerOrigin && appOrigin !== workerOrigin && appLocal) {
    const other = app.other;
    out.push({
      id: 'local-supabase-target',
      severity: 'critical',
      title: 'the app writes jobs to a local Supabase; the worker polls another instance and never sees them',
      evidence: [
        `app: ${app.urlVar}=${appOrigin} in ${app.source.replace(/^.*? in /, '')} (${app.url?.localReason ?? 'local'})`,
        `worker polls ${workerOrigin}${worker ? '' : " (the laptop's SUPABASE_URL; the worker's .env was not read)"}`,
        ...(other?.ok
          ? [
              `the local instance holds ${other.queued} queued job${other.queued === 1 ? '' : 's'}${other.oldest ? `, oldest ${formatAge(minutesBetween(now, other.oldest.created_at))} old` : ''}`,
            ]
          : other
            ? [`the local instance did not answer: ${other.message}`]
            : []),
      ],
      cause: "the app's env points at the Supabase CLI instance on the developer's machine (failure A)",
      fix: `set ${app.urlVar} (and ${app.keyVar ?? 'the anon/publishable key'}) in the app's env to the cloud project (${workerOrigin}) and restart the app's dev server; jobs already in the local instance must be re-created in the cloud`,
      requeueSafe: false,
    });
  } else if (app && appOrigin && workerOrigin && appOrigin !== workerOrigin) {
    out.push({
      id: 'project-mismatch',
      severity: 'critical',
      title: 'the app and the worker use different Supabase projects',
      evidence: [describeSide(app, now), `worker: ${workerOrigin}`],
      cause: 'jobs the app inserts land in a project the worker never polls',
      fix: `point ${app.urlVar} in the app's env and SUPABASE_URL in the worker's .env at the same project`,
    });
  }
  if (worker?.url && laptop.url && worker.url.origin !== laptop.url.origin) {
    out.push({
      id: 'project-mismatch',
      severity: 'critical',
      title: 'the runbook and the worker look at different Supabase projects',
      evidence: [describeSide(laptop, now), describeSide(worker, now)],
      cause:
        "the laptop's SUPABASE_URL is not the one in the worker's .env: the queue shown here is not the one the worker drains",
      fix: "set SUPABASE_URL in the laptop's .env to the worker's project (or fix the worker's .env and restart it)",
    });
  }
  for (const s of sides) {
    const keyRef = s.side?.key?.ref;
    const urlRef = refOf(s.side);
    if (s.side && keyRef && urlRef && keyRef !== urlRef && !(s.name === 'the app' && appLocal)) {
      out.push({
        id: 'project-mismatch',
        severity: 'critical',
        title: `${s.name}'s key belongs to another project than its URL`,
        evidence: [`${s.side.source}: URL project ${urlRef}, key project ${keyRef} (${s.side.key?.masked})`],
        cause: 'a key copied from another project (staging vs production, or an old project)',
        fix: `copy ${s.side.keyVar ?? 'the key'} from project ${urlRef}'s Settings → API`,
      });
    }
  }

  if (probe) {
    if (probe.reach.status === 'failed') {
      out.push({
        id: 'spark-supabase-unreachable',
        severity: 'critical',
        title: "Spark cannot reach the worker's SUPABASE_URL",
        evidence: [`from Spark: ${probe.reach.message}`, worker?.url ? `worker polls ${worker.url.origin}` : ''].filter(
          Boolean,
        ),
        cause: "DNS, egress firewall or proxy on Spark, or a wrong SUPABASE_URL in the worker's .env",
        fix: `on Spark, run \`curl -sS "$SUPABASE_URL/rest/v1/"\` in ${probe.workerDir.path} with its .env loaded and fix what it reports`,
      });
    } else if (
      probe.reach.status === 'http-error' &&
      (probe.reach.httpStatus === 401 || probe.reach.httpStatus === 403)
    ) {
      out.push({
        id: 'worker-key-rejected',
        severity: 'critical',
        title: `Supabase rejects the worker's key (HTTP ${probe.reach.httpStatus} from Spark)`,
        evidence: [worker ? describeSide(worker, now) : 'worker key unknown'],
        cause: "the worker's key is revoked, expired or from another project",
        fix: `put the project's current service-role key in ${probe.workerDir.path}/.env and restart the worker`,
      });
    }
    if (probe.clockSkewMs !== undefined && Math.abs(probe.clockSkewMs) > SKEW_WARN_MS) {
      out.push({
        id: 'clock-skew',
        severity: 'warning',
        title: `Spark's clock is ${Math.round(Math.abs(probe.clockSkewMs) / 1000)} s ${probe.clockSkewMs > 0 ? 'ahead of' : 'behind'} this machine`,
        evidence: [`Spark: ${probe.sparkNow?.toISOString()}, laptop: ${now.toISOString()}`],
        cause: 'NTP is not running on one of the machines; ages and the fix gate are computed from timestamps',
        fix: 'on Spark: `timedatectl status`, enable NTP (`sudo timedatectl set-ntp true`)',
      });
    }
    if (probe.disk && diskLow(probe.disk)) {
      out.push({
        id: 'disk-low',
        severity: 'warning',
        title: `Spark's disk is ${probe.disk.usedPercent}% full (${Math.round(probe.disk.availableKb / 1024)} MB free on ${probe.disk.mount})`,
        evidence: [`df on ${probe.workerDir.path}`],
        cause: 'a full disk stops the worker writing its log and temporary files',
        fix: `free space on Spark (old logs under ${probe.workerDir.path}/logs, caches) before requeueing`,
      });
    }
  }

  // Key warnings are reported above with every side's evidence (wrong-key-role, project-mismatch).
  const keyVars = new Set(['SUPABASE_SERVICE_ROLE_KEY', 'SUPABASE_SECRET_KEY']);
  for (const issue of laptop.issues.filter((i) => i.severity === 'warning' && !keyVars.has(i.name))) {
    out.push({
      id: 'config-warning',
      severity: 'warning',
      title: `${issue.name}: ${issue.message}`,
      evidence: [laptop.envFile ? `in ${laptop.envFile}` : 'in the environment'],
      cause: 'a misspelled or unknown variable is ignored, and the default is used instead',
      fix: issue.fix,
    });
  }
  return out;
}

/** Findings about the queue and the worker: what debug-stuck-jobs adds to the environment findings. */
export function queueFindings(ev: Evidence, patterns: readonly ErrorPattern[], env: readonly Finding[]): Finding[] {
  const out: Finding[] = [];
  const { queue, now, rules } = ev;
  const probe = ev.spark?.ok ? ev.spark.probe : undefined;
  const tail = probe?.log.tail ?? [];

  // Worker process and log.
  let workerDown: Finding | undefined;
  const processSeen = probe !== undefined && !probe.missingSections.includes('process');
  if (processSeen && probe?.workerDir.exists && probe.processes.length === 0) {
    workerDown = {
      id: 'worker-down',
      severity: 'critical',
      title: 'the worker is not running on Spark',
      evidence: [
        `no process works in ${probe.workerDir.path} or names it${(probe.ignoredProcesses ?? []).length ? ` (shells and tools there not counted: ${(probe.ignoredProcesses ?? []).map((p) => `${p.comm} pid ${p.pid}`).join(', ')})` : ''}`,
        probe.log.status === 'ok'
          ? `logs/worker.log last written ${formatAge(minutesBetween(now, probe.log.modifiedAt))} ago`
          : 'logs/worker.log does not exist',
        ...(probe.log.tail.length ? [`last log line: ${clip(probe.log.tail[probe.log.tail.length - 1], 200)}`] : []),
      ],
      cause: 'the worker crashed or was stopped, or Spark rebooted without starting it',
      fix: `start the worker on Spark the way it is deployed (in ${probe.workerDir.path}), then watch logs/worker.log for polls`,
      requeueSafe: false,
    };
    out.push(workerDown);
  } else if (probe && topLevelProcesses(probe.processes).length > 1) {
    const workers = topLevelProcesses(probe.processes);
    out.push({
      id: 'worker-ambiguous',
      severity: 'warning',
      title: `${workers.length} programs run in the worker folder: which one is the worker is not known`,
      evidence: workers.map((p) => `${describeProcess(p)}, started ${p.startedAt.toISOString()}`),
      cause:
        'besides the worker, something else runs in its folder as its user (a second worker, a script or a server someone started there)',
      fix: `check each on Spark (ps -fp PID); stop what is not the worker, so that exactly one worker polls the queue (in ${probe.workerDir.path})`,
    });
  } else if (probe?.processes.length && probe.log.status === 'ok') {
    const quiet = minutesBetween(now, probe.log.modifiedAt) ?? 0;
    if (quiet > Math.max(5, rules.queuedMinutes)) {
      out.push({
        id: 'worker-log-stale',
        severity: 'warning',
        title: `the worker runs but has not written its log for ${formatAge(quiet)}`,
        evidence: [
          `pid ${probe.processes.map((p) => p.pid).join(', ')}, started ${probe.processes[0].startedAt.toISOString()}`,
        ],
        cause: 'the worker hangs (a stuck request, a deadlock) or logs elsewhere',
        fix: 'inspect it on Spark (`py-spy dump --pid PID` for Python, or its own status page) and restart it',
      });
    }
  } else if (probe?.workerDir.exists && probe.log.status === 'missing' && !probe.missingSections.includes('logstat')) {
    out.push({
      id: 'worker-log-missing',
      severity: 'warning',
      title: 'the worker has no logs/worker.log',
      evidence: [`${probe.workerDir.path}/logs/worker.log does not exist`],
      cause: 'the worker logs elsewhere, or has never started in this folder',
      fix: 'make the worker log to logs/worker.log so runbooks (and people) can see what it does',
    });
  }

  if (!queue) return out;

  // Queued jobs that wait too long while nothing moves.
  const overdue = queue.queued.oldest.filter((j) => isOverdueQueued(j, rules, now));
  const activity = lastActivity(ev);
  const sinceActivity = activity ? minutesBetween(now, activity) : undefined;
  const idle = sinceActivity === undefined || sinceActivity > rules.queuedMinutes;
  if (overdue.length) {
    const oldest = overdue[0];
    const waitLine = `${queue.queued.count} queued/pending job${queue.queued.count === 1 ? '' : 's'}; ${overdue.length}${overdue.length === queue.queued.oldest.length && queue.queued.count > overdue.length ? '+' : ''} waiting longer than the rule, oldest ${formatAge(minutesBetween(now, oldest.created_at))}`;
    const activityLine = activity
      ? `last worker activity in the table ${formatAge(sinceActivity)} ago`
      : 'no worker activity in the table (no job started or finished recently)';
    const rootCause = [...env, ...out].find((f) =>
      [
        'worker-down',
        'wrong-key-role',
        'project-mismatch',
        'spark-supabase-unreachable',
        'worker-key-rejected',
        'worker-key-missing',
        'worker-env-unreadable',
        'worker-dir-missing',
      ].includes(f.id),
    );
    if (rootCause) {
      rootCause.evidence.push(waitLine, activityLine);
      rootCause.jobIds = [...(rootCause.jobIds ?? []), ...overdue.map((j) => j.id)];
    } else if (idle) {
      out.push({
        id: 'queue-stalled',
        severity: 'critical',
        title: 'queued jobs are not being picked up',
        evidence: [
          waitLine,
          activityLine,
          ...(probe?.processes.length ? [`worker runs (pid ${probe.processes[0].pid})`] : []),
        ],
        cause:
          'the worker is alive but does not claim jobs: it polls another project, filters on another status, or is wedged',
        fix: "read the worker log's last polls (what URL, what count) and compare with the queue shown here",
        jobIds: overdue.map((j) => j.id),
      });
    } else {
      out.push({
        id: 'queue-backlog',
        severity: 'info',
        title: 'the worker is busy; queued jobs wait longer than the rule',
        evidence: [waitLine, activityLine],
        cause: 'more work than one worker drains in time',
        fix: 'nothing is broken; add capacity if this persists',
        jobIds: overdue.map((j) => j.id),
      });
    }
  }

  const stale = queue.running.jobs.filter((j) => isStaleRunning(j, rules, now));
  if (stale.length) {
    const inLog = stale.filter((j) => tail.some((l) => l.includes(j.id)));
    out.push({
      id: 'stale-running',
      severity: 'warning',
      title: `${stale.length} job${stale.length === 1 ? ' has' : 's have'} been running longer than ${rules.runningMinutes} min`,
      evidence: [
        ...stale
          .slice(0, 5)
          .map(
            (j) =>
              `${j.id} ${j.job_type} started ${formatAge(minutesBetween(now, j.started_at))} ago, attempts=${j.attempts}`,
          ),
        ...(stale.length > 5 ? [`… and ${stale.length - 5} more`] : []),
        ...(probe
          ? [inLog.length ? `${inLog.length} named in the log tail` : 'none of them is named in the log tail']
          : []),
      ],
      cause: 'the worker died or was restarted while processing them, and nothing resets a claimed job',
      fix: 'check that no worker still processes them (log, process list), then requeue them by id with --include-running (the recommendation below gives the command)',
      jobIds: stale.map((j) => j.id),
      requeueSafe: true,
    });
  }

  // Failed jobs: each goes to the first pattern that matches its error or its lines in the log.
  const failed = queue.failed.recent;
  const claimed = new Set<string>();
  for (const p of patterns) {
    const hits = failed.filter((j) => {
      if (claimed.has(j.id) || (p.jobType && j.job_type !== p.jobType)) return false;
      const text = [j.error ?? '', ...logContextFor(j.id, tail)].join('\n');
      return p.error.some((re) => re.test(text));
    });
    const logHits = tail.filter((l) => p.log.some((re) => re.test(l)));
    if (!hits.length && !logHits.length) continue;
    for (const j of hits) claimed.add(j.id);
    // Seen only in the log (no failed job in the window): history, or a failure that never reached the table.
    // Worth knowing, not worth waking anyone for.
    const logOnly = hits.length === 0;
    out.push({
      id: p.id,
      severity: logOnly ? 'info' : p.severity,
      title: logOnly ? `${p.title} (seen in the worker log only)` : p.title,
      evidence: [
        ...(hits.length
          ? [`${hits.length} failed job${hits.length === 1 ? '' : 's'} since ${queue.failed.since}`]
          : []),
        ...hits.slice(0, 5).map((j) => `${jobLine(j, now)}: ${clip((j.error ?? '').split('\n')[0], 160)}`),
        ...(logHits.length ? [`log: ${clip(logHits[logHits.length - 1], 200)}`] : []),
      ],
      cause: p.cause,
      fix: p.fix,
      jobIds: hits.map((j) => j.id),
      requeueSafe: p.requeueSafe,
    });
  }

  const exhausted = failed.filter((j) => isAttemptsExhausted(j, rules));
  if (exhausted.length) {
    out.push({
      id: 'attempts-exhausted',
      severity: 'warning',
      title: `${exhausted.length} failed job${exhausted.length === 1 ? ' has' : 's have'} used all attempts`,
      evidence: exhausted.slice(0, 5).map((j) => jobLine(j, now)),
      cause: `the worker gives up after ${rules.maxAttempts} attempts; these will not be retried by themselves`,
      fix: 'fix the cause first (see the other findings), then requeue with --reset-attempts',
      jobIds: exhausted.map((j) => j.id),
      requeueSafe: false,
    });
  }

  const unknown = new Map<string, Job[]>();
  for (const j of failed) {
    if (claimed.has(j.id)) continue;
    const sig = `${j.job_type}: ${errorSignature(j.error)}`;
    unknown.set(sig, [...(unknown.get(sig) ?? []), j]);
  }
  for (const [sig, jobs] of [...unknown.entries()].sort((a, b) => b[1].length - a[1].length)) {
    out.push({
      id: 'unknown-failure',
      severity: 'warning',
      title: `${jobs.length} job${jobs.length === 1 ? '' : 's'} failed with an error no pattern knows: ${sig}`,
      evidence: [
        ...jobs.slice(0, 3).map((j) => `${jobLine(j, now)}: ${clip((j.error ?? '').split('\n')[0], 160)}`),
        ...jobs
          .slice(0, 1)
          .flatMap((j) => logContextFor(j.id, tail).slice(0, 4))
          .map((l) => `log: ${clip(l, 200)}`),
      ],
      cause: 'not in the failure-pattern catalog',
      fix: 'read the error and the log lines above; once understood, add a pattern to your patterns file (see README) so the next on-call sees the fix',
      jobIds: jobs.map((j) => j.id),
      requeueSafe: false,
    });
  }
  return out;
}

/** The findings about the worker process and its log: part of the environment, so diagnose-env reports them too. */
const WORKER_FINDING_IDS = new Set(['worker-down', 'worker-ambiguous', 'worker-log-stale', 'worker-log-missing']);

/**
 * Every finding, most severe first. `env` (diagnose-env): the setup, and the worker's state (a ✖ on the worker
 * process is a finding there too, never "healthy"); `all` (debug-stuck-jobs): the queue as well.
 */
export function diagnose(ev: Evidence, patterns: readonly ErrorPattern[], scope: 'env' | 'all'): Finding[] {
  const env = byCause(environmentFindings(ev));
  const rest = queueFindings(ev, patterns, env);
  return sortFindings(
    scope === 'env' ? [...env, ...rest.filter((f) => WORKER_FINDING_IDS.has(f.id))] : [...env, ...rest],
  );
}
