/**
 * Which Supabase each side uses, and who is the odd one out: the runbook on the laptop (it holds the queue it just
 * read), the worker on Spark (its .env) and the app (its env). Two sides use the same instance when they name the same
 * address (unless it is a loopback address on Spark and on this machine, and their project refs differ: two servers),
 * else when both carry a project ref (the URL's host, SUPABASE_PROJECT_REF, the key's `ref`) and the refs agree (a
 * tunnel such as localhost:8443 to the cloud project), else when the app's instance holds a job the laptop's queue
 * holds too (the same database under another address). Otherwise they differ. A loopback address is evidence here,
 * never the verdict: the other two sides decide which instance is the right one.
 */

import { countText } from '../../core/text.ts';
import { type Evidence, formatAge, minutesBetween, type SupabaseSide } from '../../evidence/evidence.ts';
import { describeKey } from '../../io/keys.ts';

export type SideName = 'laptop' | 'worker' | 'app';

export interface Target {
  name: SideName;
  side: SupabaseSide;
  origin: string;
  kind: 'cloud' | 'local' | 'custom';
  /** The project ref, and where it was read. */
  ref?: { value: string; from: string };
}

/** How two sides relate: the same instance or not, and what says so. */
export interface Relation {
  same: boolean;
  by: 'address' | 'ref' | 'queue';
  /** The fact behind the relation, for the evidence; none when the addresses are simply equal. */
  note?: string;
}

export type Verdict =
  | { kind: 'agree' }
  /** `others` agree with each other (one side when the third is unknown); `odd` differs from them. */
  | { kind: 'odd'; odd: Target; others: Target[]; agreement?: Relation }
  /** Only the laptop and the worker are known, and they differ: which is right is not told by two sides. */
  | { kind: 'pair-differs'; laptop: Target; worker: Target; relation: Relation }
  | { kind: 'all-differ'; targets: Target[]; relations: Relation[] };

export const LABEL: Record<SideName, string> = { laptop: 'the runbook', worker: 'the worker', app: 'the app' };

const LOOPBACK_HOST = /^(?:localhost|.*\.localhost|127\.\d+\.\d+\.\d+|\[::1\]|::1|0\.0\.0\.0)$/i;

export function describeSide(side: SupabaseSide, now: Date): string {
  const url = side.url ? side.url.origin : '(no valid URL)';
  const key = side.key ? `; key ${side.keyVar}: ${describeKey(side.key, now)}` : '';
  return `${side.source}: ${url}${key}`;
}

function refOf(side: SupabaseSide): Target['ref'] {
  if (side.url?.projectRef) return { value: side.url.projectRef, from: 'its URL' };
  if (side.declaredRef) return { value: side.declaredRef, from: 'SUPABASE_PROJECT_REF' };
  if (side.key?.ref) return { value: side.key.ref, from: `its key ${side.keyVar ?? ''}`.trimEnd() };
  return undefined;
}

function target(name: SideName, side: SupabaseSide | undefined): Target | undefined {
  if (!side?.url) return undefined;
  return { name, side, origin: side.url.origin, kind: side.url.kind, ref: refOf(side) };
}

/** Whether Spark is this machine (SPARK_HOST a loopback address): only then is Spark's loopback the laptop's. */
function sparkIsHere(ev: Evidence): boolean {
  const host = ev.spark?.target?.host;
  return host !== undefined && LOOPBACK_HOST.test(host);
}

function isLoopback(t: Target): boolean {
  const host = t.side.url?.url.hostname ?? '';
  return LOOPBACK_HOST.test(host) || host.toLowerCase() === 'host.docker.internal';
}

/** Every job id the laptop's queue read holds. */
function laptopJobIds(ev: Evidence): Set<string> {
  const q = ev.queue;
  if (!q) return new Set();
  const jobs = [...q.queued.oldest, ...q.running.jobs, ...q.failed.recent, ...(q.done.latest ? [q.done.latest] : [])];
  return new Set(jobs.map((j) => j.id));
}

/** The app's instance and the laptop's queue hold the same job: one database, whatever the addresses say. */
function sharedJob(ev: Evidence): string | undefined {
  const other = ev.app?.other;
  const id = other?.ok ? other.oldest?.id : undefined;
  return id && laptopJobIds(ev).has(id) ? id : undefined;
}

const refText = (t: Target) => (t.ref ? `project ${t.ref.value} (${t.ref.from})` : 'no project ref');

