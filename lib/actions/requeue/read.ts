/** Reading jobs by id: one place for the chunking every requeue step needs (selection, read-back, audit, verify). */
import type { Job } from '../../core/job.ts';
import type { DbFailure, JobsDb } from '../../io/jobs-db.ts';

/** Ids per request: keeps the URL of an `id=in.(...)` filter well under every proxy's limit. */
export const IDS_PER_REQUEST = 100;

export type JobsById =
  | { ok: true; found: Map<string, Job>; requests: number }
  | { ok: false; failure: DbFailure; requests: number };

/** Reads the given jobs, chunk by chunk; stops at the first failed read. Keys are lower-case ids. */
export async function readJobsById(db: JobsDb, ids: readonly string[]): Promise<JobsById> {
  const found = new Map<string, Job>();
  let requests = 0;
  for (let i = 0; i < ids.length; i += IDS_PER_REQUEST) {
    const chunk = ids.slice(i, i + IDS_PER_REQUEST);
    const r = await db.findJobs({ ids: chunk, limit: chunk.length });
    requests++;
    if (!r.ok) return { ok: false, failure: r.failure, requests };
    for (const j of r.value.jobs) found.set(j.id.toLowerCase(), j);
  }
  return { ok: true, found, requests };
}
