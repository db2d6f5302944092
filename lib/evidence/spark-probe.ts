/**
 * Everything the runbooks need from Spark, gathered by ONE remote command: a bash script sent on stdin
 * (so no user value is ever part of a command line), printing sections behind a per-run random marker.
 * Building the script and parsing its output are pure; only `probeSpark` touches the SSH session.
 */
import { randomBytes } from 'node:crypto';
import type { Clock, SshSession } from '../core/ports.ts';
import { parseEnvText } from '../io/env-file.ts';
import { shellQuote } from '../io/shell-quote.ts';

/** `~/x` stays relative to the remote $HOME; anything else is quoted literally. */
export function remotePathExpr(p: string): string {
  if (p === '~') return '"$HOME"';
  if (p.startsWith('~/')) return `"$HOME"/${shellQuote(p.slice(2))}`;
  return shellQuote(p);
}

export interface ProbeOptions {
  workerDir: string;
  /** Bytes of the log's end to read, whatever the log's size. */
  logTailBytes: number;
  /** Ask Spark to make the worker's own request to its SUPABASE_URL. */
  reachCheck: boolean;
  reachTimeoutSeconds: number;
  marker?: string;
}

const ENV_MAX_BYTES = 65_536;

/** The tools the probe runs on Spark, and the sections each one's absence leaves unknown. */
const TOOL_SECTIONS: Record<string, readonly string[]> = {
  ps: ['process'],
  base64: ['env'],
  head: ['env'],
  stat: ['logstat'],
  tail: ['logtail'],
  df: ['disk'],
};
const PROBE_TOOLS = [...Object.keys(TOOL_SECTIONS), 'find', 'pgrep'];

