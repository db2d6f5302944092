/**
 * The evidence-gathering steps shared by the runbooks: each does its I/O through the ports, records what it saw in
 * the evidence, and returns check lines. None of them decides what the evidence means (see diagnosis.ts).
 */

import path from 'node:path';
import type { SshSession } from '../core/ports.ts';
import { clip } from '../core/text.ts';
import { diskLow } from '../core/thresholds.ts';
import type { LoadedConfig } from '../io/config.ts';
import type { Ports } from '../io/context.ts';
import { findAppSupabaseUrl, parseEnvText } from '../io/env-file.ts';
import type { JobsDb } from '../io/jobs-db.ts';
import { describeKey, inspectKey } from '../io/keys.ts';
import { looksSecret } from '../io/redact.ts';
import { hostKeyFingerprintCommand } from '../io/ssh/known-hosts.ts';
import { expandTilde, resolveSshTarget } from '../io/ssh/target.ts';
import { type CheckResult, check, type Step } from '../io/steps.ts';
import { supabaseCliDefaultKeys } from '../io/supabase-cli-keys.ts';
import { classifySupabaseUrl } from '../io/supabase-url.ts';
import { type Evidence, formatAge, minutesBetween, type SupabaseSide } from './evidence.ts';
import { probeSpark } from './spark-probe.ts';

/** Bytes of the worker log's end that a run reads, whatever the log's size. */
export const LOG_TAIL_BYTES = 64 * 1024;

export interface GatherState {
  ports: Ports;
  config: LoadedConfig;
  evidence: Evidence;
  db: JobsDb;
  /** The one SSH connection of the run, once opened. */
  session?: SshSession;
}

function sideFromVars(
  vars: Record<string, string>,
  source: string,
  urlVar: string,
  keyVars: readonly string[],
): SupabaseSide {
  const url = classifySupabaseUrl(vars[urlVar]);
  const keyVar = keyVars.find((k) => vars[k]);
  return {
    source,
    urlVar,
    url: url.ok ? url : undefined,
    urlProblem: url.ok ? undefined : url.problem,
    keyVar,
    key: keyVar ? inspectKey(vars[keyVar]) : undefined,
    declaredRef: vars.SUPABASE_PROJECT_REF,
  };
}

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
    return supabaseCheck(state, this.title, r.ok ? `hd_ingestion_jobs readable (${r.value.count} queued/pending)` : '');
  },
};

/** The queue: counts per status, the oldest queued, the running, recent failures. Four requests in parallel. */
export const queueStep: Step<GatherState> = {
  id: 'queue',
  title: 'Read the queue',
  async run(state) {
    const { evidence } = state;
    const since = new Date(evidence.now.getTime() - 24 * 3_600_000);
    const r = await state.db.queueSnapshot({ failedSince: since, listLimit: 50 });
    state.evidence.supabase = r.ok ? { ok: true, ms: r.ms } : { ok: false, failure: r.failure };
    if (!r.ok) return check('queue', this.title, 'failed', r.failure.message, { fix: r.failure.fix });
    evidence.queue = r.value;
    const q = r.value;
    const oldest = q.queued.oldest[0];
    return check(
      'queue',
      this.title,
      'ok',
      `${q.queued.count} queued/pending${oldest ? ` (oldest ${formatAge(minutesBetween(evidence.now, oldest.created_at))})` : ''}, ${q.running.count} running, ${q.failed.count} failed in 24 h, ${q.done.count} done (${Math.round(r.ms)} ms)`,
    );
  },
};

