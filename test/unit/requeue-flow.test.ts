import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAuditText } from '../../lib/actions/requeue/audit.ts';
import { EXIT } from '../../lib/core/exit-codes.ts';
import type { Clock } from '../../lib/core/ports.ts';
import { DEFAULT_RULES } from '../../lib/core/stuck-rules.ts';
import type { Evidence } from '../../lib/evidence/evidence.ts';
import {
  commandLineOf,
  executeRequeue,
  handoverOptions,
  REQUEUE_STEPS,
  type RequeueContext,
  requeueJobs,
  requeueReport,
  steps,
} from '../../lib/flows/requeue.ts';
import { parseRequeueOptions, type RequeueFlags } from '../../lib/flows/requeue-usage.ts';
import type { RunState } from '../../lib/flows/run.ts';
import type { LoadedConfig } from '../../lib/io/config.ts';
import type { Files, Ports } from '../../lib/io/context.ts';
import type { Job } from '../../lib/io/jobs-db.ts';
import { inspectKey } from '../../lib/io/keys.ts';
import { createOutput } from '../../lib/io/output.ts';
import { nonInteractivePrompter, type Prompter } from '../../lib/io/prompt.ts';
import { classifySupabaseUrl } from '../../lib/io/supabase-url.ts';
import { createMemoryJobsDb, type MemoryJobsDb } from '../helpers/memory-db.ts';

const NOW = new Date('2026-03-10T12:00:00Z');
const AUDIT = '/state/requeue-audit.jsonl';
const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const REF = 'abcdefghijklmnopqrst';

type Answer = boolean | string | ((message: string) => boolean | string);

/** Scripted answers by prompt name; any other question fails the test (as np's mock-inquirer does). */
function scriptedPrompter(
  answers: Record<string, Answer>,
  asked: Array<{ name: string; initial?: boolean }>,
): Prompter {
  const answer = (name: string, message: string) => {
    const a = answers[name];
    if (a === undefined) throw new Error(`unexpected prompt "${name}": ${message}`);
    return typeof a === 'function' ? a(message) : a;
  };
  return {
    interactive: true,
    async confirm(name, message, initial) {
      asked.push({ name, initial });
      return answer(name, message) as boolean;
    },
    async text(name, message, validate) {
      asked.push({ name });
      const v = answer(name, message) as string;
      if (validate && validate(v) !== true) throw new Error(`prompt "${name}" would not accept ${v}`);
      return v;
    },
    async select(name) {
      throw new Error(`unexpected select "${name}"`);
    },
  };
}

function fakeClock(): Clock {
  let t = NOW.getTime();
  return {
    now: () => new Date(t),
    sleep: async (ms) => {
      t += ms;
    },
  };
}

function fakePorts(db: MemoryJobsDb, opts: { answers?: Record<string, Answer> } = {}) {
  const printed: string[] = [];
  const asked: Array<{ name: string; initial?: boolean }> = [];
  const data = new Map<string, string>();
  const files: Files = {
    read: (f) => data.get(f),
    write: (f, t) => void data.set(f, t),
    append: (f, t) => void data.set(f, (data.get(f) ?? '') + t),
  };
  const ports: Ports = {
    out: createOutput({ write: (t) => printed.push(t), color: false, spinner: false, verbose: false }),
    prompt: opts.answers ? scriptedPrompter(opts.answers, asked) : nonInteractivePrompter(),
    clock: fakeClock(),
    files,
    env: {},
    cwd: '/work',
    homeDir: '/home/op',
    stdout: () => {},
    openDb: () => db,
    openCatalog: () => {
      throw new Error('no catalog in unit tests');
    },
    preconnectSpark: () => {},
    connectSpark: async () => {
      throw new Error('no SSH in unit tests');
    },
    operator: (c) => c || 'op@example.com',
    timeoutMs: 10_000,
  };
  return { ports, printed, asked, files, text: () => printed.join(''), audit: () => parseAuditText(data.get(AUDIT)) };
}

function seed(db: MemoryJobsDb, n: number, over: (i: number) => Partial<Job> = () => ({})): Job[] {
  return Array.from({ length: n }, (_, i) =>
    db.insert({
      id: id(i + 1),
      status: 'failed',
      attempts: 1,
      error: 'ValueError: Circular reference detected',
      debug: { note: 'keep' },
      created_at: `2026-03-10T10:00:${String(i % 60).padStart(2, '0')}.000001+00:00`,
      started_at: '2026-03-10T10:30:00.000001+00:00',
      finished_at: '2026-03-10T10:31:00.000001+00:00',
      ...over(i),
    }),
  );
}

