/**
 * What keeps the worker running, read from Spark for each worker process: its systemd unit (from /proc/PID/cgroup),
 * whether it runs in a container, and the names of its ancestors (tmux, screen, a shell, init). Facts only: how to
 * restart it is judged from them (lib/findings/restart.ts).
 */
import { clip } from '../../core/text.ts';
import { check } from '../../io/steps.ts';
import { defineSection, type ProbeOutput } from './section.ts';
import type { SparkEvidence } from './spark-evidence.ts';

/** What keeps one worker process running, as /proc on Spark shows it. */
export interface WorkerSupervisor {
  pid: number;
  /** Its systemd unit (the last `*.service` of its cgroup path), when it runs under one. */
  unit?: string;
  /** Whether that unit is a user unit (under user@UID.service): `systemctl --user`. */
  userUnit: boolean;
  /** Whether its cgroup is a container's (docker, containerd, podman, kubernetes). */
  container: boolean;
  /** Its ancestors' process names, parent first, up to init. */
  ancestors: string[];
}

// The section's field of the evidence is declared here, beside the section that fills it (sections.ts checks at
// compile time that the table fills every field).
declare module './spark-evidence.ts' {
  interface SparkEvidence {
    /** What keeps each worker process running (undefined: not probed). */
    supervisors?: WorkerSupervisor[];
  }
}

const TITLE = 'Worker runs under';

// After the process section (it sets $pids). Per pid: the last *.service of its cgroup path (a user unit sits under
// user@UID.service/app.slice), a container's cgroup, and up to 12 ancestors' names from /proc/PID/stat.
const SCRIPT = [
  'section supervisor',
  'for p in $(printf "%s" "$pids" | tr , " "); do',
  '  u=$(grep -o "[^/]*\\.service" "/proc/$p/cgroup" 2>/dev/null | tail -n 1)',
  '  k=$(grep -c "user@[0-9]*\\.service" "/proc/$p/cgroup" 2>/dev/null)',
  '  d=$(grep -qE "docker|containerd|libpod|kubepods" "/proc/$p/cgroup" 2>/dev/null && echo container)',
  '  c=""; q=$p; i=0',
  '  while [ "$i" -lt 12 ]; do q=$(sed "s/^.*) //" "/proc/$q/stat" 2>/dev/null | cut -d" " -f2); [ -n "$q" ] && [ "$q" -gt 0 ] || break; c="$c,$(cat "/proc/$q/comm" 2>/dev/null)"; [ "$q" -eq 1 ] && break; i=$((i+1)); done',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's own ${…} expansions, in a bash line
  '  printf "%s\\t%s\\t%s\\t%s\\t%s\\n" "$p" "${u:--}" "${k:-0}" "${d:--}" "${c#,}"',
  'done',
];

function parseSupervisors(out: ProbeOutput): Pick<SparkEvidence, 'supervisors'> {
  const supervisors: WorkerSupervisor[] = [];
  for (const line of out.text('supervisor').split('\n')) {
    const [pid, unit, userUnit, container, ancestors] = line.split('\t');
    if (!/^\d+$/.test(pid ?? '') || ancestors === undefined) continue;
    supervisors.push({
      pid: Number(pid),
      unit: unit && unit !== '-' && !/^user@\d+\.service$/.test(unit) ? unit : undefined,
      userUnit: Number(userUnit) > 0,
      container: container === 'container',
      ancestors: ancestors ? ancestors.split(',').filter(Boolean) : [],
    });
  }
  return { supervisors };
}

/** One line a person recognises: "systemd unit hd-worker.service", "tmux", "a container", or the parent chain. */
export function describeSupervisor(s: WorkerSupervisor): string {
  if (s.container) return 'a container';
  if (s.unit) return `systemd ${s.userUnit ? 'user ' : ''}unit ${s.unit}`;
  const chain = s.ancestors.length ? s.ancestors.join(' ← ') : 'no parent seen';
  return `pid ${s.pid}, started by ${clip(chain, 100)}`;
}

export const workerSupervisorSection = defineSection({
  name: 'worker-supervisor',
  // grep and sed are everywhere; without them the line is '-' (nothing known), not a missing section.
  outputs: { supervisor: [] },
  script: () => SCRIPT,
  parse: parseSupervisors,
  show: ({ probe, unseen }) => {
    if (unseen('supervisor') || !probe.processes.length || !probe.supervisors?.length) return [];
    const top = new Set(
      probe.processes.filter((p) => !probe.processes.some((q) => q.pid === p.ppid)).map((p) => p.pid),
    );
    const shown = probe.supervisors.filter((s) => top.has(s.pid)).map(describeSupervisor);
    return shown.length ? [check('worker-supervisor', TITLE, 'ok', [...new Set(shown)].join('; '))] : [];
  },
});
