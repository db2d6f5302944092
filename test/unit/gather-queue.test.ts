/** The queue step: its line says whose view of the queue it is when the key is bound by row-level security. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_RULES } from '../../lib/core/stuck-rules.ts';
import { queueStep } from '../../lib/evidence/gather.ts';
import type { GatherState } from '../../lib/evidence/gather-state.ts';
import type { LoadedConfig } from '../../lib/io/config.ts';
import type { JobsDb, QueueSnapshot } from '../../lib/io/jobs-db.ts';
import { inspectKey } from '../../lib/io/keys.ts';
import { classifySupabaseUrl } from '../../lib/io/supabase-url.ts';
import { fakePorts, opaqueKey } from '../helpers/fake-ports.ts';

const NOW = new Date('2026-01-15T12:00:00Z');

function state(key: string, keyVar: string, snapshot?: QueueSnapshot): GatherState {
  const url = classifySupabaseUrl('https://abcdefghijklmnopqrst.supabase.co');
  if (!url.ok) throw new Error('bad url');
  const laptop = { source: 'SUPABASE_URL in .env', urlVar: 'SUPABASE_URL', url, keyVar, key: inspectKey(key) };
  // What a key bound by row-level security reads of a busy queue: nothing (the policies hide every row).
  const empty: QueueSnapshot = {
    queued: { count: 0, oldest: [] },
    running: { count: 0, jobs: [] },
    failed: { count: 0, recent: [], since: NOW.toISOString() },
    done: { count: 0, latest: null },
  };
  const db = { queueSnapshot: async () => ({ ok: true, value: snapshot ?? empty, ms: 12 }) } as unknown as JobsDb;
  const { ports } = fakePorts();
  const config = { values: {}, issues: [], laptop, supabaseKey: key, secrets: [key] } as unknown as LoadedConfig;
  return { ports, config, evidence: { now: NOW, rules: DEFAULT_RULES, laptop: { ...laptop, issues: [] } }, db };
}

describe('Read the queue', () => {
  it('with a secret key: the counts, ✔', async () => {
    const [r] = [await queueStep.run(state(opaqueKey('secret'), 'SUPABASE_SECRET_KEY'))].flat();
    expect(r.status).toBe('ok');
    expect(r.summary).toMatch(/^0 queued\/pending, 0 running, 0 failed in 24 h, 0 done/);
  });

  it('says "about N" for a count that is the planner\'s estimate, and keeps each read\'s time as evidence', async () => {
    const big: QueueSnapshot = {
      queued: { count: 12, oldest: [] },
      running: { count: 1, jobs: [] },
      failed: { count: 98_765, estimated: true, recent: [], since: NOW.toISOString() },
      done: { count: 9_900_123, estimated: true, latest: null },
      reads: [
        { read: 'queued/pending, oldest first', ms: 30 },
        { read: 'latest done', ms: 1_800 },
      ],
    };
    const s = state(opaqueKey('secret'), 'SUPABASE_SECRET_KEY', big);
    const [r] = [await queueStep.run(s)].flat();
    expect(r.summary).toMatch(/^12 queued\/pending, 1 running, about 99,000 failed in 24 h, about 9,900,000 done/);
    expect(s.evidence.queueReads).toEqual(big.reads);
  });

  it('with a publishable (anon) key: a warning, never a green "0 queued", and what to use instead', async () => {
    const [r] = [await queueStep.run(state(opaqueKey('publishable'), 'SUPABASE_ANON_KEY'))].flat();
    expect(r.status).toBe('warning');
    expect(r.summary).toMatch(/, as SUPABASE_ANON_KEY sees it$/);
    expect(r.fix).toContain('not a service-role or secret key');
  });
});
