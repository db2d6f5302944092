/**
 * The odd one out among the app, the worker and the runbook (lib/findings/rules/targets.ts): judged by comparing the
 * three sides' addresses and project refs, and the app's instance against the queue the runbook read, never by
 * whether an address is loopback. Every spelling of one project (loopback, private network, a tunnel, the cloud) is
 * tried with each side as the odd one out, and with all three agreeing.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Finding } from '../../lib/core/finding.ts';
import { DEFAULT_RULES } from '../../lib/core/stuck-rules.ts';
import type { Evidence, SupabaseSide } from '../../lib/evidence/evidence.ts';
import type { SparkEvidence } from '../../lib/evidence/spark-probe.ts';
import { diagnose } from '../../lib/findings/diagnosis.ts';
import { BUILTIN_ERROR_PATTERNS } from '../../lib/findings/error-patterns.ts';
import { judgeTargets } from '../../lib/findings/rules/targets.ts';
import type { Job } from '../../lib/io/jobs-db.ts';
import { inspectKey } from '../../lib/io/keys.ts';
import { classifySupabaseUrl } from '../../lib/io/supabase-url.ts';
import { opaqueKey, signedJwt } from '../helpers/fake-ports.ts';

const NOW = new Date('2026-01-15T12:00:00Z');
const REF = 'abcdefghijklmnopqrst';
const OTHER_REF = 'zyxwvutsrqponmlkjihg';
const CLOUD = `https://${REF}.supabase.co`;
const OTHER_CLOUD = `https://${OTHER_REF}.supabase.co`;
const CLI = 'http://127.0.0.1:54321';
const WORKER_ENV = '/home/sparkuser/srv/hd-worker/.env';

type Name = 'laptop' | 'worker' | 'app';
/** Where a side reads the project ref of a URL that does not carry it: SUPABASE_PROJECT_REF, or the key's `ref`. */
type RefVia = 'declared' | 'key' | 'none';

const jwts = new Map<string, string>();
beforeAll(async () => {
  for (const role of ['service_role', 'anon']) {
    for (const ref of [REF, OTHER_REF]) jwts.set(`${role}/${ref}`, await signedJwt({ role, ref }));
    jwts.set(`${role}/demo`, await signedJwt({ role, iss: 'supabase-demo' }));
  }
});

const origin = (url: string) => {
  const c = classifySupabaseUrl(url);
  if (!c.ok) throw new Error(`test URL ${url}: ${c.problem}`);
  return c;
};

/** One side's config. The app has no SUPABASE_PROJECT_REF (its env is not the runbook's): its ref is its key's. */
function side(name: Name, url: string, ref: string | undefined, via: RefVia): SupabaseSide {
  const role = name === 'app' ? 'anon' : 'service_role';
  const viaKey = via === 'key' || (name === 'app' && via === 'declared');
  const key =
    viaKey && ref
      ? jwts.get(`${role}/${ref}`)!
      : url === CLI
        ? jwts.get(`${role}/demo`)!
        : opaqueKey(name === 'app' ? 'publishable' : 'secret');
  const common = { url: origin(url), key: inspectKey(key), declaredRef: undefined as string | undefined };
  if (via === 'declared' && ref && name !== 'app') common.declaredRef = ref;
  if (name === 'app')
    return {
      source: 'NEXT_PUBLIC_SUPABASE_URL in /work/app/.env.local',
      urlVar: 'NEXT_PUBLIC_SUPABASE_URL',
      keyVar: 'NEXT_PUBLIC_SUPABASE_ANON_KEY',
      ...common,
    };
  const file = name === 'worker' ? WORKER_ENV : '/work/laptop/.env';
  return { source: `SUPABASE_URL in ${file}`, urlVar: 'SUPABASE_URL', keyVar: 'SUPABASE_SECRET_KEY', ...common };
}

let seq = 0;
function queuedJob(minutesAgo: number): Job {
  seq += 1;
  return {
    id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
    account_id: null,
    job_type: 'import_assets_jsonl',
    status: 'queued',
    attempts: 0,
    error: null,
    debug: null,
    created_at: new Date(NOW.getTime() - minutesAgo * 60_000).toISOString(),
    started_at: null,
    finished_at: null,
  };
}