export function relate(a: Target, b: Target, ev: Evidence): Relation {
  const spark = a.name === 'worker' ? a : b;
  const acrossMachines = (a.name === 'worker') !== (b.name === 'worker') && !sparkIsHere(ev) && isLoopback(spark);
  if (a.origin === b.origin) {
    // One loopback address on Spark and on this machine: a tunnel to the same server (ssh -L 8000:localhost:8000),
    // or two servers. Only refs that differ tell them apart.
    const twoServers = acrossMachines && a.ref && b.ref && a.ref.value !== b.ref.value;
    if (!twoServers) {
      const sameRef = a.ref && b.ref;
      const note =
        acrossMachines && !sameRef
          ? `${spark.origin} is a loopback address on Spark and on this machine: one server only through a tunnel (ssh -L)`
          : undefined;
      return { same: true, by: 'address', note };
    }
    return {
      same: false,
      by: 'ref',
      note: `${spark.origin} is a loopback address on Spark (Spark itself) and on this machine; ${LABEL[a.name]}: ${refText(a)}; ${LABEL[b.name]}: ${refText(b)}`,
    };
  }
  if (a.ref && b.ref) {
    const same = a.ref.value === b.ref.value;
    return { same, by: 'ref', note: `${LABEL[a.name]}: ${refText(a)}; ${LABEL[b.name]}: ${refText(b)}` };
  }
  const names = new Set([a.name, b.name]);
  const shared = names.has('laptop') && names.has('app') ? sharedJob(ev) : undefined;
  if (shared) {
    return {
      same: true,
      by: 'queue',
      note: `the app's instance (${ev.app?.url?.origin}) holds job ${shared}, which the runbook's queue holds too: one database`,
    };
  }
  return { same: false, by: 'address' };
}

/** The sides that could be read (a URL that parses), and how they relate. */
export function judgeTargets(ev: Evidence): Verdict {
  const laptop = target('laptop', ev.laptop);
  const worker = target('worker', ev.worker);
  const app = target('app', ev.app);
  if (!laptop) return { kind: 'agree' };
  if (!app) {
    if (!worker) return { kind: 'agree' };
    const relation = relate(laptop, worker, ev);
    return relation.same ? { kind: 'agree' } : { kind: 'pair-differs', laptop, worker, relation };
  }
  if (!worker) {
    // The worker's .env was not read: the laptop stands for it (the runbook is configured for the worker's project).
    return relate(laptop, app, ev).same ? { kind: 'agree' } : { kind: 'odd', odd: app, others: [laptop] };
  }
  const pairs: [Target, Target, Target][] = [
    [laptop, worker, app],
    [laptop, app, worker],
    [worker, app, laptop],
  ];
  const related = pairs.map(([a, b, third]) => ({ a, b, third, relation: relate(a, b, ev) }));
  const same = related.filter((r) => r.relation.same);
  // Two agreeing pairs make the third agree too (what differs there is only an address without a ref).
  if (same.length >= 2) return { kind: 'agree' };
  if (same.length === 1) {
    const { a, b, third, relation } = same[0];
    return { kind: 'odd', odd: third, others: [a, b], agreement: relation };
  }
  return { kind: 'all-differ', targets: [laptop, worker, app], relations: related.map((r) => r.relation) };
}

/**
 * When the worker is the odd one out on another machine than this one, and the instance the others agree on is known
 * only as a loopback address here: Spark reaches it only through a tunnel, and if it is a development instance, the
 * worker may be the right one. Said, not decided.
 */
export function onlyHere(ev: Evidence, others: readonly Target[]): string | undefined {
  if (sparkIsHere(ev) || !others.every((t) => isLoopback(t) && !t.ref)) return undefined;
  const origins = [...new Set(others.map((t) => t.origin))].join(' and ');
  return `${LABEL[others[0].name]} and ${LABEL[others[1]?.name ?? others[0].name]} use ${origins}, a loopback address on this machine with no project ref: Spark reaches it only through a tunnel; if it is a development instance, the worker is the one that is right`;
}

/** The spelling of the agreed instance to point the odd side at: a cloud URL works from anywhere; else `prefer`'s. */
export function agreedOrigin(others: readonly Target[], prefer: SideName): string {
  const cloud = others.find((t) => t.kind === 'cloud');
  return (cloud ?? others.find((t) => t.name === prefer) ?? others[0]).origin;
}

/** The agreed instance in words: "the cloud project (https://…)" or "the instance … use (origin, project ref)". */
export function agreedName(others: readonly Target[], prefer: SideName): string {
  const origin = agreedOrigin(others, prefer);
  if (others.some((t) => t.origin === origin && t.kind === 'cloud')) return `the cloud project (${origin})`;
  const ref = others.find((t) => t.ref)?.ref?.value;
  const who = others.map((t) => LABEL[t.name]).join(' and ');
  return `the instance ${who} use (${origin}${ref ? `, project ${ref}` : ''})`;
}

/** What the queued jobs of an instance say: how many, and how old the oldest. */
export function queuedLine(
  where: string,
  count: number,
  oldestCreated: string | undefined,
  now: Date,
  estimated = false,
): string {
  const oldest = oldestCreated ? `, oldest ${formatAge(minutesBetween(now, oldestCreated))} old` : '';
  return `${where} holds ${countText(count, estimated)} queued job${count === 1 ? '' : 's'}${oldest}`;
}

/** The app's instance, when it was counted (the app points elsewhere than the laptop): its queued jobs. */
export function appInstanceLine(ev: Evidence, where: string): string[] {
  const other = ev.app?.other;
  if (!other) return [];
  if (!other.ok) return [`${where} did not answer: ${other.message}`];
  return [queuedLine(where, other.queued, other.oldest?.created_at, ev.now, other.estimated)];
}

/** The queue the laptop read: the queued jobs in it. */
export function laptopQueueLine(ev: Evidence, where: string): string[] {
  const q = ev.queue;
  if (!q) return [];
  return [queuedLine(where, q.queued.count, q.queued.oldest[0]?.created_at, ev.now, q.queued.estimated)];
}