/** Spark over one SSH connection: connect, then one batched probe of the worker's side. */
export const sparkStep: Step<GatherState> = {
  id: 'spark',
  title: 'Connect to Spark and probe the worker',
  skip: ({ config }) => (config.values.SPARK_HOST ? undefined : 'SPARK_HOST is not set; Spark checks skipped'),
  async run(state) {
    const { ports, config, evidence } = state;
    const sshConfigPath = path.join(ports.homeDir, '.ssh', 'config');
    const resolved = resolveSshTarget({
      // The runbook's own settings, plus what ssh itself reads from the session: the agent socket and the login
      // name (for %u / ${USER} in ~/.ssh/config). Those are not in the config schema, so they come from the process.
      env: {
        SSH_AUTH_SOCK: ports.env.SSH_AUTH_SOCK,
        USER: ports.env.USER,
        LOGNAME: ports.env.LOGNAME,
        ...config.values,
      },
      sshConfigText: ports.files.read(sshConfigPath),
      homeDir: ports.homeDir,
      envLabel: config.envFile ? path.basename(config.envFile) : 'the environment',
      fileExists: (p) => ports.files.read(p) !== undefined,
    });
    if (!resolved.ok) {
      evidence.spark = { ok: false, failure: resolved.failure };
      return check('spark-connect', 'Connect to Spark', 'failed', resolved.failure.message, {
        fix: resolved.failure.fix,
      });
    }
    const settings = resolved.settings;
    const target = settings.target;
    const where = `${target.user}@${target.host}:${target.port}`;
    const started = performance.now();
    const connected = await ports.connectSpark(
      settings,
      ports.prompt.interactive
        ? async ({ fingerprint }) => {
            ports.out.line(`Spark (${where}) is not in ${settings.knownHostsPath}; it presents ${fingerprint}.`);
            ports.out.line(`Compare with \`${hostKeyFingerprintCommand()}\` run on Spark itself.`);
            return ports.prompt.confirm('trust-host-key', `Trust ${fingerprint} for this run?`, false);
          }
        : undefined,
    );
    const connectMs = performance.now() - started;
    if (!connected.ok) {
      evidence.spark = { ok: false, target, failure: connected.failure };
      return check('spark-connect', 'Connect to Spark', 'failed', `${where}: ${connected.failure.message}`, {
        fix: connected.failure.fix,
      });
    }
    state.session = connected.session;
    const workerDir = config.values.SPARK_WORKER_DIR ?? '~/srv/hd-worker';
    const { evidence: probe } = await probeSpark(connected.session, ports.clock, {
      workerDir,
      logTailBytes: LOG_TAIL_BYTES,
      reachCheck: true,
      reachTimeoutSeconds: Math.max(2, Math.round(ports.timeoutMs / 1000)),
    });
    evidence.spark = { ok: true, target, fingerprint: connected.session.hostKeyFingerprint, probe, connectMs };
    const results: CheckResult[] = [
      check(
        'spark-connect',
        'Connect to Spark',
        'ok',
        `${where}, host key ${connected.session.hostKeyFingerprint} (${Math.round(connectMs)} ms)`,
      ),
    ];
    const unseen = (section: string) => probe.missingSections.includes(section);
    if (probe.missingSections.length) {
      const tools = probe.missingTools ?? [];
      results.push(
        check(
          'spark-probe',
          'Probe the worker',
          'failed',
          `${tools.length ? `${tools.join(', ')} not installed on Spark; ` : ''}the probe's output ${unseen('end') ? 'was cut short' : 'is incomplete'} (missing: ${probe.missingSections.join(', ')})`,
          {
            fix: tools.length
              ? `install ${tools.join(', ')} on Spark (ps, pgrep: procps; find: findutils; the others: coreutils)`
              : 'the connection dropped or a command is missing on Spark; run again, or with --verbose',
          },
        ),
      );
    }
    // What the probe did not deliver is unknown, not absent: say so instead of "missing" or "not running".
    const notReceived = (id: string, title: string) =>
      check(id, title, 'failed', 'unknown: the probe did not deliver it (see above)');
    if (unseen('dir')) {
      results.push(notReceived('worker-dir', 'Worker folder'));
      return results;
    }
    // The worker's own config: parsed in memory, its key registered for redaction before anything prints.
    if (!probe.workerDir.exists) {
      results.push(
        check('worker-dir', 'Worker folder', 'failed', `${workerDir} does not exist on Spark`, {
          fix: 'set SPARK_WORKER_DIR',
        }),
      );
      return results;
    }
    // The folder as Spark resolved it (symlinks, a trailing slash): every check below is about this one.
    results.push(
      check(
        'worker-dir',
        'Worker folder',
        'ok',
        probe.workerDir.given
          ? `${probe.workerDir.path} (SPARK_WORKER_DIR ${probe.workerDir.given}, resolved on Spark)`
          : probe.workerDir.path,
      ),
    );
    if (probe.env.status === 'ok') {
      const vars = probe.env.vars;
      // Every value that looks secret, not only the Supabase keys: the worker's .env may hold database URLs with
      // passwords or third-party tokens, and its log lines (shown here) may echo them.
      for (const [k, v] of Object.entries(vars)) if (looksSecret(k, v)) ports.out.addSecret(v);
      evidence.worker = sideFromVars(vars, `SUPABASE_URL in ${probe.workerDir.path}/.env`, 'SUPABASE_URL', [
        'SUPABASE_SERVICE_ROLE_KEY',
        'SUPABASE_SECRET_KEY',
      ]);
      const w = evidence.worker;
      results.push(
        check(
          'worker-env',
          "Read the worker's .env",
          w.url && w.key?.privileged ? 'ok' : 'warning',
          `${w.url?.origin ?? `SUPABASE_URL ${w.urlProblem ?? 'missing'}`}; key ${w.keyVar ?? '(none)'}: ${w.key ? describeKey(w.key, evidence.now) : 'missing'}`,
        ),
      );
    } else if (unseen('env')) {
      results.push(notReceived('worker-env', "Read the worker's .env"));
    } else {
      results.push(
        check('worker-env', "Read the worker's .env", 'failed', `${probe.workerDir.path}/.env is ${probe.env.status}`, {
          fix: `make ${probe.workerDir.path}/.env a file the worker's user can read, with SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY`,
        }),
      );
    }
    const reach = probe.reach;
    results.push(
      reach.status === 'ok'
        ? check(
            'spark-reach',
            'Reach Supabase from Spark',
            'ok',
            `HTTP ${reach.httpStatus} in ${Math.round(reach.seconds * 1000)} ms, with the worker's key`,
          )
        : reach.status === 'http-error'
          ? check(
              'spark-reach',
              'Reach Supabase from Spark',
              'warning',
              `HTTP ${reach.httpStatus} with the worker's key`,
            )
          : reach.status === 'failed'
            ? check('spark-reach', 'Reach Supabase from Spark', 'failed', reach.message)
            : (reach as { reason: string }).reason === 'no-curl'
              ? check(
                  'spark-reach',
                  'Reach Supabase from Spark',
                  'warning',
                  "curl is not installed on Spark: the worker's own request to Supabase was not tried",
                  { fix: 'install curl on Spark (sudo apt install curl) to include this check' },
                )
              : check('spark-reach', 'Reach Supabase from Spark', 'skipped', (reach as { reason: string }).reason),
    );
    results.push(
      unseen('process')
        ? notReceived('worker-process', 'Worker process')
        : probe.processes.length
          ? check(
              'worker-process',
              'Worker process',
              'ok',
              probe.processes
                .map(
                  (p) =>
                    `pid ${p.pid} up ${formatAge(p.elapsedSeconds / 60)} (${p.user ? `${p.user}: ` : ''}${clip(p.args, 80)})`,
                )
                .join('; '),
            )
          : check(
              'worker-process',
              'Worker process',
              'failed',
              `no process runs in ${probe.workerDir.path}${ignoredNote(probe)}`,
            ),
    );
    results.push(
      unseen('logstat')
        ? notReceived('worker-log', 'Worker log')
        : probe.log.status === 'ok'
          ? check(
              'worker-log',
              'Worker log',
              'ok',
              `written ${formatAge(minutesBetween(evidence.now, probe.log.modifiedAt))} ago, ${Math.round(probe.log.size / 1024)} KB${probe.log.tail.length ? `; last: ${clip(probe.log.tail[probe.log.tail.length - 1], 120)}` : ''}`,
            )
          : check('worker-log', 'Worker log', 'warning', 'logs/worker.log does not exist', {
              fix: "make the worker log to logs/worker.log in its folder (writable by the worker's user)",
            }),
    );
    if (probe.clockSkewMs !== undefined) {
      const s = Math.round(probe.clockSkewMs / 1000);
      results.push(
        check(
          'clock',
          'Clock skew',
          Math.abs(s) > 120 ? 'warning' : 'ok',
          `Spark is ${Math.abs(s)} s ${s >= 0 ? 'ahead' : 'behind'}`,
        ),
      );
    }
    if (probe.disk) {
      results.push(
        check(
          'disk',
          'Free disk on Spark',
          diskLow(probe.disk) ? 'warning' : 'ok',
          `${Math.round(probe.disk.availableKb / 1024)} MB free (${probe.disk.usedPercent}% used) on ${probe.disk.mount}`,
        ),
      );
    }
    return results;
  },
};

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
    const url = classifySupabaseUrl(found.url);
    const app: NonNullable<Evidence['app']> = {
      source: `${found.urlName} in ${source}`,
      urlVar: found.urlName,
      url: url.ok ? url : undefined,
      urlProblem: url.ok ? undefined : url.problem,
      keyVar: found.keyName,
      key: found.key ? inspectKey(found.key) : undefined,
    };
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
          ? { ok: true, queued: r.value.count, oldest: r.value.oldest }
          : { ok: false, message: r.failure.message };
      }
    }
    return check(
      'app',
      this.title,
      same ? 'ok' : 'warning',
      `${found.urlName}=${url.origin} (${url.kind}${url.localReason ? `: ${url.localReason}` : ''})${same ? ', same project as the runbook' : ''}${app.other?.ok ? `; it holds ${app.other.queued} queued job(s)` : app.other ? `; not reachable: ${app.other.message}` : ''}`,
    );
  },
};

/** Names the shells and tools found in the worker folder, which do not count as the worker. */
export function ignoredNote(probe: { ignoredProcesses?: Array<{ pid: number; comm: string }> }): string {
  const ignored = probe.ignoredProcesses ?? [];
  return ignored.length ? ` (not counted: ${ignored.map((p) => `${p.comm} pid ${p.pid}`).join(', ')})` : '';
}

/** Closes the run's SSH connection, if one was opened. */
export async function closeSession(state: GatherState): Promise<void> {
  await state.session?.close();
  state.session = undefined;
}