const PROJECT = {
  origin: `https://${REF}.supabase.co`,
  host: `${REF}.supabase.co`,
  ref: REF,
  credentials: 'SUPABASE_URL in /work/.env, key SUPABASE_SERVICE_ROLE_KEY',
  keyVar: 'SUPABASE_SERVICE_ROLE_KEY',
  key: 'service_role JWT',
  privileged: true,
};

function context(db: MemoryJobsDb, over: Partial<RequeueContext> = {}): RequeueContext {
  const evidence: Evidence = {
    now: NOW,
    rules: DEFAULT_RULES,
    laptop: { source: 'test', urlVar: 'SUPABASE_URL', issues: [] },
  };
  return { db, project: PROJECT, rules: DEFAULT_RULES, evidence, values: {}, ...over };
}

async function run(db: MemoryJobsDb, flags: RequeueFlags, answers?: Record<string, Answer>) {
  const f = fakePorts(db, { answers });
  const options = parseRequeueOptions({ audit: AUDIT, ...flags }, NOW, answers !== undefined);
  const outcome = await executeRequeue(f.ports, context(db), {
    ...options,
    runId: `run-${Math.random()}`,
    commandLine: 'npx zx runbooks/requeue.mts',
  });
  return { ...f, outcome };
}

const writes = (db: MemoryJobsDb) =>
  db.calls.filter((c) => c.method === 'compareAndSet' || (c.method === 'rpc' && c.ids?.length));

/** A worker that finishes every queued job it sees, failing the ids in `fail`. */
function fakeWorker(db: MemoryJobsDb, fail: ReadonlySet<string> = new Set()) {
  db.afterRead = () => {
    for (const j of db.jobs.values()) {
      if (j.status !== 'queued') continue;
      const failed = fail.has(j.id);
      db.jobs.set(j.id, {
        ...j,
        status: failed ? 'failed' : 'done',
        attempts: j.attempts + 1,
        error: failed ? 'ValueError: Circular reference detected' : null,
        started_at: '2026-03-10T12:00:01.000001+00:00',
        finished_at: '2026-03-10T12:00:02.000001+00:00',
      });
    }
  };
}

describe('requeue flow: nothing is written without --apply (and --yes off a terminal)', () => {
  it('a dry run previews and writes nothing, not even the audit file', async () => {
    const db = createMemoryJobsDb();
    seed(db, 3);
    const r = await run(db, {});
    expect(r.outcome.exitCode).toBe(EXIT.ok);
    expect(r.outcome.verdict).toBe('dry run: 3 jobs would be requeued; nothing written');
    expect(writes(db)).toEqual([]);
    expect(r.files.read(AUDIT)).toBeUndefined();
    expect(r.text()).toContain(`project ${REF} at ${REF}.supabase.co`);
    expect(r.text()).toContain('credentials: SUPABASE_URL in /work/.env, key SUPABASE_SERVICE_ROLE_KEY');
    expect(r.text()).toContain('3 × import_assets_jsonl · ValueError: Circular reference detected (failed)');
    expect(r.text()).toContain(
      'To requeue these 3 jobs: npx zx runbooks/requeue.mts --reason REASON --apply (in a script, add --yes)',
    );
  });

  it('--apply without --yes off a terminal exits 2 after the preview and writes nothing', async () => {
    const db = createMemoryJobsDb();
    seed(db, 2);
    const r = await run(db, { apply: true, reason: 'fixed' });
    expect(r.outcome.exitCode).toBe(EXIT.couldNotRun);
    expect(r.outcome.error?.message).toContain('nothing is written without --apply --yes');
    expect(writes(db)).toEqual([]);
    expect(r.files.read(AUDIT)).toBeUndefined();
  });

  it('requires --reason for more than one job', async () => {
    const db = createMemoryJobsDb();
    seed(db, 2);
    const r = await run(db, { apply: true, yes: true });
    expect(r.outcome.exitCode).toBe(EXIT.couldNotRun);
    expect(r.outcome.error?.message).toContain('--reason is required to requeue more than one job');
    expect(writes(db)).toEqual([]);
  });

  it('refuses a key that is not the service role (row-level security would hide the jobs)', async () => {
    const db = createMemoryJobsDb();
    seed(db, 1);
    const f = fakePorts(db);
    const options = parseRequeueOptions({ audit: AUDIT }, NOW, false);
    const outcome = await executeRequeue(f.ports, context(db, { project: { ...PROJECT, privileged: false } }), options);
    expect(outcome.exitCode).toBe(EXIT.couldNotRun);
    expect(db.calls).toEqual([]);
  });

  it('has nothing to do for --status queued', async () => {
    const db = createMemoryJobsDb();
    const r = await run(db, { status: ['queued'] });
    expect(r.outcome).toMatchObject({
      exitCode: EXIT.ok,
      verdict: 'nothing to do: queued and pending jobs already wait for the worker',
    });
    expect(db.calls).toEqual([]);
  });
});

