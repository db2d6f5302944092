/**
 * The probe as a table of sections: each entry's script prints what it declares, the frame joins them into one
 * script, and the Spark step's lines come from the sections in table order.
 */
import { describe, expect, it } from 'vitest';
import { SKEW_WARN_MS } from '../../lib/core/thresholds.ts';
import { PROBE_SECTIONS, scriptOrder } from '../../lib/evidence/probe/sections.ts';
import type { SparkEvidence } from '../../lib/evidence/probe/spark-evidence.ts';
import { buildProbeScript, parseProbeOutput, probeChecks } from '../../lib/evidence/spark-probe.ts';

const OPTIONS = { workerDir: '~/srv/hd-worker', logTailBytes: 1000, reachCheck: true, reachTimeoutSeconds: 5 };
const MARKER = '@@hd-probe-test@@';
const NOW = new Date('2026-01-15T12:00:00Z');

const sectionsPrinted = (script: string) =>
  [...script.matchAll(/(?:^|; |\s)section ([a-z]+)/gm)].map((m) => m[1]).filter((n) => n !== 'NAME');

function probe(over: Partial<SparkEvidence> = {}): SparkEvidence {
  return {
    sparkNow: NOW,
    clockSkewMs: 2_000,
    workerDir: { path: '/home/sparkuser/srv/hd-worker', exists: true },
    env: { status: 'ok', vars: { SUPABASE_URL: 'https://abcdefghijklmnopqrst.supabase.co' } },
    processes: [{ pid: 42, ppid: 1, user: 'sparkuser', elapsedSeconds: 600, startedAt: NOW, args: 'node worker.mjs' }],
    log: {
      status: 'ok',
      size: 2048,
      modifiedAt: new Date(NOW.getTime() - 60_000),
      tail: ['INFO poll'],
      truncated: false,
    },
    disk: { availableKb: 50 * 1024 * 1024, usedPercent: 40, mount: '/' },
    reach: { status: 'ok', httpStatus: 200, seconds: 0.1 },
    ignoredProcesses: [],
    missingSections: [],
    ...over,
  };
}

const ids = (lines: { id: string }[]) => lines.map((l) => l.id);

describe('the table of sections', () => {
  it('has unique names and output sections', () => {
    const names = PROBE_SECTIONS.map((s) => s.name);
    const outputs = PROBE_SECTIONS.flatMap((s) => Object.keys(s.outputs));
    expect(new Set(names).size).toBe(names.length);
    expect(new Set(outputs).size).toBe(outputs.length);
  });

  it.each(PROBE_SECTIONS.map((s) => [s.name, s] as const))('%s prints exactly the sections it declares', (_, s) => {
    const script = s.script({ ...OPTIONS, marker: MARKER }).join('\n');
    expect(sectionsPrinted(script)).toEqual(Object.keys(s.outputs));
  });

  it('joins every section into one script, clock first and the background request collected last', () => {
    const script = buildProbeScript({ ...OPTIONS, marker: MARKER });
    expect(sectionsPrinted(script)).toEqual([
      'now',
      'tools',
      'dir',
      'env',
      'process',
      'procstart',
      'supervisor',
      'logstat',
      'logtail',
      'disk',
      'reach',
      'end',
    ]);
    // The request from Spark starts before the first section, so it runs while the others read local files.
    expect(script.indexOf('reach >"$R"')).toBeLessThan(script.indexOf('section now'));
    expect(scriptOrder().map((s) => s.name)).toEqual([
      'clock',
      'worker-dir',
      'worker-env',
      'worker-process',
      'worker-supervisor',
      'worker-log',
      'disk',
      'reach',
    ]);
  });

  it('checks for every tool a section names, once', () => {
    const script = buildProbeScript({ ...OPTIONS, marker: MARKER });
    const tools = /for c in ([^;]+); do command -v/.exec(script)?.[1].split(' ');
    expect(tools?.sort()).toEqual(['base64', 'df', 'find', 'head', 'pgrep', 'ps', 'stat', 'tail']);
  });

  it('leaves a section unknown when its tool is missing, and the process list only without both find and pgrep', () => {
    const out = (tools: string) => `\n${MARKER} now\n\n${MARKER} tools\n${tools}\n${MARKER} end\n`;
    const parse = (tools: string) =>
      parseProbeOutput(out(tools), MARKER, { workerDir: '~/w', laptopMidpoint: NOW, logTailBytes: 10 });
    // Nothing but the tools arrived here: every section is missing; the tools say which ones are unknown for good.
    expect(parse('pgrep\n').missingTools).toEqual(['pgrep']);
    expect(parse('find\npgrep\n').missingTools).toEqual(['find', 'pgrep']);
    const full = (tools: string) =>
      ['now', 'tools', 'dir', 'env', 'process', 'procstart', 'supervisor', 'logstat', 'logtail', 'disk', 'reach', 'end']
        .map((n) => `\n${MARKER} ${n}\n${n === 'tools' ? tools : ''}`)
        .join('');
    const parseFull = (tools: string) =>
      parseProbeOutput(full(tools), MARKER, { workerDir: '~/w', laptopMidpoint: NOW, logTailBytes: 10 })
        .missingSections;
    expect(parseFull('')).toEqual([]);
    expect(parseFull('pgrep\n')).toEqual([]);
    expect(parseFull('find\npgrep\n')).toEqual(['process']);
    expect(parseFull('tail\ndf\n')).toEqual(['logtail', 'disk']);
  });
});

