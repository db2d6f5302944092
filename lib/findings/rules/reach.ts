/**
 * Reach: whether the runbook could look at all. Supabase did not answer the laptop, SSH to Spark did not connect, or
 * the probe of Spark came back incomplete. Each of these means the run could not do its job (exit 2).
 */

import type { SshFailure } from '../../core/ports.ts';
import { READ_INDEXES_MIGRATION, SLOW_QUEUE_READ_MS, STATEMENT_TIMEOUT_MS } from '../../core/thresholds.ts';
import type { Evidence } from '../../evidence/evidence.ts';
import { sshTargetLabel } from '../../io/ssh/target.ts';
import type { Draft, FindingRule } from '../rule.ts';

function supabaseFailure(ev: Evidence) {
  return ev.supabase && !ev.supabase.ok ? ev.supabase.failure : undefined;
}

function supabaseDraft(ev: Evidence, title: string, cause?: string): Draft[] {
  const f = supabaseFailure(ev);
  if (!f) return [];
  return [
    {
      title,
      evidence: [`${ev.laptop.url?.origin ?? ev.laptop.source}: ${f.message}`],
      cause: cause ?? f.message,
      fix: f.fix,
    },
  ];
}

/** The queue reads slower than {@link SLOW_QUEUE_READ_MS}: a quarter of the statement timeout gone. */
function slowReads(ev: Evidence): Draft[] {
  const slow = (ev.queueReads ?? []).filter((r) => r.ms > SLOW_QUEUE_READ_MS);
  if (!slow.length || (ev.supabase && !ev.supabase.ok)) return [];
  const worst = Math.max(...slow.map((r) => r.ms));
  return [
    {
      title: `a queue read took ${(worst / 1000).toFixed(1)} s (over ${SLOW_QUEUE_READ_MS / 1000} s)`,
      evidence: [
        ...slow.map((r) => `${r.read}: ${Math.round(r.ms)} ms`),
        `Supabase cancels a service_role statement after ${STATEMENT_TIMEOUT_MS / 1000} s (500, 57014)`,
      ],
      cause: `a quarter of the ${STATEMENT_TIMEOUT_MS / 1000} s statement timeout is gone on one read: the table outgrew its indexes (or the database is overloaded, or the link is slow), and a larger table will time out`,
      fix: `apply ${READ_INDEXES_MIGRATION} with psql "$SUPABASE_DB_URL" -f (it builds the indexes without blocking the worker's writes; not through supabase db push, which runs it in a transaction), then run diagnose-env again`,
    },
  ];
}

/** The gateway's own answers get their own title: the project answers, but not with the queue. */
const UNREACHABLE_TITLES: Partial<Record<string, string>> = {
  paused: 'the Supabase project is paused',
  gateway: "Supabase's gateway cannot get an answer from the project",
  'pool-exhausted': "the project's database pool is saturated",
  'bad-request': "the API refuses the runbook's requests",
};

/** Why the gateway gives each of its own answers (Supabase's docs: HTTP status codes; Cloudflare's 5xx errors). */
const UNREACHABLE_CAUSES: Partial<Record<string, string>> = {
  paused:
    'the project is paused: a free-plan project pauses after a week without activity, or its owner paused it; nothing answers until it is restored',
  gateway:
    "Cloudflare reached Supabase but not the project's API in time: the project is overloaded, restarting or down, or an upstream network problem",
  'pool-exhausted':
    "every database connection of the project's API is busy (long-running queries or too many clients), so the request waited and was refused before it ran",
};

const isKeyProblem = (kind: string) => kind === 'unauthorized' || kind === 'forbidden';

function sshFailure(ev: Evidence) {
  if (!ev.spark || ev.spark.ok) return undefined;
  const t = ev.spark.target;
  return { failure: ev.spark.failure, target: t ? sshTargetLabel(t) : 'Spark' };
}

const isHostKeyChange = (kind: string) => kind === 'host-key-mismatch' || kind === 'host-key-revoked';

const SSH_CAUSES: Partial<Record<SshFailure['kind'], string>> = {
  timeout: 'Spark is down, Tailscale is down on this machine or on Spark, or a firewall drops the connection',
  refused: 'nothing listens on that port: wrong SPARK_PORT, or sshd is down on Spark',
  'auth-failed': 'the key is not authorised for that user on Spark',
};