describe('requeue flow: confirmation', () => {
  it('asks, with No as the default, and writes nothing when told no (exit 3)', async () => {
    const db = createMemoryJobsDb();
    seed(db, 1);
    const r = await run(db, { id: [id(1)], apply: true }, { 'confirm-apply': false });
    expect(r.outcome.exitCode).toBe(EXIT.aborted);
    expect(r.asked).toEqual([{ name: 'confirm-apply', initial: false }]);
    expect(writes(db)).toEqual([]);
  });

  it('asks for the reason, then above the threshold for the count; a wrong count aborts', async () => {
    const db = createMemoryJobsDb();
    seed(db, 25);
    const r = await run(db, { apply: true }, { reason: 'fix deployed', 'confirm-apply': true, 'type-count': '24' });
    expect(r.asked.map((a) => a.name)).toEqual(['reason', 'confirm-apply', 'type-count']);
    expect(r.outcome.exitCode).toBe(EXIT.aborted);
    expect(writes(db)).toEqual([]);
  });

  it('writes all of them when the count is typed, with the reason in each history entry', async () => {
    const db = createMemoryJobsDb();
    seed(db, 25);
    const r = await run(
      db,
      { apply: true, verify: '0' },
      { reason: 'fix deployed', 'confirm-apply': true, 'type-count': '25' },
    );
    expect(r.outcome.exitCode).toBe(EXIT.ok);
    expect([...db.jobs.values()].every((j) => j.status === 'queued')).toBe(true);
    expect((db.get(id(7))!.debug as { requeue_history: Array<{ reason: string }> }).requeue_history[0].reason).toBe(
      'fix deployed',
    );
  });

  it('skips and reports a job the worker claims while the operator reads the preview (exit 1)', async () => {
    const db = createMemoryJobsDb();
    seed(db, 3);
    const r = await run(
      db,
      { apply: true, reason: 'fixed', verify: '0' },
      {
        'confirm-apply': () => {
          const j = db.jobs.get(id(2))!;
          db.jobs.set(id(2), {
            ...j,
            status: 'running',
            attempts: 2,
            started_at: '2026-03-10T12:00:00.500000+00:00',
            finished_at: null,
          });
          return true;
        },
      },
    );
    expect(r.outcome.exitCode).toBe(EXIT.findings);
    expect(db.get(id(2))).toMatchObject({
      status: 'running',
      attempts: 2,
      error: 'ValueError: Circular reference detected',
    });
    expect(r.outcome.findings.map((f) => f.id)).toContain('requeue-skipped');
    expect(r.text()).toContain(
      `${id(2)}: skipped — changed since the preview: status failed → running, attempts 1 → 2`,
    );
    expect(r.outcome.verdict).toBe('requeued 2 of 3 jobs, 1 skipped (changed since the preview)');
    expect(r.audit().filter((l) => l.outcome === 'skipped')).toHaveLength(1);
  });
});

