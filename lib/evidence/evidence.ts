/** Evidence: everything the runbooks saw, as plain data. Gathered by steps, read by the pure finding rules. */

import type { SshFailure, SshTarget } from '../core/ports.ts';
import type { StuckRules } from '../core/stuck-rules.ts';
import type { SupabaseSide } from '../io/config.ts';
import type { EnvIssue } from '../io/env-file.ts';
import type { DbFailure, Job, QueueSnapshot, ReadTime } from '../io/jobs-db.ts';
import type { SparkEvidence } from './probe/spark-evidence.ts';

export type { SupabaseSide };

export interface Evidence {
  now: Date;
  rules: StuckRules;
  laptop: SupabaseSide & { envFile?: string; issues: EnvIssue[] };
  /** The laptop's request to Supabase (the preflight / queue read). */
  supabase?: { ok: true; ms: number } | { ok: false; failure: DbFailure };
  /** Each queue read's own time (the preflight's, or the queue step's four): a slow one means missing indexes. */
  queueReads?: ReadTime[];
  queue?: QueueSnapshot;
  /** Not set when Spark is not configured (SPARK_HOST unset). */
  spark?:
    | { ok: true; target: SshTarget; fingerprint: string; probe: SparkEvidence; connectMs: number }
    | { ok: false; target?: SshTarget; failure: SshFailure };
  /** The worker's Supabase config, read from its .env over SSH. */
  worker?: SupabaseSide;
  app?: SupabaseSide & {
    /** When the app points somewhere other than the laptop: what that instance holds. */
    other?: { ok: true; queued: number; estimated?: boolean; oldest: Job | null } | { ok: false; message: string };
  };
}

export function minutesBetween(later: Date, earlier: Date | string | null | undefined): number | undefined {
  if (!earlier) return undefined;
  const t = typeof earlier === 'string' ? Date.parse(earlier) : earlier.getTime();
  if (Number.isNaN(t)) return undefined;
  return (later.getTime() - t) / 60_000;
}

/** "3 min", "2 h 5 min", "4 d 2 h": ages at a glance. */
export function formatAge(minutes: number | undefined): string {
  if (minutes === undefined) return 'unknown';
  if (minutes < 1) return `${Math.max(0, Math.round(minutes * 60))} s`;
  if (minutes < 60) return `${Math.round(minutes)} min`;
  const h = Math.floor(minutes / 60);
  if (h < 48) return `${h} h ${Math.round(minutes % 60)} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}