export const REACH_RULES: readonly FindingRule[] = [
  {
    id: 'supabase-key-rejected',
    severity: 'critical',
    scope: 'env',
    blocksRun: true,
    shapedBy: 'supabase',
    detect: ({ ev }) =>
      isKeyProblem(supabaseFailure(ev)?.kind ?? '')
        ? supabaseDraft(
            ev,
            "Supabase rejects the runbook's key",
            'the key is for another project, revoked, or lacks the role',
          )
        : [],
  },
  {
    id: 'jobs-table-missing',
    severity: 'critical',
    scope: 'env',
    blocksRun: true,
    shapedBy: 'supabase',
    detect: ({ ev }) =>
      supabaseFailure(ev)?.kind === 'missing-table' ? supabaseDraft(ev, 'the jobs table is not there') : [],
  },
  {
    id: 'supabase-unreachable',
    severity: 'critical',
    scope: 'env',
    blocksRun: true,
    shapedBy: 'supabase',
    detect: ({ ev }) => {
      const kind = supabaseFailure(ev)?.kind;
      if (!kind || isKeyProblem(kind) || kind === 'missing-table') return [];
      return supabaseDraft(
        ev,
        UNREACHABLE_TITLES[kind] ?? 'Supabase does not answer from this machine',
        UNREACHABLE_CAUSES[kind],
      );
    },
  },
  {
    id: 'queue-read-slow',
    severity: 'warning',
    scope: 'env',
    detect: ({ ev }) => slowReads(ev),
  },
  {
    id: 'host-key-mismatch',
    severity: 'critical',
    scope: 'env',
    blocksRun: true,
    shapedBy: 'spark',
    detect: ({ ev }) => {
      const ssh = sshFailure(ev);
      if (!ssh || !isHostKeyChange(ssh.failure.kind)) return [];
      const f = ssh.failure;
      return [
        {
          title: `Spark's host key changed: nothing was run on ${ssh.target}`,
          evidence: [f.message, ...(f.presentedFingerprint ? [`presented ${f.presentedFingerprint}`] : [])],
          cause: 'the host was reinstalled or re-keyed, or something is intercepting the connection',
          fix: f.fix,
        },
      ];
    },
  },
  {
    id: 'host-key-unknown',
    severity: 'critical',
    scope: 'env',
    blocksRun: true,
    shapedBy: 'spark',
    detect: ({ ev }) => {
      const ssh = sshFailure(ev);
      if (ssh?.failure.kind !== 'host-key-unknown') return [];
      return [
        {
          title: `Spark's host key is not known: nothing was run on ${ssh.target}`,
          evidence: [ssh.failure.message],
          cause: 'no known_hosts entry and no pinned fingerprint for this host and port',
          fix: ssh.failure.fix,
        },
      ];
    },
  },
  {
    id: 'spark-unreachable',
    severity: 'critical',
    scope: 'env',
    blocksRun: true,
    shapedBy: 'spark',
    detect: ({ ev }) => {
      const ssh = sshFailure(ev);
      if (!ssh || isHostKeyChange(ssh.failure.kind) || ssh.failure.kind === 'host-key-unknown') return [];
      const f = ssh.failure;
      return [
        {
          title: `cannot reach Spark over SSH (${ssh.target})`,
          evidence: [f.message],
          cause: SSH_CAUSES[f.kind] ?? f.message,
          fix: f.fix,
        },
      ];
    },
  },
  {
    // Half a probe must not read as "no worker" or "no folder": say that the worker's side is unknown.
    id: 'spark-probe-incomplete',
    severity: 'critical',
    scope: 'env',
    blocksRun: true,
    detect: ({ ev }) => {
      const probe = ev.spark?.ok ? ev.spark.probe : undefined;
      if (!probe?.missingSections.length) return [];
      const tools = probe.missingTools?.length ? probe.missingTools.join(', ') : undefined;
      return [
        {
          title: tools
            ? `Spark lacks ${tools}: the worker's side is partly unknown`
            : "the probe of Spark was cut short: the worker's side is unknown",
          evidence: [
            `sections not received: ${probe.missingSections.join(', ')}`,
            ...(tools ? [`not installed on Spark: ${tools}`] : []),
          ],
          cause: tools
            ? `the probe needs ${tools}, which Spark does not have`
            : 'the SSH connection dropped, or a command timed out or is missing on Spark',
          fix: tools
            ? `install ${tools} on Spark (ps, pgrep: procps; find: findutils; the others: coreutils), then run again`
            : 'run again; if it persists, run with --verbose and check the link (`tailscale ping`) and the load on Spark (`uptime`)',
        },
      ];
    },
  },
];
