import { beforeAll, describe, expect, it } from 'vitest';
import { atLeastWarning, type Finding, type Severity, sortFindings } from '../../lib/core/finding.ts';
import type { SshFailure } from '../../lib/core/ports.ts';
import { DEFAULT_RULES } from '../../lib/core/stuck-rules.ts';
import type { Evidence, SupabaseSide } from '../../lib/evidence/evidence.ts';
import type { SparkEvidence } from '../../lib/evidence/spark-probe.ts';
import { diagnose, environmentFindings, logContextFor, queueFindings } from '../../lib/findings/diagnosis.ts';
import { BUILTIN_ERROR_PATTERNS } from '../../lib/findings/error-patterns.ts';
import { fixGate } from '../../lib/findings/fix-gate.ts';
import { byCause } from '../../lib/findings/rank.ts';
import type { DbFailure, Job, JobStatus, QueueSnapshot } from '../../lib/io/jobs-db.ts';
import { inspectKey } from '../../lib/io/keys.ts';
import { classifySupabaseUrl, type SupabaseUrlInfo } from '../../lib/io/supabase-url.ts';
import { opaqueKey, signedJwt } from '../helpers/fake-ports.ts';

const NOW = new Date('2026-01-15T12:00:00Z');
const ago = (minutes: number) => new Date(NOW.getTime() - minutes * 60_000);
const isoAgo = (minutes: number) => ago(minutes).toISOString();

const REF = 'abcdefghijklmnopqrst';
const OTHER_REF = 'zyxwvutsrqponmlkjihg';
const CLOUD = `https://${REF}.supabase.co`;
const OTHER_CLOUD = `https://${OTHER_REF}.supabase.co`;
const LOCAL = 'http://127.0.0.1:54321';
const WORKER_DIR = '/home/sparkuser/srv/hd-worker';

const keys = {
  laptopService: '',
  workerService: '',
  anon: '',
  otherProjectService: '',
  otherProjectAnon: '',
  expiredService: '',
  localAnon: '',
  publishable: opaqueKey('publishable'),
  secret: opaqueKey('secret'),
};

beforeAll(async () => {
  keys.laptopService = await signedJwt({ role: 'service_role', ref: REF });
  keys.workerService = await signedJwt({ role: 'service_role', ref: REF });
  keys.anon = await signedJwt({ role: 'anon', ref: REF });
  keys.otherProjectService = await signedJwt({ role: 'service_role', ref: OTHER_REF });
  keys.otherProjectAnon = await signedJwt({ role: 'anon', ref: OTHER_REF });
  keys.expiredService = await signedJwt({ role: 'service_role', ref: REF, exp: ago(60 * 24) });
  keys.localAnon = await signedJwt({ role: 'anon', iss: 'supabase-demo' });
});

function urlInfo(url: string): SupabaseUrlInfo {
  const c = classifySupabaseUrl(url);
  if (!c.ok) throw new Error(`test URL ${url}: ${c.problem}`);
  return c;
}

function side(source: string, urlVar: string, url: string, keyVar?: string, key?: string): SupabaseSide {
  return { source, urlVar, url: urlInfo(url), keyVar, key: key === undefined ? undefined : inspectKey(key) };
}

const laptopSide = (url = CLOUD, key = keys.laptopService, keyVar = 'SUPABASE_SERVICE_ROLE_KEY') =>
  side('SUPABASE_URL in /work/laptop/.env', 'SUPABASE_URL', url, keyVar, key);
const workerSide = (url = CLOUD, key = keys.workerService, keyVar = 'SUPABASE_SERVICE_ROLE_KEY') =>
  side(`SUPABASE_URL in ${WORKER_DIR}/.env`, 'SUPABASE_URL', url, keyVar, key);
const appSide = (url = CLOUD, key = keys.anon, keyVar = 'NEXT_PUBLIC_SUPABASE_ANON_KEY') =>
  side('NEXT_PUBLIC_SUPABASE_URL in /work/app/.env.local', 'NEXT_PUBLIC_SUPABASE_URL', url, keyVar, key);

let seq = 0;
function job(status: JobStatus, over: Partial<Job> = {}): Job {
  seq += 1;
  return {
    id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
    account_id: null,
    job_type: 'import_assets_jsonl',
    status,
    attempts: 1,
    error: null,
    debug: null,
    created_at: isoAgo(120),
    started_at: null,
    finished_at: null,
    ...over,
  };
}

function probe(over: Partial<SparkEvidence> = {}): SparkEvidence {
  return {
    sparkNow: NOW,
    clockSkewMs: 400,
    workerDir: { path: WORKER_DIR, exists: true },
    env: { status: 'ok', vars: { SUPABASE_URL: CLOUD } },
    processes: [{ pid: 4242, elapsedSeconds: 7200, startedAt: ago(120), args: 'node worker.mjs' }],
    log: {
      status: 'ok',
      size: 4096,
      modifiedAt: ago(0.5),
      tail: ['2026-01-15T11:59:30Z INFO poll queued=0'],
      truncated: false,
    },
    disk: { availableKb: 50_000_000, usedPercent: 40, mount: '/' },
    reach: { status: 'ok', httpStatus: 200, seconds: 0.1 },
    missingSections: [],
    ...over,
  };
}

function queue(
  over: { queued?: Job[]; queuedCount?: number; running?: Job[]; failed?: Job[]; done?: Job | null } = {},
): QueueSnapshot {
  const queued = over.queued ?? [];
  const running = over.running ?? [];
  const failed = over.failed ?? [];
  const done = over.done === undefined ? job('done', { finished_at: isoAgo(1), started_at: isoAgo(2) }) : over.done;
  return {
    queued: { count: over.queuedCount ?? queued.length, oldest: queued },
    running: { count: running.length, jobs: running },
    failed: { count: failed.length, recent: failed, since: isoAgo(24 * 60) },
    done: { count: 10, latest: done },
  };
}

type EvidenceOver = Omit<Partial<Evidence>, 'spark'> & { probe?: SparkEvidence; spark?: Evidence['spark'] | null };

function evidence(over: EvidenceOver = {}): Evidence {
  const { probe: p, spark, ...rest } = over;
  return {
    now: NOW,
    rules: DEFAULT_RULES,
    laptop: { ...laptopSide(), envFile: '/work/laptop/.env', issues: [] },
    supabase: { ok: true, ms: 80 },
    queue: queue(),
    spark:
      spark === null
        ? undefined
        : (spark ?? {
            ok: true,
            target: { host: 'spark', port: 2222, user: 'sparkuser', source: 'SPARK_HOST in .env' },
            fingerprint: 'SHA256:test',
            probe: p ?? probe(),
            connectMs: 40,
          }),
    worker: workerSide(),
    app: appSide(),
    ...rest,
  };
}

