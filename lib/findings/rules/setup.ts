/**
 * Setup: how each side is configured. The worker's folder and .env, the keys and projects of the laptop, the worker
 * and the app (which of them is the odd one out: targets.ts), Spark's own request to Supabase, Spark's clock and
 * disk, the laptop's config.
 */

import { diskLow, SKEW_WARN_MS } from '../../core/thresholds.ts';
import type { Evidence, SupabaseSide } from '../../evidence/evidence.ts';
import { isExpired } from '../../io/keys.ts';
import type { Draft, FindingRule } from '../rule.ts';
import { appOddDraft, sidesApartDrafts } from './target-drafts.ts';
import { describeSide, judgeTargets } from './targets.ts';

function probeOf(ev: Evidence) {
  return ev.spark?.ok ? ev.spark.probe : undefined;
}

/** Whether the probe received a section (a cut-short probe says nothing about the sections it lost). */
function seen(ev: Evidence, section: string): boolean {
  const probe = probeOf(ev);
  return probe !== undefined && !probe.missingSections.includes(section);
}

const refOf = (side: SupabaseSide | undefined) => side?.url?.projectRef ?? side?.declaredRef;
const plural = (n: number) => (n > 1 ? 'hold' : 'holds');
const fileOf = (side: SupabaseSide) => side.source.replace(/^.*? in /, '');

/** The three sides and whether each needs a key that sees every job. */
function sides(ev: Evidence) {
  return [
    { name: 'the runbook (laptop)', side: ev.laptop as SupabaseSide | undefined, needsPrivilege: true },
    { name: 'the worker', side: ev.worker, needsPrivilege: true },
    { name: 'the app', side: ev.app as SupabaseSide | undefined, needsPrivilege: false },
  ];
}

/**
 * The project-mismatch drafts: where the sides point (the worker or the runbook the odd one out, all three apart, or
 * the runbook and the worker apart with no app to tell them; targets.ts), and each side's key against its URL.
 */
function projectMismatches(ev: Evidence): Draft[] {
  const out = sidesApartDrafts(ev, judgeTargets(ev));
  for (const s of sides(ev)) {
    const keyRef = s.side?.key?.ref;
    const urlRef = refOf(s.side);
    const appLocal = ev.app?.url?.kind === 'local';
    if (!s.side || !keyRef || !urlRef || keyRef === urlRef || (s.name === 'the app' && appLocal)) continue;
    out.push({
      title: `${s.name}'s key belongs to another project than its URL`,
      evidence: [`${s.side.source}: URL project ${urlRef}, key project ${keyRef} (${s.side.key?.masked})`],
      cause: 'a key copied from another project (staging vs production, or an old project)',
      fix: `copy ${s.side.keyVar ?? 'the key'} from project ${urlRef}'s Settings → API`,
    });
  }
  return out;
}

/** Key warnings of the laptop config are reported with every side's evidence (wrong-key-role, project-mismatch). */
const KEY_VARS = new Set(['SUPABASE_SERVICE_ROLE_KEY', 'SUPABASE_SECRET_KEY']);