describe('requeue flow: running and done jobs', () => {
  const stale = {
    status: 'running' as const,
    started_at: '2026-03-10T09:00:00.000001+00:00',
    finished_at: null,
    error: null,
  };

  it('confirms stale running jobs separately (default No) and leaves them alone when told no', async () => {
    const db = createMemoryJobsDb();
    seed(db, 2, (i) => (i === 1 ? stale : {}));
    const r = await run(
      db,
      { id: [id(1), id(2)], apply: true, reason: 'worker died', verify: '0' },
      { 'confirm-running': false, 'confirm-apply': true },
    );
    expect(r.asked).toEqual([
      { name: 'confirm-running', initial: false },
      { name: 'confirm-apply', initial: false },
    ]);
    expect(db.get(id(1))!.status).toBe('queued');
    expect(db.get(id(2))!.status).toBe('running');
    expect(r.outcome.exitCode).toBe(EXIT.ok);
  });

  it('without a terminal needs --include-running; without it the running job is left alone (exit 1)', async () => {
    const db = createMemoryJobsDb();
    seed(db, 2, (i) => (i === 1 ? stale : {}));
    const r = await run(db, { id: [id(1), id(2)], apply: true, yes: true, reason: 'worker died' });
    expect(db.get(id(2))!.status).toBe('running');
    expect(r.outcome.exitCode).toBe(EXIT.findings);
    const both = createMemoryJobsDb();
    seed(both, 2, (i) => (i === 1 ? stale : {}));
    const r2 = await run(both, {
      id: [id(1), id(2)],
      apply: true,
      yes: true,
      'include-running': true,
      reason: 'worker died',
    });
    expect(r2.outcome.exitCode).toBe(EXIT.ok);
    expect(both.get(id(2))).toMatchObject({ status: 'queued', started_at: null });
  });

  it('says "already queued, nothing to do" for a queued id and does not write it', async () => {
    const db = createMemoryJobsDb();
    seed(db, 1, () => ({ status: 'queued', started_at: null, finished_at: null }));
    const r = await run(db, { id: [id(1)], apply: true, yes: true });
    expect(r.outcome.exitCode).toBe(EXIT.ok);
    expect(r.text()).toContain('left alone: 1 already queued, nothing to do');
    expect(writes(db)).toEqual([]);
  });

  it('exits 1 for an id that does not exist', async () => {
    const db = createMemoryJobsDb();
    const r = await run(db, { id: [id(9)] });
    expect(r.outcome.exitCode).toBe(EXIT.findings);
    expect(r.outcome.findings.map((f) => f.id)).toEqual(['requeue-not-eligible']);
  });
});

describe('requeue flow: idempotence', () => {
  it('running the same command again requeues nothing twice, but retries a job that failed again since', async () => {
    const db = createMemoryJobsDb();
    seed(db, 3);
    await run(db, { apply: true, yes: true, reason: 'fixed' });
    // Nothing moved: the same command finds every job still queued, and writes nothing.
    const idle = await run(db, { apply: true, yes: true, reason: 'fixed' });
    expect(idle.outcome.verdict).toContain('nothing to do');
    expect(writes(db)).toHaveLength(3);
    // The worker took one and failed it again (the fix was not in yet); then the fix is deployed.
    const j = db.jobs.get(id(1))!;
    db.jobs.set(id(1), {
      ...j,
      status: 'failed',
      attempts: 2,
      error: 'ValueError: again',
      started_at: '2026-03-10T12:01:00.000001+00:00',
      finished_at: '2026-03-10T12:01:01.000001+00:00',
    });
    // The same command (as every hand-over is) retries it: a new state, named in the preview, written once.
    const again = await run(db, { apply: true, yes: true, reason: 'fixed' });
    expect(again.outcome.exitCode).toBe(EXIT.ok);
    expect(again.outcome.verdict).toBe('requeued 1 of 1 job');
    expect(again.text()).toContain('1 job of them requeued before, and failed again since');
    expect(again.text()).toMatch(/failed again since the requeue at 2026-03-10T12:00:00/);
    expect((db.get(id(1))!.debug as { requeue_history: unknown[] }).requeue_history).toHaveLength(2);
    // And once written, it is queued again: a third run has nothing to do.
    const third = await run(db, { apply: true, yes: true, reason: 'fixed' });
    expect(third.outcome.verdict).toContain('nothing to do');
    expect((db.get(id(1))!.debug as { requeue_history: unknown[] }).requeue_history).toHaveLength(2);
  });
});

