/**
 * The evidence-gathering steps shared by the runbooks: each does its I/O through the ports, records what it saw in
 * the evidence, and returns check lines. None of them decides what the evidence means (see diagnosis.ts).
 */

import path from 'node:path';
import { countText } from '../core/text.ts';
import { findAppSupabaseUrl, parseEnvText } from '../io/env-file.ts';
import { describeKey, inspectKey } from '../io/keys.ts';
import { expandTilde } from '../io/ssh/target.ts';
import { type CheckResult, check, type Step } from '../io/steps.ts';
import { supabaseCliDefaultKeys } from '../io/supabase-cli-keys.ts';
import { classifySupabaseUrl } from '../io/supabase-url.ts';
import { type Evidence, formatAge, minutesBetween } from './evidence.ts';
import { type GatherState, sparkHeadStart } from './gather-state.ts';

export type { GatherState } from './gather-state.ts';
export { LOG_TAIL_BYTES, sparkStep } from './spark-step.ts';

export const configStep: Step<GatherState> = {
  id: 'laptop-config',
  title: 'Read the laptop config',
  async run({ config, evidence, ports }) {
    const warnings = config.issues.filter((i) => i.severity === 'warning');
    const from = config.envFile ? path.relative(ports.cwd, config.envFile) || config.envFile : 'the environment';
    const laptop = evidence.laptop;
    const lines = [
      `Supabase ${laptop.url?.origin ?? '(invalid URL)'} (${laptop.url?.kind ?? '?'}${(laptop.url?.projectRef ?? laptop.declaredRef) ? `, project ${laptop.url?.projectRef ?? laptop.declaredRef}` : ''})`,
      `key ${laptop.keyVar}: ${laptop.key ? describeKey(laptop.key, evidence.now) : 'missing'}`,
      ...warnings.map((w) => `${w.name}: ${w.message} (${w.fix})`),
    ];
    return check(
      'laptop-config',
      this.title,
      warnings.length ? 'warning' : 'ok',
      `${from}; ${laptop.url?.origin ?? '?'}, ${laptop.key?.kind === 'jwt' ? `${laptop.key.role} JWT` : `${laptop.key?.kind} key`} ${laptop.key?.masked ?? ''}`,
      { details: lines, fix: warnings[0]?.fix },
    );
  },
};

function supabaseCheck(state: GatherState, title: string, detail: string): CheckResult {
  const s = state.evidence.supabase;
  if (!s) return check('supabase', title, 'skipped', 'not queried');
  if (!s.ok) return check('supabase', title, 'failed', s.failure.message, { fix: s.failure.fix });
  return check('supabase', title, 'ok', `answered in ${Math.round(s.ms)} ms; key accepted; ${detail}`);
}

/** Preflight: one request proves the API answers, the key is accepted and the jobs table is readable. */
export const supabasePreflightStep: Step<GatherState> = {
  id: 'supabase',
  title: 'Query Supabase from this machine',
  async run(state) {
    const r = await state.db.queuedSummary();
    state.evidence.supabase = r.ok ? { ok: true, ms: r.ms } : { ok: false, failure: r.failure };
    if (r.ok) state.evidence.queueReads = [{ read: 'queued/pending count and oldest', ms: r.ms }];
    const queued = r.ok ? countText(r.value.count, r.value.estimated) : '';
    return supabaseCheck(state, this.title, r.ok ? `hd_ingestion_jobs readable (${queued} queued/pending)` : '');
  },
};

/** The queue: counts per status, the oldest queued, the running, recent failures. Four requests in parallel. */
export const queueStep: Step<GatherState> = {
  id: 'queue',
  title: 'Read the queue',
  async run(state) {
    const { evidence } = state;
    await sparkHeadStart(state);
    const since = new Date(evidence.now.getTime() - 24 * 3_600_000);
    const r = await state.db.queueSnapshot({ failedSince: since, listLimit: 50 });
    state.evidence.supabase = r.ok ? { ok: true, ms: r.ms } : { ok: false, failure: r.failure };
    if (!r.ok) return check('queue', this.title, 'failed', r.failure.message, { fix: r.failure.fix });
    evidence.queue = r.value;
    evidence.queueReads = r.value.reads ?? [{ read: 'the queue', ms: r.ms }];
    const q = r.value;
    const oldest = q.queued.oldest[0];
    const counts = `${countText(q.queued.count, q.queued.estimated)} queued/pending${oldest ? ` (oldest ${formatAge(minutesBetween(evidence.now, oldest.created_at))})` : ''}, ${countText(q.running.count, q.running.estimated)} running, ${countText(q.failed.count, q.failed.estimated)} failed in 24 h, ${countText(q.done.count, q.done.estimated)} done (${Math.round(r.ms)} ms)`;
    // A key row-level security binds reads what its policies let it see, often nothing: these counts are not the queue
    // (the wrong-key-role finding says which key to use).
    const key = evidence.laptop.key;
    if (key && !key.privileged) {
      return check('queue', this.title, 'warning', `${counts}, as ${evidence.laptop.keyVar} sees it`, {
        fix: `not the whole queue: ${evidence.laptop.keyVar} is not a service-role or secret key (see wrong-key-role)`,
      });
    }
    return check('queue', this.title, 'ok', counts);
  },
};

