/**
 * The requeue audit file: append-only JSONL on the operator's machine, one line per job written (or skipped), with
 * before and after, appended as the writes happen.
 *
 * To stay exact across a kill, each batch is announced first by an `intent` line naming its job ids; a job line
 * follows each write. A kill between a write and its job line leaves an intent without a job line, and the next run
 * that uses the same file settles it from the database (the history entry carries the run id), so the file ends
 * up saying exactly what was written. Lines never contain keys: everything passes through the output's redactor.
 */

import path from 'node:path';
import { RunbookError } from '../../core/exit-codes.ts';
import type { Appender, Files } from '../../io/context.ts';
import { inertJson } from '../../io/inert.ts';
import type { Job, JobsDb } from '../../io/jobs-db.ts';
import { expandTilde } from '../../io/ssh/target.ts';
import { entryOfRun, type JobState, jobState, requeuedState, stateFromEntry } from './history.ts';
import { readJobsById } from './read.ts';

/** The audit file's name in the state folder. */
export const AUDIT_FILE_NAME = 'requeue-audit.jsonl';
const APP_DIR = 'hd-worker-runbooks';

/** `$XDG_STATE_HOME/hd-worker-runbooks/requeue-audit.jsonl`, else `~/.local/state/hd-worker-runbooks/...`. */
export function defaultAuditFile(env: Readonly<Record<string, string | undefined>>, homeDir: string): string {
  const xdg = env.XDG_STATE_HOME;
  // The XDG spec says a relative value is invalid and must be ignored.
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(homeDir, '.local', 'state');
  return path.join(base, APP_DIR, AUDIT_FILE_NAME);
}

/** `--audit FILE`, else REQUEUE_AUDIT_FILE, else the default; `~/` expanded, relative paths from the cwd. */
export function resolveAuditFile(
  flag: string | undefined,
  configured: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  homeDir: string,
  cwd: string,
): string {
  const given = flag ?? configured;
  if (given === undefined) return defaultAuditFile(env, homeDir);
  if (given.trim() === '')
    throw new RunbookError('--audit is empty', 'pass a file path, or leave it out for the default');
  const expanded = expandTilde(given, homeDir);
  return path.resolve(cwd, expanded);
}

/** Which project a line is about (never a key). */
export interface AuditProject {
  origin: string;
  ref: string | null;
}

interface AuditBase {
  run_id: string;
  op_id: string;
  at: string;
  by: string;
  reason: string | null;
  project: AuditProject;
}

/** One job: what it was, what it became, and whether the requeue wrote it. */
export interface AuditJobLine extends AuditBase {
  job_id: string;
  before: JobState | null;
  after: JobState | null;
  outcome: 'requeued' | 'skipped';
  note?: string;
  /** Set on lines written later by another run that settled an interrupted one. */
  recovered_by?: string;
}

/** A batch about to be written. */
export interface AuditIntentLine extends AuditBase {
  outcome: 'intent';
  job_ids: string[];
  reset_attempts: boolean;
}

/** Any line of the audit file. */
export type AuditLine = AuditJobLine | AuditIntentLine;

/** The audit file's text (undefined when it does not exist yet); an unreadable path is a usage error naming --audit. */
export function readAuditFile(files: Files, file: string): string | undefined {
  try {
    return files.read(file);
  } catch (e) {
    throw new RunbookError(
      `cannot read the audit file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      'pass --audit FILE with a readable, writable file path (or set REQUEUE_AUDIT_FILE)',
      undefined,
      { cause: e },
    );
  }
}

/** The run-wide fields of every line. */
export type AuditContext = Omit<AuditBase, 'at'>;

/** The audit file, opened for one run. */
export interface AuditLog {
  readonly file: string;
  /** Lines this run appended. */
  readonly written: AuditLine[];
  intent(jobIds: readonly string[], at: string, resetAttempts: boolean): void;
  job(line: Omit<AuditJobLine, keyof AuditContext> & Partial<AuditContext>): void;
  /** Closes the file kept open since the first line (a later line opens it again). */
  close(): void;
}

/**
 * Opens the audit file for appending. Appends are synchronous and flushed (Files.append), so a line is on disk
 * before the next write starts; a failure to append stops the run (as a RunbookError) rather than write unaudited.
 * The file is opened at the first line and kept open until {@link AuditLog.close} (Files.openAppend, where there is
 * one): a line per job, 100,000 of them, each no longer opening, creating the folder and closing.
 */
export function openAuditLog(
  files: Files,
  redact: (text: string) => string,
  file: string,
  ctx: AuditContext,
): AuditLog {
  const existing = readAuditFile(files, file);
  // A kill in the middle of an append can leave a line without its newline; never glue the next line onto it.
  let needsNewline = existing !== undefined && existing.length > 0 && !existing.endsWith('\n');
  const written: AuditLine[] = [];
  let appender: Appender | undefined;
  const append = (line: AuditLine) => {
    const text = `${needsNewline ? '\n' : ''}${redact(inertJson(JSON.stringify(line)))}\n`;
    try {
      if (files.openAppend) {
        appender ??= files.openAppend(file);
        appender.append(text);
      } else files.append(file, text);
    } catch (e) {
      throw new RunbookError(
        `cannot append to the audit file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        'pass --audit FILE with a writable path (or set REQUEUE_AUDIT_FILE); rerun the same command to continue',
        undefined,
        { cause: e },
      );
    }
    needsNewline = false;
    written.push(line);
  };
  return {
    file,
    written,
    intent(jobIds, at, resetAttempts) {
      append({ ...ctx, at, outcome: 'intent', job_ids: [...jobIds], reset_attempts: resetAttempts });
    },
    job(line) {
      append({ ...ctx, ...line } as AuditJobLine);
    },
    close() {
      appender?.close();
      appender = undefined;
    },
  };
}

