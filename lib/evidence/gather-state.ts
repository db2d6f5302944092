/** What the evidence steps share: the ports, the config, the evidence they fill, and the run's connections. */
import type { SshSession } from '../core/ports.ts';
import type { LoadedConfig } from '../io/config.ts';
import type { Ports } from '../io/context.ts';
import type { JobsDb } from '../io/jobs-db.ts';
import type { Evidence } from './evidence.ts';

export interface GatherState {
  ports: Ports;
  config: LoadedConfig;
  evidence: Evidence;
  db: JobsDb;
  /** The one SSH connection of the run, once opened. */
  session?: SshSession;
  /**
   * Set as the plan starts when Spark will be probed; resolves once the probe's command has gone out (or the Spark
   * step ended without it). Until then the SSH handshake, the longer path of a diagnosis, has the CPU first.
   */
  sparkSent?: { sent: Promise<void>; release: () => void };
}

/**
 * The most the queue read waits for the probe's command to go out. On a fast link the handshake's few round trips
 * are over well before; on a slow one, loading the HTTP client overlaps them anyway, and the read is not held longer.
 */
export const SPARK_HEAD_START_MS = 100;

/**
 * Waits until Spark's command is out, at most {@link SPARK_HEAD_START_MS}: loading supabase-js and Node's fetch takes
 * ~45 ms of CPU in one piece, which, before the command went out, would hold each of the handshake's round trips.
 */
export async function sparkHeadStart(state: Pick<GatherState, 'sparkSent'>): Promise<void> {
  if (!state.sparkSent) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([state.sparkSent.sent, new Promise<void>((r) => (timer = setTimeout(r, SPARK_HEAD_START_MS)))]);
  clearTimeout(timer);
}