describe('requeue flow: canary and verify', () => {
  it('holds the rest back when a canary fails again (exit 1)', async () => {
    const db = createMemoryJobsDb();
    seed(db, 6);
    fakeWorker(db, new Set([id(1)]));
    const r = await run(db, { apply: true, yes: true, reason: 'fixed', canary: '2', 'canary-timeout': '30' });
    expect(r.outcome.exitCode).toBe(EXIT.findings);
    expect(r.outcome.canary?.verdict.verdict).toBe('fail');
    expect(r.outcome.findings.map((f) => f.id)).toContain('canary-failed');
    expect(writes(db).flatMap((c) => c.ids)).toEqual([id(1), id(2)]);
    for (const n of [3, 4, 5, 6]) expect(db.get(id(n))!.status).toBe('failed');
    expect(r.outcome.verdict).toBe('canary failed: requeued 2 of 6 jobs, 4 held back');
  });

  it('releases the rest when the canaries finish, and the receipt counts every job', async () => {
    const db = createMemoryJobsDb();
    seed(db, 6);
    fakeWorker(db);
    const r = await run(db, { apply: true, yes: true, reason: 'fixed', canary: '2', verify: '30' });
    expect(r.outcome.canary?.verdict.verdict).toBe('pass');
    expect(r.outcome.receipt?.counts).toMatchObject({ done: 6, failedAgain: 0, stillQueued: 0 });
    expect(r.outcome.exitCode).toBe(EXIT.ok);
    const report = requeueReport(r.outcome, { generatedAt: NOW.toISOString(), operator: 'op' });
    expect(report.receipt?.counts.done).toBe(6);
    expect(report.plan?.writes).toHaveLength(6);
    expect(report.results).toHaveLength(6);
  });

  it('does not release on a timeout without a terminal', async () => {
    const db = createMemoryJobsDb();
    seed(db, 4);
    const r = await run(db, { apply: true, yes: true, reason: 'fixed', canary: '1', 'canary-timeout': '5' });
    expect(r.outcome.canary?.verdict.verdict).toBe('inconclusive');
    expect(r.outcome.exitCode).toBe(EXIT.findings);
    expect([...db.jobs.values()].filter((j) => j.status === 'queued')).toHaveLength(1);
  });

  it('reports jobs that failed again during the watch (exit 1)', async () => {
    const db = createMemoryJobsDb();
    seed(db, 3);
    fakeWorker(db, new Set([id(3)]));
    const r = await run(db, { apply: true, yes: true, reason: 'fixed', verify: '20' });
    expect(r.outcome.receipt?.counts).toMatchObject({ done: 2, failedAgain: 1 });
    expect(r.outcome.findings.map((f) => f.id)).toContain('requeue-failed-again');
    expect(r.outcome.exitCode).toBe(EXIT.findings);
    expect(r.text()).toContain(`${id(3)} failed again: ValueError: Circular reference detected`);
  });
});