const all = (ev: Evidence) => diagnose(ev, BUILTIN_ERROR_PATTERNS, 'all');
const ids = (findings: readonly Finding[]) => findings.map((f) => f.id);
const only = (findings: readonly Finding[], id: string): Finding => {
  const matching = findings.filter((f) => f.id === id);
  expect(matching, `exactly one ${id} in ${ids(findings).join(', ')}`).toHaveLength(1);
  return matching[0];
};

describe('a healthy system', () => {
  it('yields no finding at all, in either scope', () => {
    expect(all(evidence())).toEqual([]);
    expect(diagnose(evidence(), BUILTIN_ERROR_PATTERNS, 'env')).toEqual([]);
  });

  it('still yields nothing at warning level with a busy queue that moves', () => {
    const ev = evidence({
      queue: queue({
        queued: [job('queued', { created_at: isoAgo(3) })],
        running: [job('running', { started_at: isoAgo(10) })],
        failed: [job('failed', { error: 'boom', attempts: 1, finished_at: isoAgo(30) })],
      }),
    });
    const serious = all(ev).filter((f) => f.id !== 'unknown-failure' && atLeastWarning(f));
    expect(serious).toEqual([]);
  });
});

describe('failure A: the app writes to a local Supabase', () => {
  const cases: [name: string, other: NonNullable<Evidence['app']>['other'], line: string | undefined][] = [
    [
      'holding queued jobs',
      { ok: true, queued: 3, oldest: job('queued', { created_at: isoAgo(40) }) },
      'the local instance holds 3 queued jobs, oldest 40 min old',
    ],
    ['holding one job', { ok: true, queued: 1, oldest: null }, 'the local instance holds 1 queued job'],
    [
      'not answering',
      { ok: false, message: 'connection refused' },
      'the local instance did not answer: connection refused',
    ],
    ['not queried', undefined, undefined],
  ];
  it.each(cases)('is reported as local-supabase-target with the local instance %s', (_name, other, line) => {
    const ev = evidence({ app: { ...appSide(LOCAL, keys.localAnon), other } });
    const findings = all(ev);
    const f = only(findings, 'local-supabase-target');
    expect(f.severity).toBe('critical');
    expect(f.requeueSafe).toBe(false);
    expect(f.evidence[0]).toMatch(
      /^app: NEXT_PUBLIC_SUPABASE_URL=http:\/\/127\.0\.0\.1:54321 in \/work\/app\/\.env\.local \(/,
    );
    expect(f.evidence[0]).toContain('loopback');
    expect(f.evidence).toContain(`worker polls ${CLOUD}`);
    if (line) expect(f.evidence).toContain(line);
    else expect(f.evidence).toHaveLength(2);
    expect(f.fix).toContain(`to the cloud project (${CLOUD})`);
    expect(ids(findings)).not.toContain('project-mismatch');
    expect(findings[0].id).toBe('local-supabase-target');
  });

  it("says the worker's URL is the laptop's when the worker's .env was not read", () => {
    const ev = evidence({ worker: undefined, spark: null, app: { ...appSide(LOCAL, keys.localAnon) } });
    expect(only(environmentFindings(ev), 'local-supabase-target').evidence[1]).toBe(
      `worker polls ${CLOUD} (the laptop's SUPABASE_URL; the worker's .env was not read)`,
    );
  });

  it('is not reported when everything, the worker included, uses the same local instance (the sandbox)', () => {
    const ev = evidence({
      laptop: { ...laptopSide(LOCAL, keys.secret, 'SUPABASE_SECRET_KEY'), issues: [] },
      worker: workerSide(LOCAL, keys.secret, 'SUPABASE_SECRET_KEY'),
      app: appSide(LOCAL, keys.localAnon),
    });
    expect(all(ev)).toEqual([]);
  });

  // Before the odd-one-out judgement this was a project-mismatch ("the app and the worker use different projects",
  // fix: point both at the same project). The app is the odd one out here (the worker and the runbook agree), which
  // is what local-supabase-target means: the app writes where the worker does not read.
  it('is local-supabase-target, pointing the app at the agreed project, when the app alone uses another cloud project', () => {
    const findings = all(evidence({ app: appSide(OTHER_CLOUD, keys.otherProjectAnon) }));
    const f = only(findings, 'local-supabase-target');
    expect(f.title).toBe(
      `the app writes jobs to another project (${OTHER_REF}); the worker polls another instance and never sees them`,
    );
    expect(f.evidence).toContain(`worker polls ${CLOUD}`);
    expect(f.fix).toContain(`to the cloud project (${CLOUD})`);
    expect(f.fix).not.toContain(`to ${OTHER_CLOUD}`);
    expect(ids(findings)).not.toContain('project-mismatch');
  });
});

describe('wrong-key-role', () => {
  const cases: [name: string, over: () => EvidenceOver, title: string, fixNames: string][] = [
    [
      'an anon JWT in the worker',
      () => ({ worker: workerSide(CLOUD, keys.anon) }),
      'the worker holds a key that row-level security hides every job from',
      `SUPABASE_SERVICE_ROLE_KEY (${WORKER_DIR}/.env)`,
    ],
    [
      'a publishable key in the worker',
      () => ({ worker: workerSide(CLOUD, keys.publishable, 'SUPABASE_SECRET_KEY') }),
      'the worker holds a key that row-level security hides every job from',
      `SUPABASE_SECRET_KEY (${WORKER_DIR}/.env)`,
    ],
    [
      'an anon JWT on the laptop',
      () => ({ laptop: { ...laptopSide(CLOUD, keys.anon), issues: [] } }),
      'the runbook (laptop) holds a key that row-level security hides every job from',
      'SUPABASE_SERVICE_ROLE_KEY (/work/laptop/.env)',
    ],
    [
      'weak keys on both',
      () => ({ laptop: { ...laptopSide(CLOUD, keys.publishable), issues: [] }, worker: workerSide(CLOUD, keys.anon) }),
      'the runbook (laptop) and the worker hold a key that row-level security hides every job from',
      'SUPABASE_SERVICE_ROLE_KEY (/work/laptop/.env) and SUPABASE_SERVICE_ROLE_KEY',
    ],
  ];
  it.each(cases)('is reported for %s, naming the variable to fix and never the key', (_name, over, title, fixNames) => {
    const f = only(all(evidence(over())), 'wrong-key-role');
    expect(f.severity).toBe('critical');
    expect(f.title).toBe(title);
    expect(f.fix).toContain(fixNames);
    const text = JSON.stringify(f);
    for (const k of [keys.anon, keys.publishable]) {
      expect(text).not.toContain(k);
      if (k.includes('.')) expect(text).not.toContain(k.split('.')[2]);
    }
  });

  it('describes the weak key by role and project', () => {
    const f = only(all(evidence({ worker: workerSide(CLOUD, keys.anon) })), 'wrong-key-role');
    expect(f.evidence[0]).toMatch(
      new RegExp(
        `^SUPABASE_URL in ${WORKER_DIR}/\\.env: ${CLOUD}; key SUPABASE_SERVICE_ROLE_KEY: anon JWT for project ${REF}`,
      ),
    );
  });

  it('is not reported for the app, whose key is meant to be public', () => {
    expect(
      ids(all(evidence({ app: appSide(CLOUD, keys.publishable, 'NEXT_PUBLIC_SUPABASE_PUBLISHABLE_KEY') }))),
    ).toEqual([]);
  });

  it('carries the overdue queued jobs as its evidence instead of a separate queue-stalled finding', () => {
    const waiting = [job('queued', { created_at: isoAgo(50) })];
    const findings = all(
      evidence({ worker: workerSide(CLOUD, keys.anon), queue: queue({ queued: waiting, done: null }) }),
    );
    expect(only(findings, 'wrong-key-role').jobIds).toEqual([waiting[0].id]);
    expect(ids(findings)).not.toContain('queue-stalled');
  });
});

describe('project-mismatch', () => {
  it("is reported when the worker's URL is another project than the laptop's, with no app to tell which is right", () => {
    const findings = all(evidence({ worker: workerSide(OTHER_CLOUD, keys.otherProjectService), app: undefined }));
    const f = findings.find((x) => x.title === 'the runbook and the worker look at different Supabase projects');
    expect(f?.severity).toBe('critical');
    expect(f?.evidence[0]).toContain(CLOUD);
    expect(f?.evidence[1]).toContain(OTHER_CLOUD);
  });

  it('names the worker as the odd one out when the app agrees with the runbook', () => {
    const findings = all(evidence({ worker: workerSide(OTHER_CLOUD, keys.otherProjectService) }));
    const f = only(findings, 'project-mismatch');
    expect(f.title).toMatch(/^the worker polls another Supabase than the app and the runbook use/);
    expect(f.evidence[0]).toContain(OTHER_CLOUD);
    expect(f.fix).toContain(`to the cloud project (${CLOUD})`);
  });

  const refCases: [name: string, over: () => EvidenceOver, title: string][] = [
    [
      "a laptop key of another project than the laptop's URL",
      () => ({ laptop: { ...laptopSide(CLOUD, keys.otherProjectService), issues: [] } }),
      "the runbook (laptop)'s key belongs to another project than its URL",
    ],
    [
      "a worker key of another project than the worker's URL",
      () => ({ worker: workerSide(CLOUD, keys.otherProjectService) }),
      "the worker's key belongs to another project than its URL",
    ],
    [
      'a self-hosted URL whose declared ref differs from the key',
      () => ({
        laptop: {
          ...side(
            'SUPABASE_URL in /l/.env',
            'SUPABASE_URL',
            'https://db.example.internal',
            'SUPABASE_SERVICE_ROLE_KEY',
            keys.otherProjectService,
          ),
          declaredRef: REF,
          issues: [],
        },
        worker: { ...workerSide('https://db.example.internal', keys.workerService), declaredRef: REF },
        app: appSide('https://db.example.internal', keys.anon),
      }),
      "the runbook (laptop)'s key belongs to another project than its URL",
    ],
  ];
  it.each(refCases)('is reported for %s, naming both refs and only the masked key', (_name, over, title) => {
    const f = all(evidence(over())).find((x) => x.title === title);
    expect(f?.id).toBe('project-mismatch');
    expect(f?.evidence[0]).toContain(`URL project ${REF}, key project ${OTHER_REF}`);
    expect(JSON.stringify(f)).not.toContain(keys.otherProjectService);
    expect(f?.fix).toContain(`from project ${REF}'s Settings`);
  });

  it("does not compare the app's key ref with a local URL (the CLI's keys carry no project)", () => {
    const app = { ...appSide(LOCAL, keys.anon) };
    const findings = all(evidence({ app }));
    expect(findings.some((f) => f.title.startsWith("the app's key"))).toBe(false);
  });
});

describe('a probe cut short', () => {
  it('says the worker side is unknown (could not run) instead of reporting a missing folder', () => {
    const cut = probe({
      workerDir: { path: '~/srv/hd-worker', exists: false },
      env: { status: 'missing' },
      processes: [],
      missingSections: ['dir', 'env', 'process', 'procstart', 'logstat', 'logtail', 'disk', 'reach', 'end'],
    });
    const found = ids(all(evidence({ probe: cut, queue: queue() })));
    expect(found[0]).toBe('spark-probe-incomplete');
    expect(found).not.toContain('worker-dir-missing');
    expect(found).not.toContain('worker-env-unreadable');
    expect(found).not.toContain('worker-down');
  });

  it('still reports worker-down when the process section arrived and only the end was lost', () => {
    const cut = probe({ processes: [], missingSections: ['end'] });
    const found = ids(all(evidence({ probe: cut, queue: queue() })));
    expect(found).toContain('spark-probe-incomplete');
    expect(found).toContain('worker-down');
  });
});

describe('worker-down', () => {
  const overdue = () => [job('queued', { created_at: isoAgo(45) }), job('pending', { created_at: isoAgo(30) })];

  it('is reported when the probe sees no worker process', () => {
    const f = only(all(evidence({ probe: probe({ processes: [] }), queue: queue() })), 'worker-down');
    expect(f.severity).toBe('critical');
    expect(f.evidence[0]).toBe(`no process works in ${WORKER_DIR} or names it`);
    expect(f.evidence[1]).toBe('logs/worker.log last written 30 s ago');
    expect(f.evidence[2]).toBe('last log line: 2026-01-15T11:59:30Z INFO poll queued=0');
    expect(f.fix).toContain(WORKER_DIR);
  });

  it.each([
    ['no worker activity in the table', null],
    ['a job finished a minute ago', job('done', { finished_at: isoAgo(1) })],
  ] as const)(
    'carries the overdue queued jobs as evidence and jobIds, with no separate queue finding, after %s',
    (_name, done) => {
      const waiting = overdue();
      const findings = all(
        evidence({ probe: probe({ processes: [] }), queue: queue({ queued: waiting, queuedCount: 7, done }) }),
      );
      const f = only(findings, 'worker-down');
      expect(f.jobIds).toEqual(waiting.map((j) => j.id));
      expect(f.evidence).toContain('7 queued/pending jobs; 2+ waiting longer than the rule, oldest 45 min');
      expect(
        f.evidence.some((l) => l.startsWith('last worker activity in the table') || l.startsWith('no worker activity')),
      ).toBe(true);
      expect(ids(findings)).not.toContain('queue-stalled');
      expect(ids(findings)).not.toContain('queue-backlog');
    },
  );

  it('is not reported when the worker folder itself is missing (that finding says more)', () => {
    const findings = all(evidence({ probe: probe({ processes: [], workerDir: { path: WORKER_DIR, exists: false } }) }));
    expect(ids(findings)).toContain('worker-dir-missing');
    expect(ids(findings)).not.toContain('worker-down');
  });
});

describe('queued jobs without a root cause', () => {
  it('are queue-stalled (critical) when the worker runs but nothing moved', () => {
    const waiting = [job('queued', { created_at: isoAgo(30) })];
    const f = only(all(evidence({ queue: queue({ queued: waiting, done: null }) })), 'queue-stalled');
    expect(f.severity).toBe('critical');
    expect(f.jobIds).toEqual([waiting[0].id]);
    expect(f.evidence).toContain('worker runs (pid 4242)');
  });

  it('are a queue-backlog (info) when the worker is busy', () => {
    const waiting = [job('queued', { created_at: isoAgo(30) })];
    const f = only(all(evidence({ queue: queue({ queued: waiting }) })), 'queue-backlog');
    expect(f.severity).toBe('info');
  });

  it('follow the per-job_type queued rule', () => {
    const waiting = [job('queued', { job_type: 'thumbnail', created_at: isoAgo(8) })];
    const rules = { ...DEFAULT_RULES, perJobType: { thumbnail: { queuedMinutes: 5 } } };
    expect(ids(all(evidence({ rules, queue: queue({ queued: waiting, done: null }) })))).toContain('queue-stalled');
    expect(ids(all(evidence({ queue: queue({ queued: waiting, done: null }) })))).toEqual([]);
  });
});

describe('stale-running', () => {
  it('lists jobs running longer than the rule, says whether the log names them, and offers a requeue', () => {
    const stale = job('running', { started_at: isoAgo(90), attempts: 2 });
    const fresh = job('running', { started_at: isoAgo(10) });
    const p = probe({
      log: {
        ...(probe().log as Extract<SparkEvidence['log'], { status: 'ok' }>),
        tail: [`2026-01-15T10:30:00Z INFO job ${stale.id} claimed`],
      },
    });
    const f = only(all(evidence({ probe: p, queue: queue({ running: [stale, fresh] }) })), 'stale-running');
    expect(f.severity).toBe('warning');
    expect(f.title).toBe('1 job has been running longer than 60 min');
    expect(f.jobIds).toEqual([stale.id]);
    expect(f.requeueSafe).toBe(true);
    expect(f.evidence).toEqual([
      `${stale.id} import_assets_jsonl started 1 h 30 min ago, attempts=2`,
      '1 named in the log tail',
    ]);
  });

  it('cuts the list at five jobs and says how many more', () => {
    const stale = Array.from({ length: 7 }, () => job('running', { started_at: isoAgo(200) }));
    const f = only(all(evidence({ queue: queue({ running: stale }) })), 'stale-running');
    expect(f.evidence).toContain('… and 2 more');
    expect(f.jobIds).toHaveLength(7);
  });
});

describe('circular-metadata', () => {
  const logProbe = (tail: string[]) =>
    probe({ log: { status: 'ok', size: 9000, modifiedAt: ago(1), tail, truncated: false } });

  it.each([
    ['Python', 'ValueError: Circular reference detected'],
    ['Node', 'TypeError: Converting circular structure to JSON\n    --> starting at object with constructor Object'],
  ])("matches %s's error in the job's error text", (_lang, error) => {
    const failed = job('failed', { error, finished_at: isoAgo(20) });
    const findings = all(evidence({ queue: queue({ failed: [failed] }) }));
    const f = only(findings, 'circular-metadata');
    expect(f.severity).toBe('critical');
    expect(f.jobIds).toEqual([failed.id]);
    expect(f.requeueSafe).toBe(true);
    expect(f.evidence[0]).toMatch(/^1 failed job (?:\(24 h\)|since \S+): /);
    expect(ids(findings)).not.toContain('unknown-failure');
  });

  it.each([
    [
      'Python',
      [
        'Traceback (most recent call last):',
        '  File "worker.py", line 88, in run',
        'ValueError: Circular reference detected',
      ],
    ],
    [
      'Node',
      [
        'TypeError: Converting circular structure to JSON',
        "    --> starting at object with constructor 'Object'",
        '    at JSON.stringify (<anonymous>)',
      ],
    ],
  ])("matches %s's error only in the job's traceback lines in the log", (_lang, traceback) => {
    const failed = job('failed', { error: 'insert into hd_ingestion_jobs failed', finished_at: isoAgo(20) });
    const tail = [
      '2026-01-15T11:39:00Z INFO poll queued=1',
      `2026-01-15T11:39:01Z ERROR job ${failed.id} failed: insert failed`,
      ...traceback,
      '2026-01-15T11:39:05Z INFO poll queued=0',
    ];
    const findings = all(evidence({ probe: logProbe(tail), queue: queue({ failed: [failed] }) }));
    const f = only(findings, 'circular-metadata');
    expect(f.severity).toBe('critical');
    expect(f.jobIds).toEqual([failed.id]);
    expect(ids(findings)).not.toContain('unknown-failure');
  });

  it('is info, marked as log-only, when only the log shows it', () => {
    const tail = [
      '2026-01-15T08:00:00Z ERROR job 11111111-2222-4333-8444-555555555555 failed',
      'ValueError: Circular reference detected',
    ];
    const f = only(all(evidence({ probe: logProbe(tail) })), 'circular-metadata');
    expect(f.severity).toBe('info');
    expect(f.title).toMatch(/\(seen in the worker log only\)$/);
    expect(f.jobIds).toEqual([]);
    expect(f.evidence).toEqual(['log: ValueError: Circular reference detected']);
  });

  it("does not pin another job's traceback on a failed job", () => {
    const mine = job('failed', { error: 'timeout talking to S3', finished_at: isoAgo(20) });
    const tail = [
      `2026-01-15T11:39:00Z ERROR job ${mine.id} failed: timeout talking to S3`,
      '2026-01-15T11:39:01Z ERROR job 99999999-9999-4999-8999-999999999999 failed',
      'ValueError: Circular reference detected',
    ];
    const findings = all(evidence({ probe: logProbe(tail), queue: queue({ failed: [mine] }) }));
    expect(only(findings, 'circular-metadata').severity).toBe('info');
    expect(only(findings, 'unknown-failure').jobIds).toEqual([mine.id]);
  });

  it('honours a pattern restricted to another job_type', () => {
    const failed = job('failed', {
      job_type: 'thumbnail',
      error: 'ValueError: Circular reference detected',
      finished_at: isoAgo(5),
    });
    const restricted = BUILTIN_ERROR_PATTERNS.map((p) => ({ ...p, jobType: 'import_assets_jsonl' }));
    const findings = diagnose(evidence({ queue: queue({ failed: [failed] }) }), restricted, 'all');
    expect(ids(findings)).not.toContain('circular-metadata');
    expect(ids(findings)).toContain('unknown-failure');
  });
});

describe('logContextFor', () => {
  const ID = 'aaaaaaaa-0000-4000-8000-000000000001';
  const tail = [
    '2026-01-15T11:00:00Z INFO poll',
    'stray continuation line',
    `2026-01-15T11:00:01Z INFO job ${ID} claimed`,
    `2026-01-15T11:00:02Z ERROR job ${ID} failed`,
    'Traceback (most recent call last):',
    '  File "w.py", line 1',
    'ValueError: x',
    '2026-01-15 11:00:03,123 INFO next entry (Python logging format)',
    'not ours either',
    `2026-01-15T11:00:04Z WARN retrying ${ID}`,
    '  indented detail',
  ];
  it('keeps the lines naming the job and the unstamped lines that follow them', () => {
    expect(logContextFor(ID, tail)).toEqual([
      `2026-01-15T11:00:01Z INFO job ${ID} claimed`,
      `2026-01-15T11:00:02Z ERROR job ${ID} failed`,
      'Traceback (most recent call last):',
      '  File "w.py", line 1',
      'ValueError: x',
      `2026-01-15T11:00:04Z WARN retrying ${ID}`,
      '  indented detail',
    ]);
  });

  it('returns nothing for a job the log does not name', () => {
    expect(logContextFor('bbbbbbbb-0000-4000-8000-000000000002', tail)).toEqual([]);
  });
});

describe('unknown-failure', () => {
  it('groups errors that differ only by ids and numbers into one finding', () => {
    const a = job('failed', {
      error: 'ValueError: asset manifest 3fa85f64-5717-4562-b3fc-2c963f66afa6 has 12 columns, expected 9',
      finished_at: isoAgo(10),
    });
    const b = job('failed', {
      error: 'ValueError: asset manifest 7c9e6679-7425-40de-944b-e07fc1f90ae7 has 14 columns, expected 9',
      finished_at: isoAgo(5),
    });
    const c = job('failed', { error: 'KeyError: asset_url', finished_at: isoAgo(3) });
    const findings = all(evidence({ queue: queue({ failed: [c, a, b] }) })).filter((f) => f.id === 'unknown-failure');
    expect(findings).toHaveLength(2);
    // The bigger group first.
    expect(findings[0].jobIds).toEqual([a.id, b.id]);
    expect(findings[0].title).toBe(
      '2 jobs failed with an error no pattern knows: import_assets_jsonl: ValueError: asset manifest <uuid> has <n> columns, expected <n>',
    );
    expect(findings[0].severity).toBe('warning');
    expect(findings[0].requeueSafe).toBe(false);
    expect(findings[1].jobIds).toEqual([c.id]);
  });

  it('keeps the same error of different job types apart', () => {
    const a = job('failed', { job_type: 'thumbnail', error: 'disk full', finished_at: isoAgo(10) });
    const b = job('failed', { job_type: 'embed', error: 'disk full', finished_at: isoAgo(10) });
    expect(all(evidence({ queue: queue({ failed: [a, b] }) })).filter((f) => f.id === 'unknown-failure')).toHaveLength(
      2,
    );
  });

  it("quotes the first job's log lines", () => {
    const a = job('failed', { error: 'boom', finished_at: isoAgo(10) });
    const p = probe({
      log: {
        status: 'ok',
        size: 1,
        modifiedAt: ago(1),
        tail: [`2026-01-15T11:50:00Z ERROR job ${a.id} failed: boom`, '  at f (w.mjs:3:1)'],
        truncated: false,
      },
    });
    const f = only(all(evidence({ probe: p, queue: queue({ failed: [a] }) })), 'unknown-failure');
    expect(f.evidence).toContain('log:   at f (w.mjs:3:1)');
  });
});

describe('attempts-exhausted', () => {
  it('lists failed jobs at or over the attempt limit, and not the others', () => {
    const spent = job('failed', {
      attempts: 3,
      error: 'ValueError: Circular reference detected',
      finished_at: isoAgo(10),
    });
    const retrying = job('failed', {
      attempts: 2,
      error: 'ValueError: Circular reference detected',
      finished_at: isoAgo(10),
    });
    const f = only(all(evidence({ queue: queue({ failed: [spent, retrying] }) })), 'attempts-exhausted');
    expect(f.severity).toBe('warning');
    expect(f.title).toBe('1 failed job has used all attempts');
    expect(f.jobIds).toEqual([spent.id]);
    expect(f.requeueSafe).toBe(false);
  });
});

describe('failures to reach Supabase or Spark', () => {
  const sshCases: [kind: SshFailure['kind'], id: string, cause: RegExp][] = [
    ['timeout', 'spark-unreachable', /Tailscale/],
    ['refused', 'spark-unreachable', /SPARK_PORT/],
    ['auth-failed', 'spark-unreachable', /not authorised/],
    ['dns', 'spark-unreachable', /^the name did not resolve$/],
    ['host-key-mismatch', 'host-key-mismatch', /re-keyed/],
    ['host-key-revoked', 'host-key-mismatch', /intercepting/],
    ['host-key-unknown', 'host-key-unknown', /no known_hosts entry/],
  ];
  it.each(sshCases)('turns an SSH %s into %s', (kind, id, cause) => {
    const failure: SshFailure = {
      kind,
      message: kind === 'dns' ? 'the name did not resolve' : `ssh ${kind}`,
      fix: 'do the thing',
      presentedFingerprint: 'SHA256:presented',
    };
    const findings = all(
      evidence({
        spark: { ok: false, target: { host: 'spark', port: 2222, user: 'sparkuser', source: 'x' }, failure },
        worker: undefined,
      }),
    );
    const f = only(findings, id);
    expect(f.severity).toBe('critical');
    expect(f.title).toContain(
      id === 'spark-unreachable' ? 'sparkuser@spark:2222' : 'nothing was run on sparkuser@spark:2222',
    );
    expect(f.cause).toMatch(cause);
    expect(f.fix).toBe('do the thing');
    if (id === 'host-key-mismatch') expect(f.evidence).toContain('presented SHA256:presented');
  });

  const dbCases: [kind: DbFailure['kind'], id: string][] = [
    ['unreachable', 'supabase-unreachable'],
    ['timeout', 'supabase-unreachable'],
    ['server', 'supabase-unreachable'],
    ['unauthorized', 'supabase-key-rejected'],
    ['forbidden', 'supabase-key-rejected'],
    ['missing-table', 'jobs-table-missing'],
  ];
  it.each(dbCases)('turns a Supabase %s failure into %s', (kind, id) => {
    const failure: DbFailure = { kind, status: 0, message: `it failed (${kind})`, fix: 'fix it' };
    const f = only(all(evidence({ supabase: { ok: false, failure }, queue: undefined })), id);
    expect(f.severity).toBe('critical');
    expect(f.evidence).toEqual([`${CLOUD}: it failed (${kind})`]);
    expect(f.fix).toBe('fix it');
  });
});

describe('other environment findings', () => {
  const cases: [name: string, over: () => EvidenceOver, id: string, severity: Severity][] = [
    [
      'a missing worker folder',
      () => ({ probe: probe({ workerDir: { path: WORKER_DIR, exists: false } }) }),
      'worker-dir-missing',
      'critical',
    ],
    [
      "an unreadable worker's .env",
      () => ({ probe: probe({ env: { status: 'unreadable' } }), worker: undefined }),
      'worker-env-unreadable',
      'critical',
    ],
    [
      'a worker without a key',
      () => ({ worker: { ...workerSide(), key: undefined, keyVar: undefined } }),
      'worker-key-missing',
      'critical',
    ],
    ['an expired worker key', () => ({ worker: workerSide(CLOUD, keys.expiredService) }), 'key-expired', 'critical'],
    [
      'Spark failing to reach Supabase',
      () => ({ probe: probe({ reach: { status: 'failed', message: 'Could not resolve host' } }) }),
      'spark-supabase-unreachable',
      'critical',
    ],
    [
      "Supabase rejecting the worker's key",
      () => ({ probe: probe({ reach: { status: 'http-error', httpStatus: 401, seconds: 0.1 } }) }),
      'worker-key-rejected',
      'critical',
    ],
    ['a skewed clock', () => ({ probe: probe({ clockSkewMs: -300_000 }) }), 'clock-skew', 'warning'],
    [
      'a full disk',
      () => ({ probe: probe({ disk: { availableKb: 500_000, usedPercent: 99, mount: '/' } }) }),
      'disk-low',
      'warning',
    ],
    [
      'a misspelled variable',
      () => ({
        laptop: {
          ...laptopSide(),
          issues: [
            {
              name: 'SPARK_HOTS',
              severity: 'warning',
              notRead: true,
              message: 'is not read',
              fix: 'did you mean SPARK_HOST?',
            },
          ],
        },
      }),
      'config-warning',
      'warning',
    ],
    [
      'a stale worker log',
      () => ({ probe: probe({ log: { status: 'ok', size: 1, modifiedAt: ago(90), tail: [], truncated: false } }) }),
      'worker-log-stale',
      'warning',
    ],
    [
      'a missing worker log',
      () => ({ probe: probe({ processes: [], log: { status: 'missing', tail: [] } }) }),
      'worker-down',
      'critical',
    ],
  ];
  it.each(cases)('reports %s as %s', (_name, over, id, severity) => {
    expect(only(all(evidence(over())), id).severity).toBe(severity);
  });

  it('does not report a 500 from Spark as a rejected key', () => {
    expect(
      ids(all(evidence({ probe: probe({ reach: { status: 'http-error', httpStatus: 500, seconds: 0.1 } }) }))),
    ).toEqual([]);
  });

  it('says why: a variable not read is ignored; a doubtful value of one that is read is kept', () => {
    const issues = [
      { name: 'SPARK_HOTS', severity: 'warning' as const, notRead: true as const, message: 'is not read', fix: 'x' },
      { name: 'SUPABASE_DB_URL', severity: 'warning' as const, message: 'still holds the placeholder', fix: 'y' },
    ];
    const causes = all(evidence({ laptop: { ...laptopSide(), issues } })).map((f) => f.cause);
    expect(causes).toEqual([
      'a misspelled or unknown variable is ignored, and the default is used instead',
      'the value is kept as it is, but it looks wrong: what uses this variable may fail or reach the wrong place',
    ]);
  });

  it('does not repeat the key warnings of the laptop config as config-warning', () => {
    const issues = [{ name: 'SUPABASE_SERVICE_ROLE_KEY', severity: 'warning' as const, message: 'anon', fix: 'x' }];
    expect(ids(all(evidence({ laptop: { ...laptopSide(), issues } })))).toEqual([]);
  });
});

describe('diagnose', () => {
  it("leaves the queue's findings out of the env scope, but not the worker's state", () => {
    const ev = evidence({
      probe: probe({ processes: [] }),
      queue: queue({ failed: [job('failed', { error: 'x', finished_at: isoAgo(1) })] }),
    });
    // diagnose-env shows ✖ Worker process: its verdict says so too (worker-down), never "healthy".
    expect(ids(diagnose(ev, BUILTIN_ERROR_PATTERNS, 'env'))).toEqual(['worker-down']);
    expect(ids(diagnose(ev, BUILTIN_ERROR_PATTERNS, 'all'))).toEqual(['worker-down', 'unknown-failure']);
  });

  it('returns the most severe findings first', () => {
    const ev = evidence({
      probe: probe({ clockSkewMs: 600_000, processes: [] }),
      queue: queue({
        failed: [job('failed', { error: 'x', finished_at: isoAgo(1) })],
        queued: [job('queued', { created_at: isoAgo(4) })],
      }),
      worker: workerSide(CLOUD, keys.anon),
    });
    const severities = all(ev).map((f) => f.severity);
    expect(severities).toEqual(
      [...severities].sort(
        (a, b) => ['critical', 'warning', 'info'].indexOf(a) - ['critical', 'warning', 'info'].indexOf(b),
      ),
    );
    expect(severities[0]).toBe('critical');
  });
});

describe('sortFindings', () => {
  const f = (id: string, severity: Severity): Finding => ({
    id,
    severity,
    title: id,
    evidence: [],
    cause: '',
    fix: '',
  });
  it('orders critical, warning, info, keeping the catalog order among equals', () => {
    const sorted = sortFindings([
      f('i1', 'info'),
      f('w1', 'warning'),
      f('c1', 'critical'),
      f('w2', 'warning'),
      f('c2', 'critical'),
      f('i2', 'info'),
    ]);
    expect(ids(sorted)).toEqual(['c1', 'c2', 'w1', 'w2', 'i1', 'i2']);
  });
  it('does not reorder its input', () => {
    const input = [f('w', 'warning'), f('c', 'critical')];
    sortFindings(input);
    expect(ids(input)).toEqual(['w', 'c']);
  });
});

describe('fixGate', () => {
  const failedAt = (minutes: number) => ({ finished_at: isoAgo(minutes) });
  const withWorkerStarted = (minutesAgo: number[]) =>
    evidence({
      probe: probe({
        // The first is the worker, the others its children (multiprocessing): one program.
        processes: minutesAgo.map((m, i) => ({
          pid: 100 + i,
          ppid: i === 0 ? 1 : 100,
          elapsedSeconds: m * 60,
          startedAt: ago(m),
          args: 'node worker.mjs',
        })),
      }),
    });

  it('says the fix is not deployed when the worker started before the last failure', () => {
    const g = fixGate(withWorkerStarted([60]), [failedAt(90), failedAt(30)]);
    expect(g.deployed).toBe(false);
    expect(g.line).toBe(
      `the worker started ${isoAgo(60)}, before the last failure (${isoAgo(30)}): the fix is probably not deployed yet`,
    );
  });

  it('says the fix is deployed when the worker restarted after the last failure', () => {
    const g = fixGate(withWorkerStarted([10]), [failedAt(90), failedAt(30)]);
    expect(g.deployed).toBe(true);
    expect(g.line).toBe(`the worker restarted ${isoAgo(10)}, after the last failure (${isoAgo(30)})`);
  });

  it('judges by the oldest worker process', () => {
    expect(fixGate(withWorkerStarted([10, 120]), [failedAt(30)]).deployed).toBe(false);
  });

  it('cannot tell, and says why, when two separate programs run in the worker folder', () => {
    const two = (started: number[]) =>
      evidence({
        probe: probe({
          processes: started.map((m, i) => ({
            pid: 200 + i,
            ppid: 1,
            user: 'sparkuser',
            elapsedSeconds: m * 60,
            startedAt: ago(m),
            args: i ? 'python3 -m http.server' : 'python3 -m hd_worker',
          })),
        }),
      });
    const g = fixGate(two([10, 120]), [failedAt(30)]);
    expect(g.deployed).toBeUndefined();
    expect(g.line).toContain('2 programs run in the worker folder');
    expect(g.line).toContain('pid 201 (sparkuser: python3 -m http.server)');
    const f = queueFindings(two([10, 120]), BUILTIN_ERROR_PATTERNS, []).find((x) => x.id === 'worker-ambiguous');
    expect(f?.severity).toBe('warning');
    expect(f?.evidence).toHaveLength(2);
  });

  it.each([
    ['no Spark evidence', () => evidence({ spark: null }), [failedAt(30)]],
    ['no worker process', () => withWorkerStarted([]), [failedAt(30)]],
    ['no failure time', () => withWorkerStarted([10]), [{ finished_at: null }]],
    ['an unparsable failure time', () => withWorkerStarted([10]), [{ finished_at: 'yesterday' }]],
    ['no jobs', () => withWorkerStarted([10]), []],
  ] as const)('cannot tell with %s', (_name, ev, jobs) => {
    const g = fixGate(ev(), jobs);
    expect(g.deployed).toBeUndefined();
    expect(g.line).toMatch(/^cannot tell whether the fix is deployed/);
  });
});

describe('queueFindings', () => {
  it('needs no queue to report on the worker', () => {
    const ev = evidence({ probe: probe({ processes: [] }), queue: undefined });
    expect(ids(queueFindings(ev, BUILTIN_ERROR_PATTERNS, []))).toEqual(['worker-down']);
  });
});

describe('byCause: a misspelled variable that explains a connection failure comes first', () => {
  const typo: Finding = {
    id: 'config-warning',
    severity: 'warning',
    title: 'SPARK_PROT: SPARK_PROT is not a variable the runbooks read',
    evidence: ['in /work/.env'],
    cause: 'a misspelled or unknown variable is ignored, and the default is used instead',
    fix: 'did you mean SPARK_PORT?',
  };
  const hostKey: Finding = {
    id: 'host-key-mismatch',
    severity: 'critical',
    title: 'the host key of 100.64.0.7:2222 does not match known_hosts',
    evidence: ['presented SHA256:abc'],
    cause: 'another host answers, or the host was reinstalled',
    fix: 'pin the new key',
  };

  it('puts the typo first, as severe as the failure it explains, and says so on the failure', () => {
    const ranked = sortFindings(byCause([hostKey, typo]));
    expect(ranked.map((f) => f.id)).toEqual(['config-warning', 'host-key-mismatch']);
    expect(ranked[0].severity).toBe('critical');
    expect(ranked[0].cause).toContain('SPARK_PORT kept its default');
    expect(ranked[1].evidence).toContain(
      'probably because of SPARK_PROT: SPARK_PORT is not set, so its default was used',
    );
    // The inputs are not changed.
    expect(hostKey.evidence).toEqual(['presented SHA256:abc']);
  });

  it('leaves a typo that explains nothing where it was', () => {
    const unrelated = { ...typo, title: 'STUCK_QUEUD_MINUTES: …', fix: 'did you mean STUCK_QUEUED_MINUTES?' };
    const ranked = sortFindings(byCause([hostKey, unrelated]));
    expect(ranked.map((f) => f.id)).toEqual(['host-key-mismatch', 'config-warning']);
    expect(ranked[1].severity).toBe('warning');
  });
});

describe('ranking by cause (the order findings come in, and which one a stalled queue is blamed on)', () => {
  const waiting = () => [job('queued', { created_at: isoAgo(50) })];
  const carrier = (findings: readonly Finding[]) =>
    ids(findings.filter((f) => f.evidence.some((l) => l.includes('waiting longer than the rule'))));

  // Each step removes the cause that carried the stall before it: the next one down the ranking carries it.
  const chain: [carries: string, over: () => EvidenceOver][] = [
    [
      'wrong-key-role',
      () => ({
        laptop: { ...laptopSide(CLOUD, keys.anon), issues: [] },
        worker: { ...workerSide(OTHER_CLOUD), key: undefined, keyVar: undefined },
        probe: probe({ processes: [], reach: { status: 'http-error', httpStatus: 401, seconds: 0.1 } }),
      }),
    ],
    [
      'worker-key-missing',
      () => ({
        worker: { ...workerSide(OTHER_CLOUD), key: undefined, keyVar: undefined },
        probe: probe({ processes: [], reach: { status: 'http-error', httpStatus: 401, seconds: 0.1 } }),
      }),
    ],
    [
      'project-mismatch',
      () => ({
        worker: workerSide(OTHER_CLOUD, keys.otherProjectService),
        app: undefined,
        probe: probe({ processes: [], reach: { status: 'failed', message: 'Could not resolve host' } }),
      }),
    ],
    [
      'spark-supabase-unreachable',
      () => ({ probe: probe({ processes: [], reach: { status: 'failed', message: 'no route' } }) }),
    ],
    [
      'worker-key-rejected',
      () => ({ probe: probe({ processes: [], reach: { status: 'http-error', httpStatus: 403, seconds: 0.1 } }) }),
    ],
    ['worker-down', () => ({ probe: probe({ processes: [] }) })],
    [
      'worker-env-unreadable',
      () => ({
        laptop: { ...laptopSide(CLOUD, keys.anon), issues: [] },
        probe: probe({ processes: [], env: { status: 'missing' } }),
      }),
    ],
    [
      'worker-dir-missing',
      () => ({
        laptop: { ...laptopSide(CLOUD, keys.anon), issues: [] },
        probe: probe({ workerDir: { path: WORKER_DIR, exists: false } }),
      }),
    ],
  ];
  it.each(chain)('blames the stalled queue on %s when it is the highest-ranked cause present', (carries, over) => {
    const queued = waiting();
    const findings = all(evidence({ ...over(), queue: queue({ queued, done: null }) }));
    expect(carrier(findings)).toEqual([carries]);
    expect(only(findings, carries).jobIds).toEqual([queued[0].id]);
    expect(ids(findings)).not.toContain('queue-stalled');
    expect(ids(findings)).not.toContain('queue-backlog');
  });

  it('blames the first of several findings of the same id, and the env scope shows the same evidence', () => {
    const queued = waiting();
    const ev = evidence({
      worker: workerSide(OTHER_CLOUD, keys.laptopService),
      queue: queue({ queued, done: null }),
    });
    // The worker is the odd one out (one finding, where the app-vs-worker and runbook-vs-worker findings made two),
    // and its key belongs to another project than its URL.
    const mismatches = all(ev).filter((f) => f.id === 'project-mismatch');
    expect(mismatches.map((f) => f.jobIds)).toEqual([[queued[0].id], undefined]);
    expect(diagnose(ev, BUILTIN_ERROR_PATTERNS, 'env')).toEqual(all(ev));
  });

  it('orders findings by severity, then by the catalog, with the typo that explains them first', () => {
    const failed = job('failed', { error: 'Circular reference detected', attempts: 3, finished_at: isoAgo(5) });
    const ev = evidence({
      laptop: {
        ...laptopSide(),
        issues: [
          {
            name: 'STUCK_QUEUD_MINUTES',
            severity: 'warning',
            message: 'no',
            fix: 'did you mean STUCK_QUEUED_MINUTES?',
          },
          { name: 'SPARK_WORKR_DIR', severity: 'warning', message: 'no', fix: 'did you mean SPARK_WORKER_DIR?' },
        ],
      },
      worker: workerSide(CLOUD, keys.expiredService),
      app: appSide(OTHER_CLOUD, keys.anon),
      probe: probe({
        workerDir: { path: WORKER_DIR, exists: false },
        clockSkewMs: 300_000,
        disk: { availableKb: 10, usedPercent: 99, mount: '/' },
      }),
      queue: queue({
        queued: waiting(),
        done: null,
        running: [job('running', { started_at: isoAgo(300) })],
        failed: [failed, job('failed', { error: 'boom 12', finished_at: isoAgo(6) })],
      }),
    });
    const findings = all(ev);
    expect(findings.map((f) => `${f.severity} ${f.id}`)).toEqual([
      'critical config-warning',
      'critical worker-dir-missing',
      'critical key-expired',
      'critical local-supabase-target',
      'critical project-mismatch',
      'critical circular-metadata',
      'warning clock-skew',
      'warning disk-low',
      'warning config-warning',
      'warning stale-running',
      'warning attempts-exhausted',
      'warning unknown-failure',
    ]);
    expect(only(findings, 'worker-dir-missing').evidence).toEqual([
      `no folder at ${WORKER_DIR}`,
      'probably because of SPARK_WORKR_DIR: SPARK_WORKER_DIR is not set, so its default was used',
      '1 queued/pending job; 1 waiting longer than the rule, oldest 50 min',
      'last worker activity in the table 5 min ago',
    ]);
    expect(findings[0].cause).toBe(
      'SPARK_WORKR_DIR is not a variable the runbooks read, so SPARK_WORKER_DIR kept its default: worker-dir-missing follow from it',
    );
  });
});

describe('rules are pure', () => {
  const deepFreeze = <T>(v: T): T => {
    if (v && typeof v === 'object' && !Object.isFrozen(v)) {
      Object.freeze(v);
      for (const x of Object.values(v)) deepFreeze(x);
    }
    return v;
  };

  it('change neither the evidence nor the findings they are given, while a root cause carries the stall', () => {
    const queued = [job('queued', { created_at: isoAgo(50) })];
    const ev = deepFreeze(
      evidence({
        laptop: {
          ...laptopSide(),
          issues: [
            { name: 'SPARK_WORKR_DIR', severity: 'warning', message: 'no', fix: 'did you mean SPARK_WORKER_DIR?' },
          ],
        },
        probe: probe({ workerDir: { path: WORKER_DIR, exists: false } }),
        queue: queue({ queued, done: null, failed: [job('failed', { error: 'boom', finished_at: isoAgo(3) })] }),
      }),
    );
    const findings = all(ev);
    expect(only(findings, 'worker-dir-missing').jobIds).toEqual([queued[0].id]);
    const env = deepFreeze(environmentFindings(ev));
    expect(ids(queueFindings(ev, BUILTIN_ERROR_PATTERNS, env))).toEqual(['unknown-failure']);
    expect(only(env, 'worker-dir-missing').evidence).toEqual([`no folder at ${WORKER_DIR}`]);
  });
});

describe('worker-log-stale', () => {
  const quietFor = (minutes: number) =>
    probe({ log: { status: 'ok', size: 1, modifiedAt: ago(minutes), tail: [], truncated: false } });
  it('allows the log five quiet minutes even when the queued rule is shorter', () => {
    const rules = { ...DEFAULT_RULES, queuedMinutes: 2 };
    expect(ids(all(evidence({ rules, probe: quietFor(4) })))).toEqual([]);
    expect(only(all(evidence({ rules, probe: quietFor(6) })), 'worker-log-stale').title).toBe(
      'the worker runs but has not written its log for 6 min',
    );
  });

  it("allows the queued rule's minutes when they are longer", () => {
    expect(ids(all(evidence({ probe: quietFor(DEFAULT_RULES.queuedMinutes - 1) })))).toEqual([]);
    expect(ids(all(evidence({ probe: quietFor(DEFAULT_RULES.queuedMinutes + 1) })))).toEqual(['worker-log-stale']);
  });
});

describe('queue-read-slow: a queue read over 1 s (a quarter of the 8 s statement timeout)', () => {
  const reads = (...ms: number[]) =>
    ms.map((t, i) => ({ read: ['queued/pending, oldest first', 'running', 'failed since', 'latest done'][i], ms: t }));

  it('is a warning in diagnose-env and debug-stuck-jobs, naming each slow read, its time and the migration', () => {
    const ev = evidence({ queueReads: reads(120, 40, 1_450, 2_300) });
    for (const scope of ['env', 'all'] as const) {
      const f = only(diagnose(ev, BUILTIN_ERROR_PATTERNS, scope), 'queue-read-slow');
      expect(f.severity).toBe('warning');
      expect(f.title).toBe('a queue read took 2.3 s (over 1 s)');
      expect(f.evidence).toEqual([
        'failed since: 1450 ms',
        'latest done: 2300 ms',
        'Supabase cancels a service_role statement after 8 s (500, 57014)',
      ]);
      expect(f.cause).toMatch(/quarter of the 8 s statement timeout.*outgrew its indexes/);
      expect(f.fix).toContain('sandbox/migrations/004_queue_read_indexes.sql');
    }
  });

  it('says nothing at 1 s or under, without times, or when the read failed (another finding says why)', () => {
    expect(ids(all(evidence({ queueReads: reads(1_000, 999) })))).not.toContain('queue-read-slow');
    expect(ids(all(evidence({ queueReads: undefined })))).not.toContain('queue-read-slow');
    const failed: DbFailure = {
      kind: 'timeout',
      status: 0,
      message: 'no answer within 10000 ms',
      fix: 'raise --timeout',
    };
    const ev = evidence({ supabase: { ok: false, failure: failed }, queueReads: reads(10_000) });
    expect(ids(all(ev))).not.toContain('queue-read-slow');
  });
});
