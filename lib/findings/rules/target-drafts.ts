/**
 * The findings of the odd one out (targets.ts judges): the app alone elsewhere is `local-supabase-target` (the app
 * writes where the worker does not read); the worker or the runbook alone elsewhere, all three apart, or the runbook
 * and the worker apart with no app to tell them, are `project-mismatch`. Each fix points at the instance the other
 * sides agree on, never at the odd one's.
 */

import { isOverdueQueued } from '../../core/stuck-rules.ts';
import type { Evidence, SupabaseSide } from '../../evidence/evidence.ts';
import type { Draft } from '../rule.ts';
import {
  agreedName,
  appInstanceLine,
  describeSide,
  laptopQueueLine,
  onlyHere,
  type Relation,
  relate,
  type Target,
  type Verdict,
} from './targets.ts';

type Odd = Extract<Verdict, { kind: 'odd' }>;

const fileOf = (side: SupabaseSide) => side.source.replace(/^.*? in /, '');
const notes = (relations: readonly (Relation | undefined)[]) =>
  relations.flatMap((r) => (r?.note ? [r.note] : [])).filter((n, i, all) => all.indexOf(n) === i);

/** What the odd side's address is, in words: "a local Supabase", "another project (ref)", "another Supabase". */
function whereWords(t: Target): string {
  if (t.kind === 'local') return 'a local Supabase';
  if (t.ref) return `another project (${t.ref.value})`;
  return `another Supabase (${t.origin})`;
}

/** Why the odd side differs from the others (refs that differ, a loopback address on Spark), when there is a why. */
function differs(v: Odd, ev: Evidence): Relation[] {
  return v.others.map((o) => relate(v.odd, o, ev));
}

/** The app alone elsewhere: `local-supabase-target`. */
export function appOddDraft(ev: Evidence, v: Odd): Draft {
  const app = v.odd.side;
  const workerKnown = v.others.some((t) => t.name === 'worker');
  const workerOrigin = (v.others.find((t) => t.name === 'worker') ?? v.others[0]).origin;
  const local = v.odd.kind === 'local';
  const detail = app.url?.localReason ?? (v.odd.ref ? `project ${v.odd.ref.value}` : v.odd.kind);
  return {
    title: `the app writes jobs to ${whereWords(v.odd)}; the worker polls another instance and never sees them`,
    evidence: [
      `app: ${app.urlVar}=${v.odd.origin} in ${fileOf(app)} (${detail})`,
      `worker polls ${workerOrigin}${workerKnown ? '' : " (the laptop's SUPABASE_URL; the worker's .env was not read)"}`,
      ...notes([v.agreement, ...differs(v, ev)]),
      ...appInstanceLine(ev, local ? 'the local instance' : "the app's instance"),
    ],
    cause: `the app's env points at ${local ? "a Supabase on the developer's machine" : 'another Supabase'}, not the one ${workerKnown ? 'the worker and the runbook agree on' : 'the worker polls'}`,
    fix: `set ${app.urlVar} (and ${app.keyVar ?? 'the anon/publishable key'}) in the app's env to ${agreedName(v.others, 'laptop')} and restart the app's dev server; jobs already in ${v.odd.origin} must be re-created there`,
    requeueSafe: false,
  };
}

/** The worker alone elsewhere: `project-mismatch`, the queue the runbook read as its evidence. */
function workerOddDraft(ev: Evidence, v: Odd): Draft {
  const worker = v.odd.side;
  const agreed = agreedName(v.others, 'laptop');
  const cloud = v.others.some((t) => t.kind === 'cloud');
  const here = onlyHere(ev, v.others);
  // Overdue queued jobs join the finding as the stalled queue's evidence (rank.ts); the count is said here otherwise.
  const overdue = ev.queue?.queued.oldest.some((j) => isOverdueQueued(j, ev.rules, ev.now));
  return {
    title: "the worker polls another Supabase than the app and the runbook use: the app's jobs are never picked up",
    evidence: [
      ...[worker, ev.laptop, ev.app].flatMap((s) => (s ? [describeSide(s, ev.now)] : [])),
      ...notes([v.agreement, ...differs(v, ev)]),
      ...(here ? [here] : []),
      ...(overdue ? [] : laptopQueueLine(ev, "the queue the runbook read (the app's)")),
    ],
    cause: `the worker's .env names ${v.odd.origin}, not the instance the app writes to and the runbook reads`,
    fix: `set SUPABASE_URL in ${fileOf(worker)} to ${agreed}${cloud ? '' : ' at the address Spark reaches it by'}, with that project's service-role key, then restart the worker; the jobs queued meanwhile are picked up then`,
  };
}

/** The runbook alone elsewhere: `project-mismatch`; what it showed of the queue is not the worker's queue. */
function laptopOddDraft(ev: Evidence, v: Odd): Draft {
  const laptop = ev.laptop;
  return {
    title:
      'the runbook reads another Supabase than the app and the worker use: the queue shown here is not the one the worker drains',
    evidence: [
      ...[laptop, ev.worker, ev.app].flatMap((s) => (s ? [describeSide(s, ev.now)] : [])),
      ...notes([v.agreement, ...differs(v, ev)]),
      ...appInstanceLine(ev, "the app's and the worker's instance"),
    ],
    cause:
      "the laptop's SUPABASE_URL is not the instance the app writes to and the worker polls: the queue findings of this run are about the wrong instance",
    fix: `set SUPABASE_URL (and ${laptop.keyVar ?? 'SUPABASE_SERVICE_ROLE_KEY'}) in ${laptop.envFile ?? "the laptop's .env"} to ${agreedName(v.others, 'app')}, then run the runbook again`,
  };
}

/** The project-mismatch drafts of where the sides point (the keys against their URLs are setup.ts'). */
export function sidesApartDrafts(ev: Evidence, v: Verdict): Draft[] {
  if (v.kind === 'odd' && v.odd.name === 'worker') return [workerOddDraft(ev, v)];
  if (v.kind === 'odd' && v.odd.name === 'laptop') return [laptopOddDraft(ev, v)];
  if (v.kind === 'pair-differs') {
    return [
      {
        title: 'the runbook and the worker look at different Supabase projects',
        evidence: [describeSide(v.laptop.side, ev.now), describeSide(v.worker.side, ev.now), ...notes([v.relation])],
        cause:
          "the laptop's SUPABASE_URL is not the one in the worker's .env: the queue shown here is not the one the worker drains",
        fix: "set SUPABASE_URL in the laptop's .env to the worker's project (or fix the worker's .env and restart it); set APP_ENV_FILE too, so the app's env can tell which of the two is right",
      },
    ];
  }
  if (v.kind === 'all-differ') {
    const app = ev.app;
    return [
      {
        title: 'the app, the worker and the runbook each use a different Supabase',
        evidence: [...v.targets.map((t) => describeSide(t.side, ev.now)), ...notes(v.relations)],
        cause: 'no two of them agree, so which instance is the right one cannot be told from here',
        fix: `decide which project is the real one (where the app's jobs must go), then point ${app?.urlVar ?? 'the URL'} in the app's env, SUPABASE_URL in the worker's .env (restart the worker) and SUPABASE_URL in the laptop's .env at it`,
      },
    ];
  }
  return [];
}