export function buildProbeScript(o: ProbeOptions & { marker: string }): string {
  const L = '"$W/logs/worker.log"';
  return [
    'set -u',
    'export LC_ALL=C',
    `W=${remotePathExpr(o.workerDir)}`,
    // The folder as it really is: through a symlink (a release layout, a home that is a link), without a trailing
    // slash. Every check below uses this one path, and the evidence shows it.
    'W0="$W"; W=$(cd -- "$W0" 2>/dev/null && pwd -P) || W="$W0"',
    `M=${shellQuote(o.marker)}`,
    `section() { printf '\\n%s %s\\n' "$M" "$1"; }`,
    ...(o.reachCheck
      ? [
          // Values are read without sourcing the file (it is data, not a script) and stay in shell variables:
          // the key reaches curl through its config on stdin, never through argv.
          // Read as dotenv (the laptop's parser) reads it: `export`, quotes, a comment after an unquoted value, CRLF;
          // the last assignment wins. The laptop shows these same values.
          String.raw`envval() { [ -f "$W/.env" ] || return 0; awk -v k="$1" '{ sub(/\r$/, ""); l = $0; sub(/^[ \t]*/, "", l); sub(/^export[ \t]+/, "", l); if (substr(l, 1, length(k)) != k) next; r = substr(l, length(k) + 1); if (r !~ /^[ \t]*=/) next; sub(/^[ \t]*=[ \t]*/, "", r); q = substr(r, 1, 1); e = index(substr(r, 2), q); if ((q == "\"" || q == "\047" || q == "\140") && e) v = substr(r, 2, e - 1); else { sub(/#.*/, "", r); sub(/[ \t]+$/, "", r); v = r } } END { printf "%s", v }' "$W/.env" 2>/dev/null; }`,
          // curl's config syntax: a quoted string, with \ and " escaped.
          String.raw`cfgq() { printf '%s' "$1" | sed 's/[\\"]/\\&/g'; }`,
          'reach() {',
          '  U=$(envval SUPABASE_URL | sed "s:/*$::"); K=$(envval SUPABASE_SERVICE_ROLE_KEY); [ -n "$K" ] || K=$(envval SUPABASE_SECRET_KEY)',
          '  if [ -z "$U" ]; then echo "skipped no-url";',
          '  elif ! command -v curl >/dev/null 2>&1; then echo "skipped no-curl";',
          '  else',
          '    case "$K" in eyJ*) H=1;; *) H=0;; esac',
          // The URL and the key reach curl through its config on stdin, never argv (a value starting with - would be
          // an option there, and argv is visible to every user of the host).
          `    { printf 'url = "%s/rest/v1/hd_ingestion_jobs?select=id&limit=1"\\n' "$(cfgq "$U")"; printf 'header = "apikey: %s"\\n' "$(cfgq "$K")"; [ "$H" = 1 ] && printf 'header = "Authorization: Bearer %s"\\n' "$(cfgq "$K")"; } | curl -sS -o /dev/null -K - --max-time ${o.reachTimeoutSeconds} -w 'http %{http_code} %{time_total}\\n' 2>&1 | tail -n 2`,
          '  fi',
          '}',
          // The request from Spark is the slowest part; it runs while the rest of the probe reads local files.
          'R=$(mktemp 2>/dev/null || echo "/tmp/hd-probe-$$"); reach >"$R" 2>&1 & RP=$!',
        ]
      : []),
    'section now; date -u +%s%N',
    // A minimal host may lack a tool; without this, its absence would read as "no worker" or "no .env".
    `section tools; for c in ${PROBE_TOOLS.join(' ')}; do command -v "$c" >/dev/null 2>&1 || echo "$c"; done`,
    // The real folder, then the folder as given (after ~), when they differ.
    'section dir; if [ -d "$W" ]; then printf "%s\\n" "$W"; [ "$W" = "$W0" ] || printf "%s\\n" "$W0"; else echo "-"; fi',
    // A regular file only: a folder or a FIFO named .env is as unusable as one without read permission (and a FIFO
    // would block the probe).
    `section env; if [ -f "$W/.env" ] && [ -r "$W/.env" ]; then head -c ${ENV_MAX_BYTES} "$W/.env" | base64 | tr -d '\\n'; echo; elif [ -e "$W/.env" ]; then echo unreadable; else echo missing; fi`,
    // The worker: processes of the folder's owner (the worker's user) working in the folder, or running a file in
    // it. Never another user's process, and never merely one that names the folder (`sleep 1 /srv/hd-worker` by
    // anyone); people's shells and tools in the folder are set apart when parsed.
    'section process',
    'WU=$(stat -c %u -- "$W" 2>/dev/null || id -u)',
    // A command line counts only when one of its arguments is a file that exists in the folder (the script it runs):
    // `python3 -m http.server --directory $W/logs` or a made-up path is not the worker.
    'runs_file() { while IFS= read -r -d "" a; do case "$a" in "$W"/*) [ -f "$a" ] && return 0;; esac; done < "/proc/$1/cmdline"; return 1; }',
    'named=$(for p in $(pgrep -u "$WU" -f -- "$W/" 2>/dev/null); do runs_file "$p" 2>/dev/null && echo "$p"; done)',
    'pids=$( { find /proc -mindepth 2 -maxdepth 2 -name cwd -user "$WU" \\( -lname "$W" -o -lname "$W/*" \\) 2>/dev/null | cut -d/ -f3; printf "%s\\n" "$named"; } | grep -vx "$$" | grep . | sort -un | paste -sd, -)',
    '[ -n "$pids" ] && ps -o pid=,ppid=,etimes=,user:32=,args= -p "$pids" 2>/dev/null',
    // etimes has whole seconds; the fix gate compares a start with a failure time, so read the start precisely:
    // /proc/PID/stat's starttime (clock ticks after boot) against /proc/uptime.
    'section procstart',
    'if [ -n "$pids" ] && [ -r /proc/uptime ]; then getconf CLK_TCK; cut -d" " -f1 /proc/uptime; date -u +%s%N; for p in $(printf "%s" "$pids" | tr , " "); do printf "%s %s %s\\n" "$p" "$(sed "s/^.*) //" /proc/$p/stat 2>/dev/null | cut -d" " -f20)" "$(cat /proc/$p/comm 2>/dev/null)"; done; fi',
    'section logstat',
    `if [ -f ${L} ]; then stat -c '%s %Y' ${L}; else echo missing; fi`,
    'section logtail',
    `[ -r ${L} ] && tail -c ${o.logTailBytes} ${L}`,
    'section disk; df -Pk "$W" 2>/dev/null | tail -n 1',
    'section reach',
    o.reachCheck ? 'wait "$RP" 2>/dev/null; cat "$R" 2>/dev/null; rm -f "$R"' : 'echo "skipped not-asked"',
    'section end',
    '',
  ].join('\n');
}

export interface WorkerProcessInfo {
  pid: number;
  /** The parent: a worker's own children (multiprocessing, a reloader) share its folder. */
  ppid?: number;
  /** The process's user on Spark. */
  user?: string;
  elapsedSeconds: number;
  startedAt: Date;
  args: string;
}

/**
 * The worker candidates that are not children of another candidate: one is the worker; two or more are different
 * programs in the folder, and which of them is the worker cannot be told (shown as ambiguous, never guessed).
 */
export function topLevelProcesses(processes: readonly WorkerProcessInfo[]): WorkerProcessInfo[] {
  const pids = new Set(processes.map((p) => p.pid));
  return processes.filter((p) => p.ppid === undefined || !pids.has(p.ppid));
}