describe('requeueJobs (the hand-over from debug-stuck-jobs)', () => {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const key = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ iss: 'supabase', ref: REF, role: 'service_role', iat: 1, exp: 4102444800 })}.${'s'.repeat(43)}`;

  function state(db: MemoryJobsDb, ports: Ports): RunState {
    const url = classifySupabaseUrl(`https://${REF}.supabase.co`);
    if (!url.ok) throw new Error('bad url');
    const laptop = {
      source: 'SUPABASE_URL in /work/.env',
      urlVar: 'SUPABASE_URL',
      url,
      keyVar: 'SUPABASE_SERVICE_ROLE_KEY',
      key: inspectKey(key),
    };
    const config = { values: {}, issues: [], laptop, supabaseKey: key, secrets: [key] } as LoadedConfig;
    return {
      ports,
      config,
      evidence: { now: NOW, rules: DEFAULT_RULES, laptop: { ...laptop, issues: [] } },
      db,
      patterns: [],
    };
  }

  it('a hand-over gets the options the same command would (no flags parsed on the way)', () => {
    const ids = ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002'];
    for (const interactive of [true, false]) {
      const parsed = parseRequeueOptions({ id: ids, reason: 'x fixed', apply: true }, new Date(), interactive);
      expect(handoverOptions({ ids, reason: 'x fixed', findingId: 'x' }, interactive)).toEqual(parsed);
    }
  });

  it('the runbook lists the same steps, in the same order, as the hand-over runs', () => {
    const text = readFileSync(new URL('../../runbooks/requeue.mts', import.meta.url), 'utf8');
    const listed = [...text.matchAll(/^\s*steps\.(\w+),/gm)].map((m) => m[1]);
    // The very step objects, in the very order: the runbook and the hand-over cannot drift apart.
    expect(listed.map((name) => steps[name as keyof typeof steps])).toEqual(REQUEUE_STEPS);
    expect(listed).toHaveLength(12);
  });

  it('previews, confirms (default No) and returns 3 when told no', async () => {
    const db = createMemoryJobsDb();
    seed(db, 2);
    const f = fakePorts(db, { answers: { 'confirm-apply': false } });
    const r = await requeueJobs(f.ports, state(db, f.ports), {
      ids: [id(1), id(2)],
      reason: 'circular-metadata fixed',
      findingId: 'circular-metadata',
    });
    expect(r.code).toBe(EXIT.aborted);
    expect(writes(db)).toEqual([]);
    expect(f.text()).toContain(`project ${REF} at ${REF}.supabase.co`);
  });

  it("requeues with the finding's reason and returns lines for the report", async () => {
    const db = createMemoryJobsDb();
    seed(db, 2);
    const f = fakePorts(db, { answers: { 'confirm-apply': true } });
    const r = await requeueJobs(
      f.ports,
      state(db, f.ports),
      { ids: [id(1), id(2)], reason: 'circular-metadata fixed', findingId: 'circular-metadata' },
      { verifySeconds: 0, auditFlag: AUDIT },
    );
    expect(r.code).toBe(EXIT.ok);
    expect(r.title).toBe('requeue 2 jobs of circular-metadata');
    expect(r.lines.join('\n')).toContain('2 requeued');
    expect((db.get(id(1))!.debug as { requeue_history: Array<{ reason: string }> }).requeue_history[0].reason).toBe(
      'circular-metadata fixed',
    );
  });
});

describe('commandLineOf', () => {
  it('drops report flags and --apply/--yes, and quotes the rest', () => {
    expect(
      commandLineOf(['--error', '/circ ular/i', '--json', 'out.json', '--apply', '--markdown=r.md', '--yes']),
    ).toBe("npx zx runbooks/requeue.mts --error '/circ ular/i'");
  });
});