/** Parses the audit file; torn or foreign lines are skipped (the file is append-only, never rewritten). */
export function parseAuditText(text: string | undefined): AuditLine[] {
  if (!text) return [];
  const out: AuditLine[] = [];
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    try {
      const v = JSON.parse(raw) as AuditLine;
      if (v && typeof v === 'object' && typeof v.run_id === 'string' && typeof v.outcome === 'string') out.push(v);
    } catch {
      // a line cut by a kill
    }
  }
  return out;
}

/** An announced batch whose jobs have no job line yet: the run was interrupted between write and line. */
export interface PendingIntent {
  intent: AuditIntentLine;
  jobIds: string[];
}

/** The announced jobs that never got a job line of their run. */
export function pendingIntents(lines: readonly AuditLine[]): PendingIntent[] {
  const settled = new Set<string>();
  for (const l of lines) if (l.outcome !== 'intent') settled.add(`${l.run_id}\u0000${l.job_id}`);
  const out: PendingIntent[] = [];
  for (const l of lines) {
    if (l.outcome !== 'intent') continue;
    const jobIds = l.job_ids.filter((id) => !settled.has(`${l.run_id}\u0000${id}`));
    if (jobIds.length) out.push({ intent: l, jobIds });
  }
  return out;
}

/** What {@link reconcileAudit} settled. */
export interface Reconciliation {
  /** Jobs found written by an interrupted run (a requeued line appended for each). */
  requeued: number;
  /** Jobs found not written (a skipped line appended for each). */
  notWritten: number;
  /** Intents of other projects or unreadable now: left pending. */
  leftPending: number;
  runs: string[];
}

/**
 * Settles the pending intents of `project` from the database: a job carrying a history entry of the intent's run
 * was written (a `requeued` line, its before from that entry); any other job was not (a `skipped` line).
 */
export async function reconcileAudit(
  db: JobsDb,
  log: AuditLog,
  pending: readonly PendingIntent[],
  project: AuditProject,
  recoveredBy: string,
  now: () => Date,
): Promise<Reconciliation> {
  const result: Reconciliation = { requeued: 0, notWritten: 0, leftPending: 0, runs: [] };
  for (const p of pending) {
    if (p.intent.project.origin !== project.origin) {
      result.leftPending += p.jobIds.length;
      continue;
    }
    const read = await readJobsById(db, p.jobIds);
    const found = read.ok ? read.found : new Map<string, Job>();
    if (!read.ok) {
      result.leftPending += p.jobIds.length;
      continue;
    }
    const base = {
      run_id: p.intent.run_id,
      op_id: p.intent.op_id,
      by: p.intent.by,
      reason: p.intent.reason,
      project: p.intent.project,
      recovered_by: recoveredBy,
    };
    for (const id of p.jobIds) {
      const job = found.get(id);
      const entry = job ? entryOfRun(job.debug, p.intent.run_id) : undefined;
      if (job && entry) {
        const before = stateFromEntry(entry);
        log.job({
          ...base,
          at: entry.at,
          job_id: id,
          before,
          after: requeuedState(before, p.intent.reset_attempts),
          outcome: 'requeued',
          note: 'settled after an interruption: the write had happened',
        });
        result.requeued++;
      } else {
        log.job({
          ...base,
          at: now().toISOString(),
          job_id: id,
          before: job ? jobState(job) : null,
          after: job ? jobState(job) : null,
          outcome: 'skipped',
          note: job
            ? 'settled after an interruption: not written'
            : 'settled after an interruption: the job no longer exists',
        });
        result.notWritten++;
      }
    }
    if (!result.runs.includes(p.intent.run_id)) result.runs.push(p.intent.run_id);
  }
  return result;
}
