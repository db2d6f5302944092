/**
 * The worker: processes of the folder's owner (the worker's user) working in the folder, or running a file in it.
 * Never another user's process, and never merely one that names the folder (`sleep 1 /srv/hd-worker` by anyone);
 * people's shells and tools in the folder are set apart when parsed.
 */
import { clip } from '../../core/text.ts';
import { check } from '../../io/steps.ts';
import { formatAge } from '../evidence.ts';
import { sparkNowOf } from './clock.ts';
import { dateOfNanoseconds, defineSection, notReceived, type ParseContext, type ProbeOutput } from './section.ts';
import type { SparkEvidence, WorkerProcessInfo } from './spark-evidence.ts';

const TITLE = 'Worker process';

/** Process names that sit in the worker's folder when a person is there: never the worker itself. */
const NOT_THE_WORKER = new Set(
  [
    'bash sh dash zsh fish ksh tcsh csh sshd tmux screen sudo su tail less more most vi vim nvim nano emacs',
    'watch top htop cat grep find ps pgrep sed sleep mc git',
  ]
    .join(' ')
    .split(' ')
    .concat('tmux: server'),
);

const SCRIPT = [
  'section process',
  // The folder's owner: most often the probe's own user ([ -O ] asks no process), else as stat tells it (a symlink's
  // own owner, as stat reads it: not [ -O ], which follows it).
  'if [ -O "$W" ] && [ ! -L "$W" ]; then WU=$EUID; else WU=$(stat -c %u -- "$W" 2>/dev/null) || WU=$EUID; fi',
  // A command line counts only when one of its arguments is a file that exists in the folder (the script it runs):
  // `python3 -m http.server --directory $W/logs` or a made-up path is not the worker.
  'runs_file() { while IFS= read -r -d "" a; do case "$a" in "$W"/*) [ -f "$a" ] && return 0;; esac; done < "/proc/$1/cmdline"; return 1; }',
  // The candidates are the indices of P: an array's indices come out in order and once each. Never the probe itself:
  // its shell, nor any process of its process group (the reach check runs in the background meanwhile, and its awk
  // names "$W/.env"; the worker never shares the probe's group, which the SSH session starts).
  'statfield $$ 3; PG=$V',
  'P=(); addpid() { case "$1" in ""|*[!0-9]*|"$$") ;; *) statfield "$1" 3; [ -n "$PG" ] && [ "$V" = "$PG" ] || P[$1]=1;; esac; }',
  'for p in $(pgrep -u "$WU" -f -- "$W/" 2>/dev/null); do runs_file "$p" 2>/dev/null && addpid "$p"; done',
  // The processes working in the folder or below: each /proc/PID/cwd named to find (a walk of /proc reads every
  // entry of every process's folder: about three times as long, measured).
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's own ${…} expansions, in a bash line
  'while IFS= read -r c; do c=${c#/proc/}; addpid "${c%%/*}"; done < <(find /proc/[0-9]*/cwd -maxdepth 0 -user "$WU" \\( -lname "$W" -o -lname "$W/*" \\) 2>/dev/null)',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's own ${…} expansions, in a bash line
  'pids=; for p in ${P[@]+"${!P[@]}"}; do pids=${pids:+$pids,}$p; done',
  '[ -n "$pids" ] && ps -o pid=,ppid=,etimes=,user:32=,args= -p "$pids" 2>/dev/null',
  // etimes has whole seconds; the fix gate compares a start with a failure time, so read the start precisely:
  // /proc/PID/stat's starttime (clock ticks after boot) against /proc/uptime, and the clock read right after it.
  'section procstart',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's own ${…} expansions, in a bash line
  'if [ -n "$pids" ] && [ -r /proc/uptime ]; then getconf CLK_TCK; read -r up _ < /proc/uptime; printf "%s\\n" "$up"; now_ns; for p in ${pids//,/ }; do statfield "$p" 20; s=$V; slurp "/proc/$p/comm"; printf "%s %s %s\\n" "$p" "$s" "$V"; done; fi',
];