/** The app's side as its env names it: the *SUPABASE_URL found there and its key (never the key itself). */
export function appSide(
  found: NonNullable<ReturnType<typeof findAppSupabaseUrl>>,
  source: string,
): NonNullable<Evidence['app']> {
  const url = classifySupabaseUrl(found.url);
  return {
    source: `${found.urlName} in ${source}`,
    urlVar: found.urlName,
    url: url.ok ? url : undefined,
    urlProblem: url.ok ? undefined : url.problem,
    keyVar: found.keyName,
    key: found.key ? inspectKey(found.key) : undefined,
  };
}

/** The app's env: which Supabase it writes jobs to; if not ours, what that instance holds. */
export const appStep: Step<GatherState> = {
  id: 'app',
  title: "Read the app's env",
  skip: ({ config }) =>
    config.values.APP_ENV_FILE || config.values.APP_SUPABASE_URL
      ? undefined
      : 'APP_ENV_FILE and APP_SUPABASE_URL are not set; the app is not cross-checked',
  async run(state) {
    const { ports, config, evidence } = state;
    let vars: Record<string, string>;
    let source: string;
    if (config.values.APP_ENV_FILE) {
      const file = path.resolve(
        config.envFile ? path.dirname(config.envFile) : ports.cwd,
        expandTilde(config.values.APP_ENV_FILE, ports.homeDir),
      );
      const text = ports.files.read(file);
      if (text === undefined) {
        return check('app', this.title, 'failed', `APP_ENV_FILE ${file} does not exist`, {
          fix: "set APP_ENV_FILE to the app's env file (e.g. ../app/.env.local)",
        });
      }
      vars = parseEnvText(text);
      source = file;
    } else {
      vars = { SUPABASE_URL: config.values.APP_SUPABASE_URL! };
      source = 'APP_SUPABASE_URL';
    }
    const found = findAppSupabaseUrl(vars);
    if (!found) {
      return check('app', this.title, 'warning', `no *SUPABASE_URL variable in ${source}`, {
        fix: 'expected NEXT_PUBLIC_SUPABASE_URL, VITE_SUPABASE_URL, EXPO_PUBLIC_SUPABASE_URL, PUBLIC_SUPABASE_URL or SUPABASE_URL',
      });
    }
    ports.out.addSecret(found.key);
    const app = appSide(found, source);
    const url = classifySupabaseUrl(found.url);
    evidence.app = app;
    if (!url.ok) return check('app', this.title, 'failed', `${found.urlName}: ${url.problem}`, { fix: url.fix });
    const same = url.origin === evidence.laptop.url?.origin;
    if (!same) {
      // Count what that other instance holds: the evidence for failure A. A local CLI instance accepts its
      // public default service key; otherwise only the app's own key is available (and RLS may hide jobs).
      const key = url.kind === 'local' ? (await supabaseCliDefaultKeys()).serviceRoleKey : found.key;
      if (key) {
        ports.out.addSecret(key);
        const r = await ports.openDb(url.origin, key).queuedSummary();
        app.other = r.ok
          ? { ok: true, queued: r.value.count, estimated: r.value.estimated, oldest: r.value.oldest }
          : { ok: false, message: r.failure.message };
      }
    }
    return check(
      'app',
      this.title,
      same ? 'ok' : 'warning',
      `${found.urlName}=${url.origin} (${url.kind}${url.localReason ? `: ${url.localReason}` : ''})${same ? ', same project as the runbook' : ''}${app.other?.ok ? `; it holds ${countText(app.other.queued, app.other.estimated)} queued job(s)` : app.other ? `; not reachable: ${app.other.message}` : ''}`,
    );
  },
};

/** Closes the run's SSH connection, if one was opened. */
export async function closeSession(state: GatherState): Promise<void> {
  await state.session?.close();
  state.session = undefined;
}