export interface SparkEvidence {
  sparkNow?: Date;
  /** Spark's clock minus the laptop's, in ms (positive: Spark is ahead). */
  clockSkewMs?: number;
  /** The worker folder as Spark resolved it (symlinks, a trailing slash); `given` when that differs. */
  workerDir: { path: string; exists: boolean; given?: string };
  env:
    | { status: 'ok'; vars: Record<string, string> }
    | { status: 'missing' | 'unreadable' | 'malformed'; vars?: undefined };
  processes: WorkerProcessInfo[];
  log:
    | { status: 'ok'; size: number; modifiedAt: Date; tail: string[]; truncated: boolean }
    | { status: 'missing'; tail: string[] };
  disk?: { availableKb: number; usedPercent: number; mount: string };
  reach:
    | { status: 'ok' | 'http-error'; httpStatus: number; seconds: number }
    | { status: 'failed'; message: string }
    | { status: 'skipped'; reason: string };
  /** Processes in the worker folder that are people's tools (shells, pagers, editors), not the worker. */
  ignoredProcesses?: Array<{ pid: number; comm: string }>;
  /** Sections the script did not deliver (a dropped connection, a missing command). */
  missingSections: string[];
  /** Tools the probe needs that Spark does not have (their sections are in `missingSections`). */
  missingTools?: string[];
}

/** Process names that sit in the worker's folder when a person is there: never the worker itself. */
const NOT_THE_WORKER = new Set([
  'bash',
  'sh',
  'dash',
  'zsh',
  'fish',
  'ksh',
  'tcsh',
  'csh',
  'sshd',
  'tmux',
  'tmux: server',
  'screen',
  'sudo',
  'su',
  'tail',
  'less',
  'more',
  'most',
  'vi',
  'vim',
  'nvim',
  'nano',
  'emacs',
  'watch',
  'top',
  'htop',
  'cat',
  'grep',
  'find',
  'ps',
  'pgrep',
  'sed',
  'sleep',
  'mc',
  'git',
]);

const SECTIONS = ['now', 'dir', 'env', 'process', 'procstart', 'logstat', 'logtail', 'disk', 'reach', 'end'] as const;

function splitSections(stdout: string, marker: string): Map<string, string> {
  const out = new Map<string, string>();
  const parts = stdout.split(`\n${marker} `);
  for (const part of parts.slice(1)) {
    const nl = part.indexOf('\n');
    const name = nl === -1 ? part : part.slice(0, nl);
    out.set(name.trim(), nl === -1 ? '' : part.slice(nl + 1));
  }
  return out;
}

