/**
 * How to restart the worker the way it runs, judged from the probe's facts (its systemd unit, a container, its
 * ancestors). Shown in "Next steps", never run. WORKER_RESTART_CMD, when set, wins over what is judged here.
 */
import { type SparkEvidence, topLevelProcesses } from '../evidence/probe/spark-evidence.ts';
import type { WorkerSupervisor } from '../evidence/probe/worker-supervisor.ts';
import { shellQuote } from '../io/shell-quote.ts';

export interface RestartHint {
  /** How it runs, for the operator: "systemd unit hd-worker.service", "a tmux session", … */
  how: string;
  /** A command to run on Spark, when one can be named with confidence. */
  command?: string;
  /** What to do instead, when no single command is right. */
  advice?: string;
}

function hintFor(s: WorkerSupervisor, args: string, dir: string): RestartHint {
  if (s.container) {
    return {
      how: 'a container',
      advice: 'restart its container the way it was deployed (e.g. docker compose restart)',
    };
  }
  if (s.unit) {
    const how = `systemd ${s.userUnit ? 'user ' : ''}unit ${s.unit}`;
    return { how, command: s.userUnit ? `systemctl --user restart ${s.unit}` : `sudo systemctl restart ${s.unit}` };
  }
  if (s.ancestors.some((a) => a === 'tmux: server' || a === 'tmux')) {
    return { how: 'a tmux session', advice: 'attach (tmux attach), stop it with Ctrl-C and start it again there' };
  }
  if (s.ancestors.some((a) => /^screen$/i.test(a))) {
    return { how: 'a screen session', advice: 'attach (screen -r), stop it with Ctrl-C and start it again there' };
  }
  if (s.ancestors.length === 1 && /^(systemd|init)$/.test(s.ancestors[0])) {
    return {
      how: 'started by hand and left running (nohup or &)',
      advice: `stop it (kill ${s.pid}) and start it again as before, in ${dir}: ${args}`,
    };
  }
  return { how: `started by ${s.ancestors[0] ?? 'an unknown parent'}` };
}

/** The hint for the worker's top-level process; undefined when there is none or more than one (ambiguous). */
export function restartHint(probe: SparkEvidence | undefined): RestartHint | undefined {
  const top = probe ? topLevelProcesses(probe.processes) : [];
  if (top.length !== 1) return undefined;
  const s = probe?.supervisors?.find((x) => x.pid === top[0].pid);
  return s ? hintFor(s, top[0].args, probe!.workerDir.path) : undefined;
}

/** A command for the laptop that runs `command` on Spark. */
export function onSpark(target: { user: string; host: string; port: number }, command: string): string {
  return `ssh -p ${target.port} ${target.user}@${target.host} ${shellQuote(command)}`;
}