/** procstart: the seconds each process has run (from /proc, to the fraction), its name, and when that was read. */
function parseStarts(text: string) {
  const [ticksLine, uptimeLine, uptimeAtLine, ...startLines] = text.split('\n');
  const ticks = Number(ticksLine);
  const uptime = Number(uptimeLine);
  const preciseElapsed = new Map<number, number>();
  const commOf = new Map<number, string>();
  for (const l of startLines) {
    const m = /^(\d+) (\d*) ?(.*)$/.exec(l.trim());
    if (!m) continue;
    if (m[3]) commOf.set(Number(m[1]), m[3]);
    if (ticks > 0 && uptime > 0 && m[2]) preciseElapsed.set(Number(m[1]), uptime - Number(m[2]) / ticks);
  }
  // Start times are uptime-relative: anchor them to the clock read right with the uptime, not to the probe's start
  // (the two are apart by however long the probe took so far, which would move a start before a failure).
  return { preciseElapsed, commOf, uptimeAt: dateOfNanoseconds(uptimeAtLine) };
}

function parseProcesses(out: ProbeOutput, ctx: ParseContext): Pick<SparkEvidence, 'processes' | 'ignoredProcesses'> {
  const { preciseElapsed, commOf, uptimeAt } = parseStarts(out.text('procstart'));
  const sparkNow = sparkNowOf(out);
  const processes: WorkerProcessInfo[] = [];
  const ignoredProcesses: Array<{ pid: number; comm: string }> = [];
  for (const line of out.text('process').split('\n')) {
    // pid, ppid, elapsed seconds, user, command line
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    const args = m[5].trim();
    const comm = commOf.get(pid) ?? args.split(/\s+/)[0].split('/').pop() ?? '';
    // An operator's shell or `tail -f` in the worker folder is not the worker: counting it would hide worker-down
    // and move the fix gate's "worker started" to when someone logged in.
    if (NOT_THE_WORKER.has(comm)) {
      ignoredProcesses.push({ pid, comm });
      continue;
    }
    const precise = preciseElapsed.get(pid);
    const elapsedSeconds = precise ?? Number(m[3]);
    const base = (precise !== undefined ? uptimeAt : undefined) ?? sparkNow ?? ctx.laptopMidpoint;
    const startedAt = new Date(base.getTime() - elapsedSeconds * 1000);
    processes.push({ pid, ppid: Number(m[2]), user: m[4], elapsedSeconds, startedAt, args });
  }
  return { processes, ignoredProcesses };
}

/** Names the shells and tools found in the worker folder, which do not count as the worker. */
export function ignoredNote(probe: { ignoredProcesses?: Array<{ pid: number; comm: string }> }): string {
  const ignored = probe.ignoredProcesses ?? [];
  return ignored.length ? ` (not counted: ${ignored.map((p) => `${p.comm} pid ${p.pid}`).join(', ')})` : '';
}

export const workerProcessSection = defineSection({
  name: 'worker-process',
  // Processes are found by `find` or by `pgrep`; only without both is the list unknown.
  outputs: { process: ['ps', ['find', 'pgrep']], procstart: [] },
  script: () => SCRIPT,
  parse: parseProcesses,
  show: ({ probe, unseen }) => {
    if (unseen('process')) return [notReceived('worker-process', TITLE)];
    if (!probe.processes.length) {
      return [
        check('worker-process', TITLE, 'failed', `no process runs in ${probe.workerDir.path}${ignoredNote(probe)}`),
      ];
    }
    const shown = probe.processes.map(
      (p) => `pid ${p.pid} up ${formatAge(p.elapsedSeconds / 60)} (${p.user ? `${p.user}: ` : ''}${clip(p.args, 80)})`,
    );
    return [check('worker-process', TITLE, 'ok', shown.join('; '))];
  },
});
