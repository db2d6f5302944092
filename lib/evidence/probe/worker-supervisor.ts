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

// After the process section (it sets $pids). Per pid: its cgroup file, read once and line by line as grep reads it
// (cgroup_of sets u, the last *.service of its cgroup path, as `grep -o '[^/]*\.service' | tail -n 1` finds it: a
// user unit sits under user@UID.service/app.slice; k, the lines naming a user unit; d, a container's cgroup); then
// up to 12 ancestors' names from /proc/PID/stat (the frame's statfield and slurp).
const SCRIPT = [
  'section supervisor',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's own ${…} expansions, in a bash line
  'cgroup_of() { u=; k=0; d=; while IFS= read -r l || [ -n "$l" ]; do t=${l%.service*}; [ "$t" = "$l" ] || u=${t##*/}.service; [[ $l =~ user@[0-9]*\\.service ]] && k=$((k+1)); case "$l" in *docker*|*containerd*|*libpod*|*kubepods*) d=container;; esac; done 2>/dev/null < "$1"; }',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's own ${…} expansions, in a bash line
  'for p in ${pids//,/ }; do',
  '  cgroup_of "/proc/$p/cgroup"',
  '  c=""; q=$p; i=0',
  '  while [ "$i" -lt 12 ]; do statfield "$q" 2; q=$V; [ -n "$q" ] && [ "$q" -gt 0 ] || break; slurp "/proc/$q/comm"; c="$c,$V"; [ "$q" -eq 1 ] && break; i=$((i+1)); done',
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
  // Bash alone reads /proc here: no tool it could lack.
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
