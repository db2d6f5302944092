import { describe, expect, it } from 'vitest';
import { scanJobs } from '../../lib/actions/requeue/read.ts';
import {
  compileErrorMatcher,
  DEFAULT_LIMIT,
  MAX_LIMIT,
  parseErrorMatcher,
  parseIds,
  parseLimit,
  parseSelection,
  parseStatuses,
  parseTimeBound,
  readSelection,
  serverErrorSubstring,
} from '../../lib/actions/requeue/select.ts';
import { EXIT, RunbookError } from '../../lib/core/exit-codes.ts';
import { parseRequeueOptions, REQUEUE_HELP, REQUEUE_OPTIONS } from '../../lib/flows/requeue-usage.ts';
import type { JobsDb } from '../../lib/io/jobs-db.ts';
import { createMemoryJobsDb } from '../helpers/memory-db.ts';

const NOW = new Date('2026-03-10T12:00:00Z');
const ID1 = '3fa85f64-5717-4562-b3fc-2c963f66afa6';
const ID2 = '0b9e2c1a-1111-4222-8333-944455556666';

/** Runs `fn`, expecting a usage error (exit 2) whose message contains `text`. */
function usageError(fn: () => unknown, text: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected a RunbookError containing ${text}`).toBeInstanceOf(RunbookError);
  expect((caught as RunbookError).code).toBe(EXIT.couldNotRun);
  expect((caught as RunbookError).message).toContain(text);
  expect((caught as RunbookError).fix.length).toBeGreaterThan(0);
}

describe('parseIds', () => {
  it('accepts UUIDs, repeated or comma-separated, lower-cased and deduplicated', () => {
    expect(parseIds([ID1.toUpperCase(), `${ID2}, ${ID1}`])).toEqual([ID1, ID2]);
  });

  const bad: [string, string[], string][] = [
    ['a PostgREST injection', ['1&status=eq.done'], '--id "1&status=eq.done" is not a job id'],
    ['an empty id', [''], '--id is empty'],
    ['an empty list item', [`${ID1},`], '--id is empty'],
    ['a UUID with a filter glued on', [`${ID1}&status=eq.done`], 'is not a job id'],
    ['a truncated UUID', ['3fa85f64-5717-4562-b3fc'], 'is not a job id'],
  ];
  it.each(bad)('rejects %s', (_name, values, text) => usageError(() => parseIds(values), text));
});

describe('parseLimit', () => {
  it('defaults and accepts the bounds', () => {
    expect(parseLimit(undefined)).toBe(DEFAULT_LIMIT);
    expect(parseLimit('1')).toBe(1);
    expect(parseLimit(String(MAX_LIMIT))).toBe(MAX_LIMIT);
  });
  it.each(['0', '-5', '100001', '99999999', '1e3', '12abc', '', ' 5'])('rejects %j', (v) =>
    usageError(() => parseLimit(v), '--limit must be a whole number from 1 to 100000'),
  );
});

describe('parseStatuses', () => {
  it('defaults to failed', () =>
    expect(parseStatuses(undefined, false)).toEqual({ statuses: ['failed'], ignored: [] }));
  it('splits commas and leaves queued/pending out as nothing to do', () => {
    expect(parseStatuses(['failed,queued', 'running', 'pending'], false)).toEqual({
      statuses: ['failed', 'running'],
      ignored: ['queued', 'pending'],
    });
  });
  it('rejects an unknown status', () =>
    usageError(() => parseStatuses(['stuck'], false), '--status "stuck" is not a job status'));
  it('refuses done without --include-done', () => usageError(() => parseStatuses(['done'], false), '--include-done'));
  it('allows done with --include-done', () => expect(parseStatuses(['done'], true).statuses).toEqual(['done']));
});

describe('parseErrorMatcher', () => {
  it('reads plain text as a case-insensitive substring', () => {
    const m = parseErrorMatcher('Circular Reference')!;
    expect(m.kind).toBe('substring');
    expect(compileErrorMatcher(m)('ValueError: circular reference detected')).toBe(true);
    expect(compileErrorMatcher(m)(null)).toBe(false);
  });
  it('reads /…/flags as a regex', () => {
    const m = parseErrorMatcher('/^ValueError: circ/i')!;
    expect(m).toMatchObject({ kind: 'regex', source: '^ValueError: circ', flags: 'i' });
    expect(compileErrorMatcher(m)('valueerror: Circular')).toBe(true);
    expect(compileErrorMatcher(m)('TypeError: circular')).toBe(false);
  });
  const bad: [string, string][] = [
    ['/(unclosed/', 'is not a valid regex'],
    ['/[z-a]/', 'is not a valid regex'],
    ['/x/g', 'regex flags may be i, m, s, u'],
    ['/x/ii', 'regex flags may be i, m, s, u'],
    ['//', 'empty regex'],
    ['   ', '--error is empty'],
  ];
  it.each(bad)('rejects %j', (v, text) => usageError(() => parseErrorMatcher(v), text));

  it('lets the server filter only plain text (LIKE and PostgREST wildcards stay client-side)', () => {
    expect(serverErrorSubstring(parseErrorMatcher('Circular reference'))).toBe('Circular reference');
    for (const v of ['100%', 'a_b', 'C:\\path', 'x*y', '/regex/'])
      expect(serverErrorSubstring(parseErrorMatcher(v))).toBeUndefined();
  });
});

describe('parseTimeBound', () => {
  const ok: [string, string][] = [
    ['30m', '2026-03-10T11:30:00.000Z'],
    ['2h', '2026-03-10T10:00:00.000Z'],
    ['7d', '2026-03-03T12:00:00.000Z'],
    ['1w', '2026-03-03T12:00:00.000Z'],
    ['2026-03-01', '2026-03-01T00:00:00.000Z'],
    ['2026-03-01T08:15:00Z', '2026-03-01T08:15:00.000Z'],
    ['2026-03-01T10:15:00+02:00', '2026-03-01T08:15:00.000Z'],
  ];
  it.each(ok)('%s', (v, iso) => expect(parseTimeBound('--older-than', v, NOW)?.at.toISOString()).toBe(iso));
  const bad: [string, string][] = [
    ['yesterday', 'neither a duration nor an ISO timestamp'],
    ['0m', 'between 1s and 3650d'],
    ['5000d', 'between 1s and 3650d'],
    ['-2h', 'neither a duration'],
    ['2026-03-01T08:15:00', 'has no time zone'],
    ['2026-02-30', 'is not a valid date'],
    ['2026-13-01', 'is not a valid date'],
    ['2027-01-01', 'is in the future'],
  ];
  it.each(bad)('rejects %j', (v, text) => usageError(() => parseTimeBound('--older-than', v, NOW), text));
});

describe('parseSelection', () => {
  it('does not mix --id and filters', () =>
    usageError(() => parseSelection({ id: [ID1], status: ['failed'] }, NOW), '--id cannot be combined with --status'));
  it('refuses an empty time window', () =>
    usageError(() => parseSelection({ 'older-than': '7d', 'newer-than': '1h' }, NOW), 'leave no time between them'));
  it('selects failed jobs by default', () =>
    expect(parseSelection({}, NOW)).toMatchObject({ kind: 'filter', statuses: ['failed'] }));
});

describe('parseRequeueOptions', () => {
  it('--help documents every flag', () => {
    for (const flag of Object.keys(REQUEUE_OPTIONS)) expect(REQUEUE_HELP).toContain(`--${flag}`);
  });
  it('refuses --yes without --apply (a yes that writes nothing misleads)', () =>
    usageError(() => parseRequeueOptions({ yes: true }, NOW, false), '--yes without --apply'));
  it('refuses an unknown --rpc', () =>
    usageError(() => parseRequeueOptions({ rpc: 'sometimes' }, NOW, false), '--rpc'));
  it('refuses a multi-line reason', () =>
    usageError(() => parseRequeueOptions({ reason: 'a\nb' }, NOW, false), 'one line'));
  it.each([
    ['canary', '0'],
    ['concurrency', '99'],
    ['verify', '-1'],
  ] as const)('refuses --%s %s', (flag, value) =>
    usageError(() => parseRequeueOptions({ [flag]: value }, NOW, false), `--${flag}`),
  );
  it('watches by default only on a terminal', () => {
    expect(parseRequeueOptions({}, NOW, false).verifySeconds).toBe(0);
    expect(parseRequeueOptions({}, NOW, true).verifySeconds).toBe(60);
    expect(parseRequeueOptions({ verify: '0' }, NOW, true).verifySeconds).toBe(0);
  });
});

function ts(i: number): string {
  return new Date(Date.parse('2026-03-01T00:00:00Z') + i * 1000).toISOString().replace('Z', '123+00:00');
}

describe('readSelection', () => {
  it('reads ids in chunks and reports the missing ones', async () => {
    const db = createMemoryJobsDb();
    db.insert({ id: ID1, status: 'failed' });
    const read = await readSelection(db, { kind: 'ids', ids: [ID1, ID2] }, 10);
    expect(read.jobs.map((j) => j.id)).toEqual([ID1]);
    expect(read.missingIds).toEqual([ID2]);
  });

  it('filters a regex client-side and stops at the limit, saying more may match', async () => {
    const db = createMemoryJobsDb();
    for (let i = 0; i < 30; i++) {
      db.insert({
        id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
        created_at: ts(i),
        error: i % 3 ? 'other' : 'Circular ref',
      });
    }
    const sel = parseSelection({ error: '/circular/i' }, NOW);
    const read = await readSelection(db, sel, 4);
    expect(read.jobs).toHaveLength(4);
    expect(read.jobs.every((j) => j.error === 'Circular ref')).toBe(true);
    expect(read.more).toEqual({});
    // No errorContains reached the server for a regex.
    expect(db.calls.every((c) => c.method === 'findJobs')).toBe(true);
  });

  it('pages past the 1000-row cap with a created_at keyset and counts the rest exactly', async () => {
    const db = createMemoryJobsDb();
    for (let i = 0; i < 2500; i++)
      db.insert({ id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, created_at: ts(i) });
    const read = await readSelection(db, parseSelection({}, NOW), 2100);
    expect(read.jobs).toHaveLength(2100);
    expect(new Set(read.jobs.map((j) => j.id)).size).toBe(2100);
    expect(read.more).toEqual({ total: 2500 });
    expect(read.requests).toBeGreaterThanOrEqual(3);
  });

  it('a server-side selection past 50,000 rows reads them all (the scan bound is for the client-side regex)', async () => {
    const db = createMemoryJobsDb();
    for (let i = 0; i < 60_000; i++)
      db.insert({
        id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
        created_at: ts(i % 3600),
        error: 'ValueError: Circular reference detected',
      });
    const read = await readSelection(db, parseSelection({ error: 'Circular' }, NOW), 60_000);
    expect(read.jobs).toHaveLength(60_000);
    expect(read.scanCut).toBe(false);
    expect(read.more).toBeUndefined();
  });

  it('pages past a page that shares one created_at: the keyset is (created_at, id)', async () => {
    const db = createMemoryJobsDb();
    for (let i = 0; i < 1200; i++)
      db.insert({ id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, created_at: ts(0) });
    const read = await readSelection(db, parseSelection({}, NOW), 1100);
    expect(read.scanCut).toBe(false);
    expect(new Set(read.jobs.map((j) => j.id)).size).toBe(1100);
    expect(read.more).toEqual({ total: 1200 });
  });
});

describe('readSelection under an API max-rows (a page shorter than asked is not the end)', () => {
  const jobId = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
  // Microseconds, as PostgREST sends timestamptz: the keyset must not round them away.
  const at = (i: number) =>
    `2026-03-10T10:${String(Math.floor(i / 60) % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}.${String(i).padStart(6, '0')}+00:00`;

  it('a selection of 250 jobs with max-rows 100 sees all 250, in pages of (created_at, id)', async () => {
    const db = createMemoryJobsDb({ maxRows: 100 });
    for (let i = 0; i < 250; i++) db.insert({ id: jobId(i), created_at: at(i % 7) });
    const read = await readSelection(db, parseSelection({}, NOW), 500);
    expect(read.jobs).toHaveLength(250);
    expect(new Set(read.jobs.map((j) => j.id)).size).toBe(250);
    expect(read.more).toBeUndefined();
    expect(read.requests).toBe(3);
  });

  it('the regex scan finds every match with max-rows 100, and says when more match than the limit', async () => {
    const db = createMemoryJobsDb({ maxRows: 100 });
    for (let i = 0; i < 1000; i++)
      db.insert({ id: jobId(i), created_at: at(i), error: i % 4 === 0 ? 'ValueError: Circular reference' : 'OOM' });
    const read = await readSelection(db, parseSelection({ error: '/circular/i' }, NOW), 500);
    expect(read.jobs).toHaveLength(250);
    expect(read.jobs.every((j) => j.error?.includes('Circular'))).toBe(true);
    expect(read.more).toBeUndefined();
    expect(read.scanCut).toBe(false);
    const cut = await readSelection(db, parseSelection({ error: '/circular/i' }, NOW), 100);
    expect(cut.jobs).toHaveLength(100);
    expect(cut.more).toEqual({});
  });

  it('reads 100 ids with max-rows 30 in pages, none missing', async () => {
    const db = createMemoryJobsDb({ maxRows: 30 });
    const ids = Array.from({ length: 100 }, (_, i) => jobId(i));
    for (const id of ids) db.insert({ id, created_at: at(3) });
    const read = await readSelection(db, { kind: 'ids', ids }, 500);
    expect(read.jobs).toHaveLength(100);
    expect(read.missingIds).toEqual([]);
    expect(read.requests).toBe(4);
  });

  it('counts past the limit from the first page (the count from Content-Range, not the rows sent)', async () => {
    const db = createMemoryJobsDb({ maxRows: 100 });
    for (let i = 0; i < 250; i++) db.insert({ id: jobId(i), created_at: at(i) });
    const read = await readSelection(db, parseSelection({}, NOW), 120);
    expect(read.jobs).toHaveLength(120);
    expect(read.more).toEqual({ total: 250 });
  });
});

describe('scanJobs: where a scan ends', () => {
  const jobId = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;

  it('without a count in the answer (Content-Range `0-99/*`), pages on until an empty page', async () => {
    const db = createMemoryJobsDb({ maxRows: 100 });
    for (let i = 0; i < 250; i++)
      db.insert({ id: jobId(i), created_at: `2026-03-10T10:00:00.${String(i).padStart(6, '0')}+00:00` });
    const noCount: JobsDb = {
      ...db,
      findJobs: async (f) => {
        const r = await db.findJobs(f);
        return r.ok ? { ...r, value: { ...r.value, total: null } } : r;
      },
    };
    const seen: string[] = [];
    const r = await scanJobs(
      noCount,
      { statuses: ['failed'] },
      () => 1000,
      (page) => {
        seen.push(...page.jobs.map((j) => j.id));
        return true;
      },
    );
    expect(r).toEqual({ ok: true, ended: true, requests: 4 });
    expect(new Set(seen).size).toBe(250);
  });

  it('stops, not ended, when the server sends the same page again (it ignored the cursor)', async () => {
    const db = createMemoryJobsDb({ maxRows: 100 });
    for (let i = 0; i < 250; i++) db.insert({ id: jobId(i) });
    const ignoresCursor: JobsDb = { ...db, findJobs: (f) => db.findJobs({ ...f, after: undefined }) };
    let pages = 0;
    const r = await scanJobs(
      ignoresCursor,
      {},
      () => 1000,
      () => ++pages > 0,
    );
    expect(r).toEqual({ ok: true, ended: false, requests: 2 });
    expect(pages).toBe(1);
  });
});
