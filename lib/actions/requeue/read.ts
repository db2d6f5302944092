/**
 * Reading jobs page by page (keyset on created_at, id) and by id: one place for the paging every requeue step needs
 * (selection, read-back, audit, verify). The server may send fewer rows than asked (Supabase's max-rows, 1,000 by
 * default and lower on some projects), so a short page is never taken as the end: the count in Content-Range is.
 */
import type { Job } from '../../core/job.ts';
import type { DbFailure, JobCursor, JobFilter, JobPage, JobsDb } from '../../io/jobs-db.ts';

/** Ids per request: keeps the URL of an `id=in.(...)` filter well under every proxy's limit. */
export const IDS_PER_REQUEST = 100;
/** Rows asked per page at most: hosted Supabase's default max-rows; a project may send fewer. */
export const PAGE_SIZE = 1000;

export type JobsById =
  | { ok: true; found: Map<string, Job>; requests: number }
  | { ok: false; failure: DbFailure; requests: number };

/** How a scan ended: `ended` when the server had no more rows, else `onPage` stopped it (or the server stalled). */
export type ScanEnd =
  | { ok: true; ended: boolean; requests: number }
  | { ok: false; failure: DbFailure; requests: number };

/**
 * Reads the rows of `filter` page by page, in (created_at, id) order, handing each page to `onPage` until it
 * returns false or the server has no more. The end is a page holding every row its count says is left (the count
 * is from the cursor on; `count=estimated` is exact at that size), or an empty page when the answer has no count.
 */
export async function scanJobs(
  db: JobsDb,
  filter: Omit<JobFilter, 'limit' | 'after'>,
  pageSize: () => number,
  onPage: (page: JobPage, first: boolean) => boolean,
): Promise<ScanEnd> {
  let after: JobCursor | undefined;
  for (let requests = 1; ; requests++) {
    const r = await db.findJobs({ ...filter, after, limit: Math.max(1, Math.min(PAGE_SIZE, pageSize())) });
    if (!r.ok) return { ok: false, failure: r.failure, requests };
    const page = r.value;
    const last = page.jobs.at(-1);
    // A server that ignored the cursor sends the same page again: stop rather than loop (or count it twice).
    if (after && last && last.id === after.id && last.created_at === after.created_at) {
      return { ok: true, ended: false, requests };
    }
    const ended = !last || (page.total !== null && page.total <= page.jobs.length);
    const goOn = onPage(page, requests === 1);
    if (ended) return { ok: true, ended: true, requests };
    if (!goOn) return { ok: true, ended: false, requests };
    after = { created_at: last.created_at, id: last.id };
  }
}

/** Reads the given jobs, chunk by chunk (each paged); stops at the first failed read. Keys are lower-case ids. */
export async function readJobsById(db: JobsDb, ids: readonly string[]): Promise<JobsById> {
  const found = new Map<string, Job>();
  let requests = 0;
  for (let i = 0; i < ids.length; i += IDS_PER_REQUEST) {
    const chunk = ids.slice(i, i + IDS_PER_REQUEST);
    const r = await scanJobs(
      db,
      { ids: chunk },
      () => chunk.length,
      (page) => {
        for (const j of page.jobs) found.set(j.id.toLowerCase(), j);
        return true;
      },
    );
    requests += r.requests;
    if (!r.ok) return { ok: false, failure: r.failure, requests };
  }
  return { ok: true, found, requests };
}
