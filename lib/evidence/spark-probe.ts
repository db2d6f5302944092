/**
 * Everything the runbooks need from Spark, gathered by ONE remote command: a bash script sent on stdin
 * (so no user value is ever part of a command line), printing sections behind a per-run random marker.
 * The sections are a table (probe/sections.ts); this is the frame that joins their scripts into one and splits the
 * answer back. Building the script and parsing its output are pure; only `probeSpark` touches the SSH session.
 */
import { randomBytes } from 'node:crypto';
import type { Clock, SshSession } from '../core/ports.ts';
import { shellQuote } from '../io/shell-quote.ts';
import { type CheckResult, check } from '../io/steps.ts';
import {
  type ParseContext,
  PROBE_HELPERS,
  type ProbeOptions,
  type ProbeOutput,
  type ProbeSection,
  type ScriptOptions,
  type ToolNeed,
} from './probe/section.ts';
import { type ParsedEvidence, PROBE_SECTIONS, type SectionsEvidence, scriptOrder } from './probe/sections.ts';
import type { SparkEvidence } from './probe/spark-evidence.ts';

export type { ProbeOptions } from './probe/section.ts';
export { type SparkEvidence, topLevelProcesses, type WorkerProcessInfo } from './probe/spark-evidence.ts';

/** Room for the sections that print a few lines, beyond what the large ones declare. */
const SMALL_OUTPUT_BYTES = 65_536;

/** `~/x` stays relative to the remote $HOME; anything else is quoted literally. */
export function remotePathExpr(p: string): string {
  if (p === '~') return '"$HOME"';
  if (p.startsWith('~/')) return `"$HOME"/${shellQuote(p.slice(2))}`;
  return shellQuote(p);
}

const isTool = (need: ToolNeed): need is string => typeof need === 'string';
const toolsOf = (s: ProbeSection) => Object.values(s.outputs).flat().flat();

/** Every tool the sections run, checked first so that a missing one reads as "unknown", not "no worker". */
function probeTools(sections: readonly ProbeSection[]): string[] {
  return [...new Set(sections.flatMap(toolsOf))];
}

/** The lines every remote script starts with (the probe's and the watch's): the folder, the marker, the helpers. */
export function probePrelude(o: Pick<ScriptOptions, 'workerDir' | 'marker'>): string[] {
  return [
    'set -u',
    'export LC_ALL=C',
    `W=${remotePathExpr(o.workerDir)}`,
    // The folder as it really is: through a symlink (a release layout, a home that is a link), without a trailing
    // slash. Every check below uses this one path, and the evidence shows it.
    'W0="$W"; W=$(cd -- "$W0" 2>/dev/null && pwd -P) || W="$W0"',
    `M=${shellQuote(o.marker)}`,
    `section() { printf '\\n%s %s\\n' "$M" "$1"; }`,
    ...PROBE_HELPERS,
  ];
}

export function buildProbeScript(o: ScriptOptions): string {
  const ordered = scriptOrder();
  const first = ordered.filter((s) => s.runs === 'first');
  const rest = ordered.filter((s) => s.runs !== 'first');
  return [
    ...probePrelude(o),
    ...PROBE_SECTIONS.flatMap((s) => s.setup?.(o) ?? []),
    ...first.flatMap((s) => s.script(o)),
    // A minimal host may lack a tool; without this, its absence would read as "no worker" or "no .env".
    `section tools; for c in ${probeTools(ordered).join(' ')}; do command -v "$c" >/dev/null 2>&1 || echo "$c"; done`,
    ...rest.flatMap((s) => s.script(o)),
    'section end',
    '',
  ].join('\n');
}

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

/** The output sections nobody can read: not delivered, or their tool is missing on Spark. */
function missingSections(output: ProbeOutput, missingTools: readonly string[]): string[] {
  const absent = (need: ToolNeed) => (isTool(need) ? [need] : need).every((t) => missingTools.includes(t));
  const outputs = scriptOrder().flatMap((s) => Object.entries(s.outputs));
  return [...outputs, ['end', []] as const]
    .filter(([name, needs]) => !output.has(name) || needs.some(absent))
    .map(([name]) => name);
}

/** Turns the probe's output into evidence. `laptopMidpoint` is when (laptop time) the command ran. */
export function parseProbeOutput(stdout: string, marker: string, ctx: ParseContext): SparkEvidence {
  const s = splitSections(stdout, marker);
  const output: ProbeOutput = { text: (name) => (s.get(name) ?? '').replace(/\n$/, ''), has: (name) => s.has(name) };
  const tools = probeTools(PROBE_SECTIONS);
  const missingTools = output
    .text('tools')
    .split('\n')
    .filter((t) => tools.includes(t));
  const parsed: SectionsEvidence = Object.assign(
    {},
    ...PROBE_SECTIONS.map((section) => section.parse(output, ctx)),
  ) as ParsedEvidence;
  return {
    ...parsed,
    missingSections: missingSections(output, missingTools),
    ...(missingTools.length ? { missingTools } : {}),
  };
}

/** The probe failed when a section did not arrive or cannot be read: which, and why if known. */
function incompleteCheck(probe: SparkEvidence): CheckResult[] {
  if (!probe.missingSections.length) return [];
  const tools = probe.missingTools ?? [];
  const cut = probe.missingSections.includes('end') ? 'was cut short' : 'is incomplete';
  return [
    check(
      'spark-probe',
      'Probe the worker',
      'failed',
      `${tools.length ? `${tools.join(', ')} not installed on Spark; ` : ''}the probe's output ${cut} (missing: ${probe.missingSections.join(', ')})`,
      {
        fix: tools.length
          ? `install ${tools.join(', ')} on Spark (ps, pgrep: procps; find: findutils; the others: coreutils)`
          : 'the connection dropped or a command is missing on Spark; run again, or with --verbose',
      },
    ),
  ];
}

/** The Spark step's lines for the probe: what it missed, then each section's, in table order. */
export function probeChecks(probe: SparkEvidence, now: Date): CheckResult[] {
  const view = { probe, now, unseen: (name: string) => probe.missingSections.includes(name) };
  const lines = incompleteCheck(probe);
  for (const section of PROBE_SECTIONS) {
    lines.push(...section.show(view));
    if (section.endsChecks?.(probe)) break;
  }
  return lines;
}

/** Runs the probe over an open session: one exec channel. */
export async function probeSpark(
  session: SshSession,
  clock: Clock,
  options: ProbeOptions,
  onSent?: () => void,
): Promise<{ evidence: SparkEvidence; exitCode: number | null; stderr: string }> {
  const marker = options.marker ?? `@@hd-probe-${randomBytes(8).toString('hex')}@@`;
  const o = { ...options, marker };
  const before = clock.now().getTime();
  const result = await session.exec('bash -s', {
    stdin: buildProbeScript(o),
    timeoutMs: (options.reachTimeoutSeconds + 15) * 1000,
    maxBytes: PROBE_SECTIONS.reduce((n, s) => n + (s.outputBytes?.(o) ?? 0), SMALL_OUTPUT_BYTES),
    onSent,
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
