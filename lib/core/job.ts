/** The job row and its statuses: types and constants only, so light modules (flag parsing, --help) can use them. */

export const JOB_STATUSES = ['queued', 'pending', 'running', 'done', 'failed'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export interface Job {
  id: string;
  account_id: string | null;
  job_type: string;
  status: JobStatus;
  attempts: number;
  error: string | null;
  debug: Record<string, unknown> | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

/** Never `payload`: it can be megabytes, and no runbook needs it. */
export const JOB_COLUMNS = 'id,account_id,job_type,status,attempts,error,debug,created_at,started_at,finished_at';
