/**
 * An incident as data: what each side of the system would show the runbooks (the queue's rows, the worker's .env,
 * processes and log, the app's env, the laptop's config) and what the diagnosis should make of it. One JSON file per
 * incident in incidents/; see README.md for the tokens and the fields' defaults.
 */

/** A job row; times are minutes before the corpus's now. */
export interface IncidentRow {
  id: string;
  job_type?: string;
  status: 'queued' | 'pending' | 'running' | 'done' | 'failed';
  attempts?: number;
  account_id?: string | null;
  /** The row's error: as written, or a genuine message from test/fixtures/tracebacks/ (`message`: str(e); `typed`: "Type: message"; `traceback`: the whole text). */
  error?: string | { fixture: string; form?: 'message' | 'typed' | 'traceback' } | null;
  debug?: Record<string, unknown> | null;
  createdMinutesAgo: number;
  startedMinutesAgo?: number;
  finishedMinutesAgo?: number;
}

/** A process as the probe's `ps -o pid=,ppid=,etimes=,user:32=,args=` lists it, with its /proc comm. */
export interface IncidentProcess {
  pid: number;
  ppid?: number;
  startedMinutesAgo: number;
  user?: string;
  args: string;
  comm?: string;
}

/** The worker's log, rendered by render-logs.py with Python's logging (see there for the spec). */
export interface LogSpec {
  layout?: 'iso' | 'asctime' | 'basic' | 'json' | 'ansi';
  crlf?: boolean;
  records: unknown[];
}

export interface Expected {
  /** The first finding at warning level or above (what the verdict line names); null: healthy. */
  top: string | null;
  /** The runbook's exit code: 0 healthy, 1 findings, 2 could not look. */
  exit: 0 | 1 | 2;
  /** Each finding the diagnosis must make: the jobs it claims (all findings of that id together) and requeue-safety. */
  findings: Record<string, { jobs: string[]; requeueSafe: boolean }>;
  /** Ids that must not be made (a misnaming this incident guards against). */
  absent?: string[];
}

export interface Incident {
  summary: string;
  /** What the incident exercises: `mixed` (two causes, old history or an odd log layout), `e2e` (also run with the real Python worker), ... */
  tags: string[];
  /** Where the wording comes from, for messages quoted from real reports. */
  sources?: string[];
  /** The laptop's config file (KEY=VALUE); merged over the defaults, `null` removes a default. */
  laptop?: Record<string, string | null>;
  worker?: {
    dir?: string;
    dirExists?: boolean;
    /** The worker's .env, merged over the defaults (`null` removes); or its state when it is not a readable file. */
    env?: Record<string, string | null> | 'missing' | 'unreadable';
    /** Default: one Python worker of sparkuser, up two days. */
    processes?: IncidentProcess[];
    /** Minutes since the log was last written; default: its last record's time. `missing`: no logs/worker.log. */
    logModifiedMinutesAgo?: number;
    logMissing?: boolean;
    disk?: { availableKb: number; usedPercent: number };
    reach?: { http: number; seconds?: number } | { curlError: string };
    clockSkewSeconds?: number;
  };
  /** The app's env file (KEY=VALUE), merged over the defaults; `null`: no app configured. */
  app?: {
    env?: Record<string, string | null>;
    /** When the app's URL is not the laptop's: what the gather step's queued count of that instance answers. */
    instance?: { rows: IncidentRow[] } | { error: string };
  } | null;
  rows: IncidentRow[];
  log?: LogSpec;
  expect: Expected;
}
