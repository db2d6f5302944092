/** When is a job stuck? Thresholds from flags or env, with per-job_type overrides; printed with every result. */
import type { Job } from './job.ts';

export interface Thresholds {
  /** queued/pending longer than this while the worker shows no activity */
  queuedMinutes: number;
  /** running with started_at older than this and no finish */
  runningMinutes: number;
  /** failed with attempts at or over this */
  maxAttempts: number;
}

export interface StuckRules extends Thresholds {
  perJobType: Record<string, Partial<Thresholds>>;
}

export const DEFAULT_RULES: StuckRules = { queuedMinutes: 15, runningMinutes: 60, maxAttempts: 3, perJobType: {} };

export function thresholdsFor(rules: StuckRules, jobType: string): Thresholds {
  const o = rules.perJobType[jobType] ?? {};
  return {
    queuedMinutes: o.queuedMinutes ?? rules.queuedMinutes,
    runningMinutes: o.runningMinutes ?? rules.runningMinutes,
    maxAttempts: o.maxAttempts ?? rules.maxAttempts,
  };
}

const KEYS: Record<string, keyof Thresholds> = {
  queued: 'queuedMinutes',
  running: 'runningMinutes',
  attempts: 'maxAttempts',
};

/**
 * Parses per-job_type overrides: `import_assets_jsonl:running=180,queued=30;thumbnail:queued=5`.
 * Returns an error message (naming the bad part) instead of throwing.
 */
export function parseJobTypeRules(
  text: string,
): { ok: true; value: StuckRules['perJobType'] } | { ok: false; error: string } {
  const out: StuckRules['perJobType'] = {};
  for (const part of text
    .split(';')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^([A-Za-z0-9_.-]{1,64}):(.+)$/.exec(part);
    if (!m) return { ok: false, error: `"${part}" is not JOB_TYPE:key=value[,key=value]` };
    const entry: Partial<Thresholds> = {};
    for (const kv of m[2].split(',')) {
      const [k, v] = kv.split('=').map((s) => s.trim());
      const key = Object.hasOwn(KEYS, k) ? KEYS[k] : undefined;
      if (!key) return { ok: false, error: `unknown rule "${k}" in "${part}" (use queued, running or attempts)` };
      if (!/^\d{1,6}$/.test(v ?? '') || Number(v) < 1) {
        return { ok: false, error: `"${k}=${v ?? ''}" in "${part}" needs a whole number of at least 1` };
      }
      entry[key] = Number(v);
    }
    out[m[1]] = { ...out[m[1]], ...entry };
  }
  return { ok: true, value: out };
}

/** The rules in one line, as every result prints them. */
export function describeRules(rules: StuckRules): string {
  const base = `queued > ${rules.queuedMinutes} min with no worker activity, running > ${rules.runningMinutes} min, failed with attempts ≥ ${rules.maxAttempts}`;
  const overrides = Object.entries(rules.perJobType).map(
    ([t, o]) =>
      `${t}: ${Object.entries(o)
        .map(([k, v]) => `${k.replace('Minutes', '').replace('maxAttempts', 'attempts')}=${v}`)
        .join(',')}`,
  );
  return overrides.length ? `${base}; overrides ${overrides.join('; ')}` : base;
}

export function isStaleRunning(job: Job, rules: StuckRules, now: Date): boolean {
  if (job.status !== 'running' || job.finished_at) return false;
  const t = thresholdsFor(rules, job.job_type);
  const started = job.started_at ? Date.parse(job.started_at) : Date.parse(job.created_at);
  return (now.getTime() - started) / 60_000 > t.runningMinutes;
}

export function isOverdueQueued(job: Job, rules: StuckRules, now: Date): boolean {
  if (job.status !== 'queued' && job.status !== 'pending') return false;
  const t = thresholdsFor(rules, job.job_type);
  return (now.getTime() - Date.parse(job.created_at)) / 60_000 > t.queuedMinutes;
}

export function isAttemptsExhausted(job: Job, rules: StuckRules): boolean {
  return job.status === 'failed' && job.attempts >= thresholdsFor(rules, job.job_type).maxAttempts;
}
