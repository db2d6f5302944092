/** The Spark step: resolve the target, open the run's one SSH connection, run the one probe, show its lines. */
import path from 'node:path';
import type { SshFailure, SshSession, SshTarget, UnknownHostDecider } from '../core/ports.ts';
import type { Ports } from '../io/context.ts';
import { looksSecret } from '../io/redact.ts';
import { hostKeyFingerprintCommand } from '../io/ssh/known-hosts.ts';
import { resolveSshTarget, type SparkSshSettings, type SshTargetResolution, sshTargetLabel } from '../io/ssh/target.ts';
import { type CheckResult, check, type Step } from '../io/steps.ts';
import type { GatherState } from './gather-state.ts';
import { workerSide } from './probe/worker-env.ts';
import { probeChecks, probeSpark, type SparkEvidence } from './spark-probe.ts';

/** Bytes of the worker log's end that a run reads, whatever the log's size. */
export const LOG_TAIL_BYTES = 64 * 1024;

const DEFAULT_WORKER_DIR = '~/srv/hd-worker';

/** Spark's SSH target from the run's config, ~/.ssh/config and the session (the one place it is resolved). */
export function resolveTarget({ ports, config }: Pick<GatherState, 'ports' | 'config'>): SshTargetResolution {
  return resolveSshTarget({
    // The runbook's own settings, plus what ssh itself reads from the session: the agent socket and the login
    // name (for %u / ${USER} in ~/.ssh/config). Those are not in the config schema, so they come from the process.
    env: {
      SSH_AUTH_SOCK: ports.env.SSH_AUTH_SOCK,
      USER: ports.env.USER,
      LOGNAME: ports.env.LOGNAME,
      ...config.values,
    },
    sshConfigText: ports.files.read(path.join(ports.homeDir, '.ssh', 'config')),
    homeDir: ports.homeDir,
    envLabel: config.envFile ? path.basename(config.envFile) : 'the environment',
    fileExists: (p) => ports.files.read(p) !== undefined,
  });
}

/** A step's `prepare`: TCP to Spark opened as the plan starts (the connect in `run` takes it over). */
export function preconnectSpark(state: Pick<GatherState, 'ports' | 'config'>): void {
  const resolved = resolveTarget(state);
  if (resolved.ok) state.ports.preconnectSpark(resolved.settings.target);
}

/** On a terminal, an unknown host key is shown with how to check it, and the operator decides. */
function askAboutUnknownHost(ports: Ports, settings: SparkSshSettings): UnknownHostDecider | undefined {
  if (!ports.prompt.interactive) return undefined;
  return async ({ fingerprint }) => {
    const where = sshTargetLabel(settings.target);
    ports.out.line(`Spark (${where}) is not in ${settings.knownHostsPath}; it presents ${fingerprint}.`);
    ports.out.line(`Compare with \`${hostKeyFingerprintCommand()}\` run on Spark itself.`);
    return ports.prompt.confirm('trust-host-key', `Trust ${fingerprint} for this run?`, false);
  };
}

function connectFailed(failure: SshFailure, message: string, title = 'Connect to Spark'): CheckResult {
  return check('spark-connect', title, 'failed', message, { fix: failure.fix });
}

/**
 * The run's one SSH connection: target resolved, an unknown host key asked about on a terminal (refused otherwise),
 * the session kept in `state.session`. On failure, `evidence.spark` says why and the check line to show is returned.
 */
export async function openSpark(
  state: GatherState,
  title = 'Connect to Spark',
): Promise<
  { ok: true; session: SshSession; target: SshTarget; connectMs: number } | { ok: false; result: CheckResult }
> {
  const { ports, evidence } = state;
  const resolved = resolveTarget(state);
  if (!resolved.ok) {
    evidence.spark = { ok: false, failure: resolved.failure };
    return { ok: false, result: connectFailed(resolved.failure, resolved.failure.message, title) };
  }
  const { settings } = resolved;
  const { target } = settings;
  const started = performance.now();
  const connected = await ports.connectSpark(settings, askAboutUnknownHost(ports, settings));
  const connectMs = performance.now() - started;
  if (!connected.ok) {
    evidence.spark = { ok: false, target, failure: connected.failure };
    const message = `${sshTargetLabel(target)}: ${connected.failure.message}`;
    return { ok: false, result: connectFailed(connected.failure, message, title) };
  }
  state.session = connected.session;
  return { ok: true, session: connected.session, target, connectMs };
}

/** The worker's .env: every value that looks secret is registered for redaction before anything prints. */
function recordWorkerEnv({ ports, evidence }: GatherState, probe: SparkEvidence): void {
  if (probe.env.status !== 'ok') return;
  // Not only the Supabase keys: the worker's .env may hold database URLs with passwords or third-party tokens, and
  // its log lines (shown here) may echo them.
  for (const [k, v] of Object.entries(probe.env.vars)) if (looksSecret(k, v)) ports.out.addSecret(v);
  evidence.worker = workerSide(probe.env.vars, probe.workerDir.path);
}

async function probeWorker(state: GatherState, session: SshSession, onSent?: () => void): Promise<SparkEvidence> {
  const { ports, config } = state;
  const { evidence: probe } = await probeSpark(
    session,
    ports.clock,
    {
      workerDir: config.values.SPARK_WORKER_DIR ?? DEFAULT_WORKER_DIR,
      logTailBytes: LOG_TAIL_BYTES,
      reachCheck: true,
      reachTimeoutSeconds: Math.max(2, Math.round(ports.timeoutMs / 1000)),
    },
    onSent,
  );
  recordWorkerEnv(state, probe);
  return probe;
}

/** Spark over one SSH connection: connect, then one batched probe of the worker's side. */
export const sparkStep: Step<GatherState> = {
  id: 'spark',
  title: 'Connect to Spark and probe the worker',
  skip: ({ config }) => (config.values.SPARK_HOST ? undefined : 'SPARK_HOST is not set; Spark checks skipped'),
  prepare(state) {
    preconnectSpark(state);
    let release = () => {};
    const sent = new Promise<void>((resolve) => {
      release = resolve;
    });
    state.sparkSent = { sent, release };
  },
  async run(state) {
    const release = state.sparkSent?.release ?? (() => {});
    try {
      return await probeStep(state, release);
    } finally {
      release();
    }
  },
};

/** Connect, then one probe; `sent` is told once the probe's command is out. */
async function probeStep(state: GatherState, sent: () => void): Promise<CheckResult[] | CheckResult> {
  const { evidence } = state;
  const opened = await openSpark(state);
  if (!opened.ok) return opened.result;
  const { session, target, connectMs } = opened;
  const where = sshTargetLabel(target);
  const fingerprint = session.hostKeyFingerprint;
  const probe = await probeWorker(state, session, sent);
  evidence.spark = { ok: true, target, fingerprint, probe, connectMs };
  return [
    check('spark-connect', 'Connect to Spark', 'ok', `${where}, host key ${fingerprint} (${Math.round(connectMs)} ms)`),
    ...probeChecks(probe, evidence.now),
  ];
}