function probe(): SparkEvidence {
  return {
    sparkNow: NOW,
    clockSkewMs: 0,
    workerDir: { path: '/home/sparkuser/srv/hd-worker', exists: true },
    env: { status: 'ok', vars: {} },
    processes: [{ pid: 4242, elapsedSeconds: 7200, startedAt: new Date(NOW.getTime() - 7_200_000), args: 'python3' }],
    log: { status: 'ok', size: 10, modifiedAt: NOW, tail: [], truncated: false },
    reach: { status: 'ok', httpStatus: 200, seconds: 0.1 },
    missingSections: [],
  };
}

interface Sides {
  laptop: SupabaseSide;
  worker?: SupabaseSide;
  app?: Evidence['app'];
  sparkHost?: string;
  queued?: Job[];
}

function evidence(s: Sides): Evidence {
  const queued = s.queued ?? [];
  return {
    now: NOW,
    rules: DEFAULT_RULES,
    laptop: { ...s.laptop, envFile: '/work/laptop/.env', issues: [] },
    supabase: { ok: true, ms: 50 },
    queue: {
      queued: { count: queued.length, oldest: queued },
      running: { count: 0, jobs: [] },
      failed: { count: 0, recent: [], since: NOW.toISOString() },
      done: { count: 0, latest: null },
    },
    spark: {
      ok: true,
      target: { host: s.sparkHost ?? '100.64.0.7', port: 2222, user: 'sparkuser', source: 'SPARK_HOST in .env' },
      fingerprint: 'SHA256:test',
      probe: probe(),
      connectMs: 10,
    },
    worker: s.worker,
    app: s.app,
  };
}

const WHERE_IDS = ['local-supabase-target', 'project-mismatch'];
/** The findings about where the sides point (not the keys against their own URLs, nor the queue). */
const whereFindings = (ev: Evidence): Finding[] =>
  diagnose(ev, BUILTIN_ERROR_PATTERNS, 'env').filter(
    (f) => WHERE_IDS.includes(f.id) && !f.title.includes('key belongs to another project'),
  );

/** Spellings of the one project the right sides use (REF). */
const SPELLINGS: [name: string, url: string][] = [
  ['cloud', CLOUD],
  ['loopback 127.0.0.1', 'http://127.0.0.1:8000'],
  ['loopback localhost', 'http://localhost:8000'],
  ['loopback [::1]', 'http://[::1]:8000'],
  ['0.0.0.0', 'http://0.0.0.0:8000'],
  ['host.docker.internal', 'http://host.docker.internal:8000'],
  ['private 10.x', 'http://10.0.0.5:8000'],
  ['private 192.168.x', 'http://192.168.1.20:8000'],
  ['Tailscale 100.x', 'http://100.101.102.103:8000'],
  ['tunnel localhost:8443', 'http://localhost:8443'],
];
/** The instance the odd side uses: the Supabase CLI's (no ref, the public demo keys), or another cloud project. */
const ELSEWHERE: [name: string, url: string, ref: string | undefined][] = [
  ['the Supabase CLI', CLI, undefined],
  ['another cloud project', OTHER_CLOUD, OTHER_REF],
];
const NAMES: Name[] = ['laptop', 'worker', 'app'];
/** Which of the two agreeing sides spells the project as `url` (the other uses the cloud URL), or both do. */
const LAYOUTS = ['first', 'second', 'both'] as const;

type Case = [spelling: string, via: RefVia, odd: Name, elsewhere: string, layout: (typeof LAYOUTS)[number]];
const cases: Case[] = SPELLINGS.flatMap(([spelling, url]) =>
  (url === CLOUD ? (['none'] as RefVia[]) : (['declared', 'key'] as RefVia[])).flatMap((via) =>
    NAMES.flatMap((odd) =>
      ELSEWHERE.flatMap(([elsewhere]) => LAYOUTS.map((layout): Case => [spelling, via, odd, elsewhere, layout])),
    ),
  ),
);

