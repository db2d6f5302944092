/**
 * The diagnosis corpus (test/diagnosis-corpus/): every incident through the pure diagnosis, as debug-stuck-jobs would
 * run it on the evidence of that world. Each must be named as the issue says it should be: the top finding, the exit
 * code, the jobs each expected finding claims, requeue-safety only where the pattern says so.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  INCIDENTS_DIR,
  LOGS_DIR,
  listIncidents,
  loadEvidence,
  readIncident,
  renderedLog,
  specHash,
} from '../diagnosis-corpus/load.ts';
import { judge, scoreCorpus } from '../diagnosis-corpus/score.ts';

const names = listIncidents();
const incidents = names.map((n) => [n, readIncident(n)] as const);

describe('the corpus', () => {
  it('holds at least 40 incidents, half of them mixed (two causes, old history, odd log layouts)', () => {
    expect(names.length).toBeGreaterThanOrEqual(40);
    const mixed = incidents.filter(([, i]) => i.tags.includes('mixed'));
    expect(mixed.length * 2).toBeGreaterThanOrEqual(names.length);
  });

  it('covers every failure the issue names', () => {
    const tags = new Set(incidents.flatMap(([, i]) => i.tags));
    for (const tag of [
      'failure-a',
      'worker-wrong',
      'laptop-wrong',
      'failure-b',
      'scope',
      'gpu-oom',
      'input-unreadable',
      'storage',
      'network',
      'key-rejected',
      'import-error',
      'crash-loop',
      'disk-full',
      'worker-down',
      'killed-mid-job',
      'stale-running',
      'healthy',
      'old-history',
      'two-causes',
      'layout:basic',
      'layout:json',
      'layout:ansi',
      'layout:crlf',
      'spelling:loopback',
      'spelling:tunnel',
      'spelling:private-network',
      'spelling:cloud',
    ])
      expect(tags, tag).toContain(tag);
  });

  it('tags an incident mixed exactly when it has two causes, old history or an odd log layout', () => {
    for (const [name, i] of incidents) {
      const odd = i.tags.some(
        (t) => ['two-causes', 'old-history'].includes(t) || /^layout:(basic|json|ansi|crlf)$/.test(t),
      );
      expect(i.tags.includes('mixed'), name).toBe(odd);
      if (i.tags.some((t) => /^layout:/.test(t))) {
        const layout = i.log?.crlf ? 'crlf' : i.log?.layout;
        expect(
          i.tags.filter((t) => t.startsWith('layout:')).map((t) => t.slice(7)),
          name,
        ).toContain(layout);
      }
    }
  });

  it('has each log rendered by render-logs.py from its current spec (python3 test/diagnosis-corpus/render-logs.py)', () => {
    const index = JSON.parse(readFileSync(path.join(LOGS_DIR, 'index.json'), 'utf8')) as {
      specs: Record<string, string>;
    };
    for (const [name, i] of incidents) {
      if (!i.log) continue;
      expect(renderedLog(name), `${name}.log`).toBeDefined();
      expect(index.specs[name], `${name}: its log spec changed since the log was rendered`).toBe(specHash(i.log));
    }
  });

  it('names job ids that exist in the incident and puts every row id once', () => {
    for (const [name, i] of incidents) {
      const ids = i.rows.map((r) => r.id);
      expect(new Set(ids).size, name).toBe(ids.length);
      for (const [id, e] of Object.entries(i.expect.findings))
        for (const j of e.jobs) expect(ids, `${name} ${id}`).toContain(j);
    }
  });

  it('has its incidents as JSON files in incidents/', () => {
    expect(INCIDENTS_DIR.endsWith(path.join('diagnosis-corpus', 'incidents'))).toBe(true);
  });
});

describe('the loader builds evidence as the gather layer does', () => {
  it('reads the probe through parseProbeOutput: the worker process, its log tail, CRLF kept', () => {
    const ev = loadEvidence('29-network-refused-crlf');
    expect(ev.spark?.ok).toBe(true);
    const probe = ev.spark?.ok ? ev.spark.probe : undefined;
    expect(probe?.missingSections).toEqual([]);
    expect(probe?.processes.map((p) => p.pid)).toEqual([4242]);
    expect(probe?.log.tail.every((l) => l.endsWith('\r'))).toBe(true);
    expect(ev.worker?.url?.origin).toBe('https://abcdefghijklmnopqrst.supabase.co');
  });

  it("sets people's tools in the worker folder apart, as the probe's parser does", () => {
    const probe = loadEvidence('36-worker-down-ansi').spark;
    expect(probe?.ok && probe.probe.processes).toEqual([]);
    expect(probe?.ok && probe.probe.ignoredProcesses).toEqual([{ pid: 7001, comm: 'tail' }]);
  });

  it('reads the queue with the four reads: failed jobs of the last 24 h only, newest first', () => {
    const q = loadEvidence('22-gpu-oom-old-b-history').queue!;
    expect(q.failed.recent.map((j) => j.id.slice(-1))).toEqual(['5', '4']);
    expect(q.done.count).toBe(1);
  });

  it("counts the app's other instance only when it is not the laptop's", () => {
    expect(loadEvidence('12-a-app-on-local-cli').app?.other).toEqual({
      ok: true,
      queued: 3,
      oldest: expect.objectContaining({ id: '00120000-0000-4000-8000-000000000091' }),
    });
    expect(loadEvidence('16-a-sandbox-worker-wrong').app?.other).toBeUndefined();
  });
});

describe.each(names)('%s', (name) => {
  const j = judge(name);
  const e = j.incident.expect;
  it(`is named ${e.top ?? 'healthy'} (exit ${e.exit})`, () => {
    expect({ top: j.top, exit: j.exit }, j.problems.join('\n')).toEqual({ top: e.top, exit: e.exit });
  });
  it('claims the expected jobs with the expected requeue-safety, and makes no finding it rules out', () => {
    expect(j.problems).toEqual([]);
  });
});

describe('scoreCorpus', () => {
  it('counts incidents named right over the total, and lists the misses', () => {
    const s = scoreCorpus();
    expect(s.total).toBe(names.length);
    expect(s.right).toBe(s.total - s.misses.length);
    expect(s.topRight).toBeGreaterThanOrEqual(s.right);
    expect(s.mixed.total).toBe(incidents.filter(([, i]) => i.tags.includes('mixed')).length);
  });

  it('scores a misnamed incident as a miss', () => {
    const i = readIncident('01-b-json-circular');
    const wrong = { ...i, expect: { ...i.expect, top: 'unknown-failure' } };
    const j = judge('01-b-json-circular', wrong);
    expect(j.right).toBe(false);
    expect(j.problems[0]).toBe('top finding circular-metadata, expected unknown-failure');
  });
});
