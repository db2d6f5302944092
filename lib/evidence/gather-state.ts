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
}