function build(spelling: string, via: RefVia, odd: Name, elsewhere: string, layout: Case[4]) {
  const url = SPELLINGS.find(([s]) => s === spelling)![1];
  const [, oddUrl, oddRef] = ELSEWHERE.find(([e]) => e === elsewhere)!;
  const [first, second] = NAMES.filter((n) => n !== odd);
  const urlOf = (n: Name) => (n === first ? (layout === 'second' ? CLOUD : url) : layout === 'first' ? CLOUD : url);
  const sides = Object.fromEntries(
    NAMES.map((n) => [n, n === odd ? side(n, oddUrl, oddRef, 'key') : side(n, urlOf(n), REF, via)]),
  ) as Record<Name, SupabaseSide>;
  const agreed = [first, second].map(urlOf);
  return { sides, agreed, oddOrigin: origin(oddUrl).origin };
}

describe('the odd one out among the app, the worker and the runbook', () => {
  it.each(cases)('%s (ref via %s): the %s on %s, project spelled %s', (spelling, via, odd, elsewhere, layout) => {
    const { sides, agreed, oddOrigin } = build(spelling, via, odd, elsewhere, layout);
    const ev = evidence(sides);
    const verdict = judgeTargets(ev);
    expect(verdict.kind).toBe('odd');
    if (verdict.kind === 'odd') expect(verdict.odd.name).toBe(odd);
    const found = whereFindings(ev);
    expect(found).toHaveLength(1);
    const f = found[0];
    // The fix points at the instance the other two agree on (its cloud spelling when one of them uses it).
    const target = agreed.includes(CLOUD) ? CLOUD : origin(agreed[0]).origin;
    expect(f.fix).toContain(`to ${agreed.includes(CLOUD) ? 'the cloud project' : 'the instance'}`);
    expect(f.fix).toContain(target);
    expect(f.fix).not.toContain(`to ${oddOrigin}`);
    expect(f.severity).toBe('critical');
    if (odd === 'app') {
      expect(f.id).toBe('local-supabase-target');
      expect(f.title).toMatch(/^the app writes jobs to (a local Supabase|another project \(zyx)/);
      expect(f.fix).toMatch(/^set NEXT_PUBLIC_SUPABASE_URL /);
      expect(f.requeueSafe).toBe(false);
    } else if (odd === 'worker') {
      expect(f.id).toBe('project-mismatch');
      expect(f.title).toMatch(/^the worker polls another Supabase than the app and the runbook use/);
      expect(f.fix).toMatch(new RegExp(`^set SUPABASE_URL in ${WORKER_ENV} to `));
    } else {
      expect(f.id).toBe('project-mismatch');
      expect(f.title).toMatch(/^the runbook reads another Supabase than the app and the worker use/);
      expect(f.fix).toMatch(/^set SUPABASE_URL \(and SUPABASE_SECRET_KEY\) in \/work\/laptop\/\.env to /);
    }
    for (const text of [f.title, f.cause, f.fix]) expect(text).not.toMatch(/failure [AB]\b/);
  });

  const agreeing: [spelling: string, via: RefVia][] = SPELLINGS.flatMap(([spelling, url]) =>
    (url === CLOUD ? (['none'] as RefVia[]) : (['declared', 'key'] as RefVia[])).map((via): [string, RefVia] => [
      spelling,
      via,
    ]),
  );
  it.each(agreeing)('all three agree on the project spelled %s (ref via %s) and as the cloud URL', (spelling, via) => {
    const url = SPELLINGS.find(([s]) => s === spelling)![1];
    for (const cloudSide of [...NAMES, undefined]) {
      const sides = Object.fromEntries(
        NAMES.map((n) => [n, side(n, n === cloudSide ? CLOUD : url, REF, via)]),
      ) as Record<Name, SupabaseSide>;
      const ev = evidence(sides);
      expect(judgeTargets(ev)).toEqual({ kind: 'agree' });
      expect(whereFindings(ev)).toEqual([]);
    }
  });
});

describe('what decides when addresses alone do not', () => {
  it("takes the app for the runbook's instance when the app's instance holds a job of the queue the runbook read", () => {
    // The app reaches the project through a tunnel with a publishable key (no ref); the worker is elsewhere.
    const queued = [queuedJob(10), queuedJob(5)];
    const app = {
      ...side('app', 'http://localhost:8443', undefined, 'none'),
      other: { ok: true as const, queued: 2, oldest: queued[0] },
    };
    const ev = evidence({
      laptop: side('laptop', CLOUD, REF, 'none'),
      worker: side('worker', CLI, undefined, 'none'),
      app,
      queued,
    });
    const v = judgeTargets(ev);
    expect(v.kind === 'odd' && v.odd.name).toBe('worker');
    const [f] = whereFindings(ev);
    expect(f.evidence).toContain(
      `the app's instance (http://localhost:8443) holds job ${queued[0].id}, which the runbook's queue holds too: one database`,
    );
    expect(f.evidence).toContain("the queue the runbook read (the app's) holds 2 queued jobs, oldest 10 min old");
    // Once they wait longer than the rule, they are the finding's jobs and the stalled queue's evidence instead.
    const late = [queuedJob(50)];
    const lateEv = evidence({
      laptop: side('laptop', CLOUD, REF, 'none'),
      worker: side('worker', CLI, undefined, 'none'),
      app: { ...app, other: { ok: true, queued: 1, oldest: late[0] } },
      queued: late,
    });
    const stalled = diagnose(lateEv, BUILTIN_ERROR_PATTERNS, 'all').filter((x) => x.id === 'project-mismatch');
    expect(stalled.map((x) => x.jobIds)).toEqual([[late[0].id]]);
    expect(stalled[0].evidence.some((l) => l.startsWith('the queue the runbook read'))).toBe(false);
  });

  it("keeps them apart when the app's instance holds other jobs than the runbook's queue", () => {
    const app = {
      ...side('app', 'http://localhost:8443', undefined, 'none'),
      other: { ok: true as const, queued: 3, oldest: queuedJob(42) },
    };
    const ev = evidence({
      laptop: side('laptop', CLOUD, REF, 'none'),
      worker: side('worker', CLOUD, REF, 'none'),
      app,
      queued: [queuedJob(5)],
    });
    const [f] = whereFindings(ev);
    expect(f.id).toBe('local-supabase-target');
    expect(f.evidence).toContain('the local instance holds 3 queued jobs, oldest 42 min old');
  });

  it('counts the real queue as evidence when the runbook is the odd one out', () => {
    const app = { ...side('app', CLOUD, REF, 'none'), other: { ok: true as const, queued: 7, oldest: queuedJob(90) } };
    const ev = evidence({
      laptop: side('laptop', CLI, undefined, 'none'),
      worker: side('worker', CLOUD, REF, 'none'),
      app,
    });
    const [f] = whereFindings(ev);
    expect(f.title).toMatch(/^the runbook reads another Supabase/);
    expect(f.evidence).toContain("the app's and the worker's instance holds 7 queued jobs, oldest 1 h 30 min old");
    expect(f.fix).toContain(`to the cloud project (${CLOUD})`);
  });

  it('names the worker, not the app, when the app is right and the worker polls the local instance (the sandbox)', () => {
    // The sandbox: its "cloud" is 127.0.0.1 too, Spark is this machine. The app is right; the worker is wrong.
    const cloud = 'http://127.0.0.1:39011';
    const ev = evidence({
      laptop: side('laptop', cloud, REF, 'declared'),
      worker: side('worker', CLI, undefined, 'none'),
      app: side('app', cloud, REF, 'key'),
      sparkHost: '127.0.0.1',
    });
    const [f] = whereFindings(ev);
    expect(f.id).toBe('project-mismatch');
    expect(f.title).toMatch(/^the worker polls another Supabase/);
    expect(f.fix).toContain(`to the instance the runbook and the app use (${cloud}, project ${REF})`);
    expect(f.fix).not.toContain(CLI);
  });

  it('tells two servers behind one loopback address apart by their refs when Spark is another machine', () => {
    const local = 'http://127.0.0.1:8000';
    const sides = {
      laptop: side('laptop', local, REF, 'declared'),
      worker: side('worker', local, OTHER_REF, 'declared'),
      app: side('app', local, REF, 'key'),
    };
    const remote = whereFindings(evidence({ ...sides, sparkHost: '100.64.0.7' }));
    expect(remote.map((f) => f.title)).toEqual([
      "the worker polls another Supabase than the app and the runbook use: the app's jobs are never picked up",
    ]);
    expect(remote[0].evidence).toContain(
      `${local} is a loopback address on Spark (Spark itself) and on this machine; the worker: project ${OTHER_REF} (SUPABASE_PROJECT_REF); the runbook: project ${REF} (SUPABASE_PROJECT_REF)`,
    );
    // One loopback address without refs that differ: a tunnel to one server (ssh -L), or the same machine.
    const tunnel = { ...sides, worker: side('worker', local, undefined, 'none') };
    expect(whereFindings(evidence({ ...tunnel, sparkHost: '100.64.0.7' }))).toEqual([]);
  });

  it('says, without deciding, that the worker may be right when the others agree only on a loopback address here', () => {
    const sides = {
      laptop: side('laptop', CLI, undefined, 'none'),
      worker: side('worker', CLOUD, REF, 'none'),
      app: side('app', CLI, undefined, 'none'),
    };
    const [f] = whereFindings(evidence(sides));
    expect(f.title).toMatch(/^the worker polls another Supabase/);
    expect(f.evidence).toContain(
      `the runbook and the app use ${CLI}, a loopback address on this machine with no project ref: Spark reaches it only through a tunnel; if it is a development instance, the worker is the one that is right`,
    );
    expect(f.fix).toContain('at the address Spark reaches it by');
    // Spark on this machine (the sandbox): its loopback is this machine's, nothing to add.
    const [here] = whereFindings(evidence({ ...sides, sparkHost: 'localhost' }));
    expect(here.evidence.some((l) => l.includes('only through a tunnel'))).toBe(false);
  });

  it('notes that a loopback address shared by the worker and the app is one server only through a tunnel', () => {
    const local = 'http://127.0.0.1:8000';
    const sides = {
      laptop: side('laptop', CLOUD, REF, 'none'),
      worker: side('worker', local, undefined, 'none'),
      app: side('app', local, undefined, 'none'),
    };
    const [f] = whereFindings(evidence(sides));
    expect(f.title).toMatch(/^the runbook reads another Supabase/);
    expect(f.evidence).toContain(
      `${local} is a loopback address on Spark and on this machine: one server only through a tunnel (ssh -L)`,
    );
    const [same] = whereFindings(evidence({ ...sides, sparkHost: '127.0.0.1' }));
    expect(same.evidence.some((l) => l.includes('ssh -L'))).toBe(false);
  });

  it('says so without guessing when all three differ', () => {
    const ev = evidence({
      laptop: side('laptop', CLOUD, REF, 'none'),
      worker: side('worker', OTHER_CLOUD, OTHER_REF, 'none'),
      app: side('app', CLI, undefined, 'none'),
    });
    expect(judgeTargets(ev).kind).toBe('all-differ');
    const found = whereFindings(ev);
    expect(found.map((f) => f.id)).toEqual(['project-mismatch']);
    expect(found[0].title).toBe('the app, the worker and the runbook each use a different Supabase');
    expect(found[0].cause).toContain('cannot be told from here');
    for (const url of [CLOUD, OTHER_CLOUD, CLI]) expect(found[0].fix).not.toContain(url);
  });

  it("judges the app against the runbook alone when the worker's .env was not read, and says so", () => {
    const ev = evidence({ laptop: side('laptop', CLOUD, REF, 'none'), app: side('app', CLI, undefined, 'none') });
    const [f] = whereFindings(ev);
    expect(f.id).toBe('local-supabase-target');
    expect(f.evidence[1]).toBe(`worker polls ${CLOUD} (the laptop's SUPABASE_URL; the worker's .env was not read)`);
  });
});