describe('requeue flow: the fix gate is a gate for --yes', () => {
  const target = { host: 'spark', port: 2222, user: 'sparkuser', source: 'test' } as const;
  /** Spark as seen by the probe: a worker started `startedAt`. */
  const sparkWith = (startedAt: string): Evidence['spark'] => ({
    ok: true,
    target,
    fingerprint: 'SHA256:test',
    connectMs: 1,
    probe: {
      workerDir: { path: '/home/sparkuser/srv/hd-worker', exists: true },
      env: { status: 'missing' },
      processes: [
        {
          pid: 42,
          ppid: 1,
          user: 'sparkuser',
          elapsedSeconds: 60,
          startedAt: new Date(startedAt),
          args: 'node worker.mjs',
        },
      ],
      log: { status: 'missing', tail: [] },
      reach: { status: 'skipped', reason: 'test' },
      missingSections: [],
    },
  });
  const unreachable: Evidence['spark'] = {
    ok: false,
    target,
    failure: { kind: 'timeout', message: 'no answer from spark:2222 within 10 s', fix: 'check Tailscale' } as never,
  };
  // The seeded jobs failed at 10:31; a worker started at 10:00 has not restarted since, one at 11:00 has.
  const NOT_DEPLOYED = sparkWith('2026-03-10T10:00:00Z');
  const DEPLOYED = sparkWith('2026-03-10T11:00:00Z');

  async function runWith(spark: Evidence['spark'], flags: RequeueFlags, answers?: Record<string, Answer>) {
    const db = createMemoryJobsDb();
    seed(db, 2);
    const f = fakePorts(db, { answers });
    const options = parseRequeueOptions({ audit: AUDIT, verify: '0', ...flags }, NOW, answers !== undefined);
    const ctx = context(db);
    ctx.evidence.spark = spark;
    const outcome = await executeRequeue(f.ports, ctx, { ...options, runId: 'run-gate' });
    return { ...f, db, outcome };
  }

  it('refuses (exit 1, nothing written) when the gate says the fix is not deployed', async () => {
    const r = await runWith(NOT_DEPLOYED, { apply: true, yes: true, reason: 'fixed' });
    expect(r.outcome.exitCode).toBe(EXIT.findings);
    expect(r.outcome.verdict).toBe('nothing requeued: the fix is probably not deployed (2 jobs would fail again)');
    expect(r.outcome.findings.map((f) => f.id)).toContain('fix-not-deployed');
    expect(writes(r.db)).toEqual([]);
    expect(r.files.read(AUDIT)).toBeUndefined();
  });

  it('refuses (exit 2, nothing written) when Spark was configured and did not answer', async () => {
    const r = await runWith(unreachable, { apply: true, yes: true, reason: 'fixed' });
    expect(r.outcome.exitCode).toBe(EXIT.couldNotRun);
    expect(r.outcome.error?.message).toContain(
      'the fix gate cannot tell whether the fix is deployed: Spark did not answer',
    );
    expect(r.outcome.error?.fix).toContain('--skip-fix-gate "REASON"');
    expect(writes(r.db)).toEqual([]);
  });

  it('writes when the gate says the fix is deployed', async () => {
    const r = await runWith(DEPLOYED, { apply: true, yes: true, reason: 'fixed' });
    expect(r.outcome.exitCode).toBe(EXIT.ok);
    expect(writes(r.db).length).toBeGreaterThan(0);
  });

  it('goes ahead with an explicit --skip-fix-gate REASON, kept in each history entry and the audit file', async () => {
    const r = await runWith(unreachable, {
      apply: true,
      yes: true,
      reason: 'fixed',
      'skip-fix-gate': 'hotfix checked on Spark by hand',
    });
    expect(r.outcome.exitCode).toBe(EXIT.ok);
    const history = (r.db.get(id(1))!.debug as { requeue_history: Array<{ reason: string }> }).requeue_history;
    expect(history[0].reason).toBe('fixed (fix gate skipped: hotfix checked on Spark by hand)');
    expect(r.files.read(AUDIT)).toContain('fix gate skipped: hotfix checked on Spark by hand');
    expect(r.text()).toContain('fix gate: skipped (--skip-fix-gate: hotfix checked on Spark by hand)');
  });

  it('goes ahead with --canary N (a few first: the canary is the check)', async () => {
    const r = await runWith(NOT_DEPLOYED, {
      apply: true,
      yes: true,
      reason: 'fixed',
      canary: '1',
      'canary-timeout': '1',
    });
    expect(writes(r.db).length).toBeGreaterThan(0);
  });

  it.each([
    ['not deployed', NOT_DEPLOYED, '(the worker has NOT restarted since they failed)'],
    ['unreachable', unreachable, '(the fix gate cannot tell: Spark did not answer)'],
  ])('states the verdict in the confirmation on a terminal (%s)', async (_name, spark, words) => {
    let message = '';
    await runWith(
      spark,
      { apply: true, reason: 'fixed' },
      {
        'confirm-apply': (m) => {
          message = m;
          return false;
        },
      },
    );
    expect(message).toContain(words);
  });

  it('rejects an empty --skip-fix-gate reason before anything is read', () => {
    expect(() => parseRequeueOptions({ 'skip-fix-gate': ' ' }, NOW, false)).toThrow(/--skip-fix-gate is empty/);
  });
});

describe('requeue flow: verify judges silence', () => {
  it('warns when none of the requeued jobs is picked up before the watch ends (exit 1)', async () => {
    const db = createMemoryJobsDb();
    seed(db, 2);
    // No worker: the jobs stay queued through the whole watch.
    const r = await run(db, { apply: true, yes: true, reason: 'fixed', verify: '20' });
    expect(r.outcome.exitCode).toBe(EXIT.findings);
    const f = r.outcome.findings.find((x) => x.id === 'requeue-not-picked-up');
    expect(f?.severity).toBe('warning');
    expect(f?.title).toMatch(/^none of the 2 requeued jobs was picked up in \d+ s$/);
    expect(f?.jobIds).toHaveLength(2);
  });

  it('says nothing of the kind when the worker takes them', async () => {
    const db = createMemoryJobsDb();
    seed(db, 2);
    fakeWorker(db);
    const r = await run(db, { apply: true, yes: true, reason: 'fixed', verify: '20' });
    expect(r.outcome.exitCode).toBe(EXIT.ok);
    expect(r.outcome.findings.map((x) => x.id)).not.toContain('requeue-not-picked-up');
  });
});