/** Turns the probe's output into evidence. `laptopMidpoint` is when (laptop time) the command ran. */
export function parseProbeOutput(
  stdout: string,
  marker: string,
  opts: { workerDir: string; laptopMidpoint: Date; logTailBytes: number },
): SparkEvidence {
  const s = splitSections(stdout, marker);
  const text = (name: string) => (s.get(name) ?? '').replace(/\n$/, '');

  const nowNs = text('now').trim();
  const sparkNow = /^\d{10,}$/.test(nowNs) ? new Date(Number(BigInt(nowNs) / 1_000_000n)) : undefined;

  const [dir = '', given] = text('dir').trim().split('\n');
  const workerDir: SparkEvidence['workerDir'] = {
    path: dir && dir !== '-' ? dir : opts.workerDir,
    exists: dir !== '' && dir !== '-',
    ...(given && given !== dir ? { given } : {}),
  };

  let env: SparkEvidence['env'];
  const envRaw = text('env').trim();
  if (envRaw === 'missing' || envRaw === '') env = { status: 'missing' };
  else if (envRaw === 'unreadable') env = { status: 'unreadable' };
  else {
    try {
      env = { status: 'ok', vars: parseEnvText(Buffer.from(envRaw, 'base64').toString('utf8')) };
    } catch {
      env = { status: 'malformed' };
    }
  }

  const [ticksLine, uptimeLine, uptimeAtLine, ...startLines] = text('procstart').split('\n');
  const ticks = Number(ticksLine);
  const uptime = Number(uptimeLine);
  // Start times are uptime-relative: anchor them to the clock read right with the uptime, not to the probe's start
  // (the two are apart by however long the probe took so far, which would move a start before a failure).
  const uptimeAt = /^\d{10,}$/.test(uptimeAtLine?.trim() ?? '')
    ? new Date(Number(BigInt(uptimeAtLine.trim()) / 1_000_000n))
    : undefined;
  const preciseElapsed = new Map<number, number>();
  const commOf = new Map<number, string>();
  for (const l of startLines) {
    const m = /^(\d+) (\d*) ?(.*)$/.exec(l.trim());
    if (!m) continue;
    if (m[3]) commOf.set(Number(m[1]), m[3]);
    if (ticks > 0 && uptime > 0 && m[2]) preciseElapsed.set(Number(m[1]), uptime - Number(m[2]) / ticks);
  }
  const processes: WorkerProcessInfo[] = [];
  const ignoredProcesses: Array<{ pid: number; comm: string }> = [];
  for (const line of text('process').split('\n')) {
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
    const base = (precise !== undefined ? uptimeAt : undefined) ?? sparkNow ?? opts.laptopMidpoint;
    processes.push({
      pid,
      ppid: Number(m[2]),
      user: m[4],
      elapsedSeconds,
      startedAt: new Date(base.getTime() - elapsedSeconds * 1000),
      args,
    });
  }

  let log: SparkEvidence['log'];
  const stat = /^(\d+) (\d+)$/.exec(text('logstat').trim());
  if (stat) {
    const size = Number(stat[1]);
    const truncated = size > opts.logTailBytes;
    const lines = text('logtail').split('\n');
    // A tail cut by bytes starts mid-line; that first fragment is dropped rather than shown half.
    if (truncated && lines.length > 1) lines.shift();
    log = {
      status: 'ok',
      size,
      modifiedAt: new Date(Number(stat[2]) * 1000),
      tail: lines.filter((l) => l !== ''),
      truncated,
    };
  } else log = { status: 'missing', tail: [] };

  let disk: SparkEvidence['disk'];
  const d = /^\S+\s+\d+\s+\d+\s+(\d+)\s+(\d+)%\s+(.+)$/.exec(text('disk').trim());
  if (d) disk = { availableKb: Number(d[1]), usedPercent: Number(d[2]), mount: d[3] };

  let reach: SparkEvidence['reach'];
  const r = text('reach').trim();
  const http = /^http (\d{3}) ([\d.]+)$/m.exec(r);
  if (http) {
    const code = Number(http[1]);
    const curlError = /^curl: \(\d+\)\s*(.*)$/m.exec(r)?.[1];
    if (code === 0) reach = { status: 'failed', message: curlError || 'no HTTP answer' };
    else
      reach = { status: code >= 200 && code < 300 ? 'ok' : 'http-error', httpStatus: code, seconds: Number(http[2]) };
  } else if (r.startsWith('skipped ')) reach = { status: 'skipped', reason: r.slice(8) };
  else if (!s.has('reach')) reach = { status: 'skipped', reason: 'not reached' };
  else reach = { status: 'failed', message: r.split('\n')[0]?.replace(/^curl: \(\d+\)\s*/, '') || 'no answer' };

  const missingTools = text('tools')
    .split('\n')
    .filter((t) => PROBE_TOOLS.includes(t));
  const unknown = new Set(missingTools.flatMap((t) => TOOL_SECTIONS[t] ?? []));
  // Processes are found by `find` or by `pgrep`; only without both is the list unknown.
  if (missingTools.includes('find') && missingTools.includes('pgrep')) unknown.add('process');

  return {
    sparkNow,
    clockSkewMs: sparkNow ? sparkNow.getTime() - opts.laptopMidpoint.getTime() : undefined,
    workerDir,
    env,
    processes,
    ignoredProcesses,
    log,
    disk,
    reach,
    missingSections: SECTIONS.filter((n) => !s.has(n) || unknown.has(n)),
    ...(missingTools.length ? { missingTools } : {}),
  };
}

/** Runs the probe over an open session: one exec channel. */
export async function probeSpark(
  session: SshSession,
  clock: Clock,
  options: ProbeOptions,
): Promise<{ evidence: SparkEvidence; exitCode: number | null; stderr: string }> {
  const marker = options.marker ?? `@@hd-probe-${randomBytes(8).toString('hex')}@@`;
  const script = buildProbeScript({ ...options, marker });
  const before = clock.now().getTime();
  const result = await session.exec('bash -s', {
    stdin: script,
    timeoutMs: (options.reachTimeoutSeconds + 15) * 1000,
    maxBytes: options.logTailBytes + ENV_MAX_BYTES * 2 + 65_536,
  });
  const after = clock.now().getTime();
  let stdout = result.stdout;
  if (result.code === null && !stdout.includes(`\n${marker} end`)) {
    // A dropped connection or a timeout cuts the output anywhere: the last section may be half of itself.
    const last = stdout.lastIndexOf(`\n${marker} `);
    if (last !== -1) stdout = stdout.slice(0, last);
  }
  const evidence = parseProbeOutput(stdout, marker, {
    workerDir: options.workerDir,
    laptopMidpoint: new Date((before + after) / 2),
    logTailBytes: options.logTailBytes,
  });
  return { evidence, exitCode: result.code, stderr: result.stderr };
}