describe("the Spark step's lines (probeChecks)", () => {
  it('shows each section in table order', () => {
    const lines = probeChecks(probe(), NOW);
    expect(ids(lines)).toEqual([
      'worker-dir',
      'worker-env',
      'spark-reach',
      'worker-process',
      'worker-log',
      'clock',
      'disk',
    ]);
    expect(lines.map((l) => l.status)).toEqual(['ok', 'warning', 'ok', 'ok', 'ok', 'ok', 'ok']);
    expect(lines[3].summary).toBe('pid 42 up 10 min (sparkuser: node worker.mjs)');
    expect(lines[6].summary).toBe('51200 MB free (40% used) on /');
  });

  it('shows nothing about the folder when it does not exist', () => {
    const lines = probeChecks(
      probe({ workerDir: { path: '~/srv/hd-worker', exists: false }, env: { status: 'missing' } }),
      NOW,
    );
    expect(ids(lines)).toEqual(['worker-dir']);
    expect(lines[0]).toMatchObject({ status: 'failed', summary: '~/srv/hd-worker does not exist on Spark' });
  });

  it('says what the probe did not deliver, and calls it unknown', () => {
    const lines = probeChecks(
      probe({ workerDir: { path: '~/w', exists: false }, missingSections: ['dir', 'env', 'end'] }),
      NOW,
    );
    expect(ids(lines)).toEqual(['spark-probe', 'worker-dir']);
    expect(lines[0].summary).toBe("the probe's output was cut short (missing: dir, env, end)");
    expect(lines[1].summary).toMatch(/^unknown: the probe did not deliver it/);
  });

  it('names the missing tools and how to install them', () => {
    const lines = probeChecks(probe({ missingSections: ['process'], missingTools: ['ps', 'pgrep'] }), NOW);
    expect(lines[0]).toMatchObject({
      id: 'spark-probe',
      summary: "ps, pgrep not installed on Spark; the probe's output is incomplete (missing: process)",
    });
    expect(lines.find((l) => l.id === 'worker-process')?.summary).toMatch(/^unknown/);
  });

  it('warns about the clock exactly where the clock-skew finding does', () => {
    const clock = (ms: number) => probeChecks(probe({ clockSkewMs: ms }), NOW).find((l) => l.id === 'clock');
    expect(clock(SKEW_WARN_MS)).toMatchObject({ status: 'ok', summary: 'Spark is 120 s ahead' });
    expect(clock(SKEW_WARN_MS + 400)).toMatchObject({ status: 'warning', summary: 'Spark is 120 s ahead' });
    expect(clock(-(SKEW_WARN_MS + 1000))).toMatchObject({ status: 'warning', summary: 'Spark is 121 s behind' });
  });

  it('warns about a low disk', () => {
    const disk = probeChecks(probe({ disk: { availableKb: 512 * 1024, usedPercent: 50, mount: '/' } }), NOW).find(
      (l) => l.id === 'disk',
    );
    expect(disk?.status).toBe('warning');
  });

  it('reports the reach check in each of its outcomes', () => {
    const reach = (r: SparkEvidence['reach']) =>
      probeChecks(probe({ reach: r }), NOW).find((l) => l.id === 'spark-reach');
    expect(reach({ status: 'http-error', httpStatus: 401, seconds: 0.1 })).toMatchObject({
      status: 'warning',
      summary: "HTTP 401 with the worker's key",
    });
    expect(reach({ status: 'failed', message: 'Could not resolve host' })?.status).toBe('failed');
    expect(reach({ status: 'skipped', reason: 'no-curl' })?.fix).toMatch(/install curl/);
    expect(reach({ status: 'skipped', reason: 'no-url' })).toMatchObject({ status: 'skipped', summary: 'no-url' });
  });
});