export const SETUP_RULES: readonly FindingRule[] = [
  {
    id: 'worker-dir-missing',
    severity: 'critical',
    scope: 'env',
    rootCauseRank: 1,
    shapedBy: 'spark',
    detect: ({ ev }) => {
      const probe = probeOf(ev);
      if (!probe || !seen(ev, 'dir') || probe.workerDir.exists) return [];
      return [
        {
          title: `the worker folder ${probe.workerDir.path} does not exist on Spark`,
          evidence: [`no folder at ${probe.workerDir.path}`],
          cause: 'SPARK_WORKER_DIR points elsewhere, or the worker was moved or never deployed',
          fix: 'set SPARK_WORKER_DIR to the folder holding the worker and its .env (default ~/srv/hd-worker)',
        },
      ];
    },
  },
  {
    id: 'worker-env-unreadable',
    severity: 'critical',
    scope: 'env',
    rootCauseRank: 2,
    detect: ({ ev }) => {
      const probe = probeOf(ev);
      const dirMissing = seen(ev, 'dir') && !probe?.workerDir.exists;
      if (!probe || dirMissing || !seen(ev, 'env') || probe.env.status === 'ok') return [];
      return [
        {
          title: `the worker's .env is ${probe.env.status}`,
          evidence: [`${probe.workerDir.path}/.env: ${probe.env.status}`],
          cause: 'without it the worker does not know which Supabase project to poll, or with which key',
          fix: `create ${probe.workerDir.path}/.env with SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY (readable by the worker's user), then restart the worker`,
        },
      ];
    },
  },
  {
    id: 'wrong-key-role',
    severity: 'critical',
    scope: 'env',
    rootCauseRank: 3,
    shapedBy: 'supabase',
    detect: ({ ev }) => {
      const weak = sides(ev).filter(
        (s) => s.needsPrivilege && s.side?.key && s.side.key.kind !== 'missing' && !s.side.key.privileged,
      );
      if (!weak.length) return [];
      return [
        {
          title: `${weak.map((s) => s.name).join(' and ')} ${plural(weak.length)} a key that row-level security hides every job from`,
          evidence: weak.map((s) => `${describeSide(s.side!, ev.now)}`),
          cause:
            'an anon/publishable (or user) key passes authentication, but row-level security returns no jobs: the queue looks empty to it',
          fix: `put the service-role key (or an sb_secret_ key) of the project in ${weak.map((s) => `${s.side!.keyVar ?? 'the key variable'} (${fileOf(s.side!)})`).join(' and ')}; restart the worker if its key changed`,
        },
      ];
    },
  },
  {
    id: 'worker-key-missing',
    severity: 'critical',
    scope: 'env',
    rootCauseRank: 4,
    detect: ({ ev }) => {
      const probe = probeOf(ev);
      const { worker } = ev;
      if (!worker || probe?.env.status !== 'ok' || (worker.key && worker.key.kind !== 'missing')) return [];
      return [
        {
          title: 'the worker has no Supabase key',
          evidence: [`${worker.source}: neither SUPABASE_SERVICE_ROLE_KEY nor SUPABASE_SECRET_KEY is set`],
          cause: 'the worker cannot authenticate to Supabase',
          fix: `set SUPABASE_SERVICE_ROLE_KEY in ${probe.workerDir.path}/.env and restart the worker`,
        },
      ];
    },
  },
  {
    id: 'key-expired',
    severity: 'critical',
    scope: 'env',
    detect: ({ ev }) => {
      const expired = sides(ev).filter((s) => s.side?.key && isExpired(s.side.key, ev.now));
      if (!expired.length) return [];
      return [
        {
          title: `${expired.map((s) => s.name).join(' and ')} ${plural(expired.length)} an expired key`,
          evidence: expired.map((s) => describeSide(s.side!, ev.now)),
          cause: 'Supabase rejects expired JWTs',
          fix: 'copy the current key from Project Settings → API into the variables named above',
        },
      ];
    },
  },
  {
    // The app writes where the worker does not read, while the worker and the runbook agree (targets.ts).
    id: 'local-supabase-target',
    severity: 'critical',
    scope: 'env',
    detect: ({ ev }) => {
      const v = judgeTargets(ev);
      return v.kind === 'odd' && v.odd.name === 'app' ? [appOddDraft(ev, v)] : [];
    },
  },
  {
    id: 'project-mismatch',
    severity: 'critical',
    scope: 'env',
    rootCauseRank: 5,
    detect: ({ ev }) => projectMismatches(ev),
  },
  {
    id: 'spark-supabase-unreachable',
    severity: 'critical',
    scope: 'env',
    rootCauseRank: 6,
    detect: ({ ev }) => {
      const probe = probeOf(ev);
      if (probe?.reach.status !== 'failed') return [];
      return [
        {
          title: "Spark cannot reach the worker's SUPABASE_URL",
          evidence: [
            `from Spark: ${probe.reach.message}`,
            ...(ev.worker?.url ? [`worker polls ${ev.worker.url.origin}`] : []),
          ],
          cause: "DNS, egress firewall or proxy on Spark, or a wrong SUPABASE_URL in the worker's .env",
          fix: `on Spark, run \`curl -sS "$SUPABASE_URL/rest/v1/"\` in ${probe.workerDir.path} with its .env loaded and fix what it reports`,
        },
      ];
    },
  },
  {
    id: 'worker-key-rejected',
    severity: 'critical',
    scope: 'env',
    rootCauseRank: 7,
    detect: ({ ev }) => {
      const probe = probeOf(ev);
      const reach = probe?.reach;
      if (!probe || reach?.status !== 'http-error' || (reach.httpStatus !== 401 && reach.httpStatus !== 403)) return [];
      return [
        {
          title: `Supabase rejects the worker's key (HTTP ${reach.httpStatus} from Spark)`,
          evidence: [ev.worker ? describeSide(ev.worker, ev.now) : 'worker key unknown'],
          cause: "the worker's key is revoked, expired or from another project",
          fix: `put the project's current service-role key in ${probe.workerDir.path}/.env and restart the worker`,
        },
      ];
    },
  },
  {
    id: 'clock-skew',
    severity: 'warning',
    scope: 'env',
    detect: ({ ev }) => {
      const skew = probeOf(ev)?.clockSkewMs;
      if (skew === undefined || Math.abs(skew) <= SKEW_WARN_MS) return [];
      return [
        {
          title: `Spark's clock is ${Math.round(Math.abs(skew) / 1000)} s ${skew > 0 ? 'ahead of' : 'behind'} this machine`,
          evidence: [`Spark: ${probeOf(ev)?.sparkNow?.toISOString()}, laptop: ${ev.now.toISOString()}`],
          cause: 'NTP is not running on one of the machines; ages and the fix gate are computed from timestamps',
          fix: 'on Spark: `timedatectl status`, enable NTP (`sudo timedatectl set-ntp true`)',
        },
      ];
    },
  },
  {
    id: 'disk-low',
    severity: 'warning',
    scope: 'env',
    detect: ({ ev }) => {
      const probe = probeOf(ev);
      if (!probe?.disk || !diskLow(probe.disk)) return [];
      return [
        {
          title: `Spark's disk is ${probe.disk.usedPercent}% full (${Math.round(probe.disk.availableKb / 1024)} MB free on ${probe.disk.mount})`,
          evidence: [`df on ${probe.workerDir.path}`],
          cause: 'a full disk stops the worker writing its log and temporary files',
          fix: `free space on Spark (old logs under ${probe.workerDir.path}/logs, caches) before requeueing`,
        },
      ];
    },
  },
  {
    id: 'config-warning',
    severity: 'warning',
    scope: 'env',
    detect: ({ ev }) =>
      ev.laptop.issues
        .filter((i) => i.severity === 'warning' && !KEY_VARS.has(i.name))
        .map((issue) => ({
          title: `${issue.name}: ${issue.message}`,
          evidence: [ev.laptop.envFile ? `in ${ev.laptop.envFile}` : 'in the environment'],
          cause: issue.notRead
            ? 'a misspelled or unknown variable is ignored, and the default is used instead'
            : 'the value is kept as it is, but it looks wrong: what uses this variable may fail or reach the wrong place',
          fix: issue.fix,
        })),
  },
];
