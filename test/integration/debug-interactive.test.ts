/**
 * The guided incident flow, driven in-process with scripted answers against the real sandbox: the real db and SSH
 * ports, a prompter that fails on any question it was not given.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../lib/core/exit-codes.ts';
import { runDebugStuckJobs } from '../../lib/flows/debug-stuck-jobs.ts';
import { realPorts } from '../../lib/io/context.ts';
import { recordingOutput, scriptedPrompter } from '../helpers/fake-ports.ts';
import { tempDir } from '../helpers/run.ts';
import { type Sandbox, startSandbox } from '../helpers/sandbox.ts';

let sb: Sandbox;

beforeAll(async () => {
  sb = await startSandbox();
});

afterAll(async () => {
  await sb?.down();
});

async function ports(script: Record<string, unknown>) {
  const base = await realPorts({ ci: false, verbose: false, jsonToStdout: false, timeoutMs: 10_000 });
  const out = recordingOutput();
  const prompt = scriptedPrompter(script);
  const audit = path.join(tempDir('hd-audit-'), 'audit.jsonl');
  return {
    ports: { ...base, out: out.out, prompt, env: { REQUEUE_AUDIT_FILE: audit } },
    out,
    prompt,
    audit,
  };
}

describe('debug-stuck-jobs, interactive with scripted answers', () => {
  it('Ctrl-C while gathering: what was gathered is shown, nothing is asked, exit 3', async () => {
    await sb.scenario('circular-metadata');
    await sb.worker('fix');
    const { ports: p, out, prompt } = await ports({});
    const interrupted = new AbortController();
    interrupted.abort();
    const code = await runDebugStuckJobs(p, { 'env-file': sb.envFile }, { signal: interrupted.signal });
    expect(prompt.asked).toEqual([]);
    expect(out.text()).toContain('[circular-metadata]');
    // Nothing was asked (above), so no hand-over was offered.
    expect(code).toBe(EXIT.aborted);
  });

  it('the loop closes: handed over too early, failed again, fix deployed, handed over again, done', async () => {
    await sb.scenario('circular-metadata');
    const failed = (await sb.sql<{ id: string }>("select id from hd_ingestion_jobs where status = 'failed'")).map(
      (f) => f.id,
    );
    const statuses = async () =>
      (
        await sb.sql<{ status: string }>('select status from hd_ingestion_jobs where id = any($1::uuid[])', [failed])
      ).map((r) => r.status);
    const handOver = async () => {
      const { ports: p, out } = await ports({ 'requeue-circular-metadata': true, 'confirm-apply': true });
      await runDebugStuckJobs(p, { 'env-file': sb.envFile }, { requeue: { verifySeconds: 15 } });
      return out.text();
    };
    // Too early: the worker still has the bug. The confirmation said so; the operator went ahead anyway.
    const early = await handOver();
    expect(early).toContain('the fix is probably not deployed yet');
    expect(early).toContain('failed again: ValueError: Circular reference detected');
    expect(await statuses()).toEqual(failed.map(() => 'failed'));
    // The fix, then the same hand-over (every hand-over is the same command): the jobs are retried, and finish.
    await sb.worker('fix');
    const late = await handOver();
    expect(late).toContain('requeued before, and failed again since');
    expect(late).toMatch(/failed again since the requeue at 20\d\d-/);
    expect(late).not.toContain('nothing to do');
    expect(await statuses()).toEqual(failed.map(() => 'done'));
    const history = await sb.sql<{ n: number }>(
      "select jsonb_array_length(debug->'requeue_history') as n from hd_ingestion_jobs where id = any($1::uuid[])",
      [failed],
    );
    expect(history.map((h) => h.n)).toEqual(failed.map(() => 2));
  });

  it('after the fix is deployed, hands the circular-metadata jobs to requeue and the worker finishes them', async () => {
    await sb.scenario('circular-metadata');
    await sb.worker('fix');
    const failed = await sb.sql<{ id: string }>("select id from hd_ingestion_jobs where status = 'failed'");
    const {
      ports: p,
      out,
      prompt,
      audit,
    } = await ports({
      'requeue-circular-metadata': true,
      'confirm-apply': true,
    });
    const code = await runDebugStuckJobs(p, { 'env-file': sb.envFile }, { requeue: { verifySeconds: 15 } });
    expect(prompt.asked).toEqual(['requeue-circular-metadata', 'confirm-apply']);
    const text = out.text();
    expect(text).toContain('fix gate [circular-metadata]: the worker restarted');
    // The reason kept in the jobs' history names the finding and what the fix gate saw.
    expect(text).toContain('reason: "circular-metadata fixed (fix gate: the worker restarted');
    // The end line describes the world after the hand-over: read again, the failure is gone, exit 0.
    expect(text).toMatch(/^After the requeue$/m);
    expect(text, text.slice(text.indexOf('After the requeue'))).toMatch(/^resolved: .* \[circular-metadata\]$/m);
    expect(text).toContain('nothing is left at warning level or above');
    expect(code).toBe(EXIT.ok);
    const rows = await sb.sql<{
      id: string;
      status: string;
      debug: { requeue_history: Array<{ from_error: string }> };
    }>('select id, status, debug from hd_ingestion_jobs where id = any($1::uuid[])', [failed.map((f) => f.id)]);
    for (const r of rows) {
      expect(r.status).toBe('done');
      expect(r.debug.requeue_history).toHaveLength(1);
      expect(r.debug.requeue_history[0].from_error).toContain('Circular reference detected');
    }
    const lines = readFileSync(audit, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(
      lines
        .filter((l) => l.outcome === 'requeued')
        .map((l) => l.job_id)
        .sort(),
    ).toEqual(failed.map((f) => f.id).sort());
  });

  it('says No by default: an operator who declines the hand-over writes nothing', async () => {
    await sb.scenario('circular-metadata');
    await sb.resetStats();
    const { ports: p, out, prompt } = await ports({ 'requeue-circular-metadata': false });
    const code = await runDebugStuckJobs(p, { 'env-file': sb.envFile });
    expect(prompt.asked).toEqual(['requeue-circular-metadata']);
    expect(out.text()).toContain('the fix is probably not deployed yet');
    expect(out.text()).toContain(`not requeued. Later: npx zx runbooks/requeue.mts --config ${sb.envFile} --id`);
    expect(code).toBe(EXIT.findings);
    expect((await sb.stats()).httpWrites).toBe(0);
  });

  it('a No at the requeue confirmation is an abort (exit 3) with nothing written', async () => {
    await sb.scenario('circular-metadata');
    await sb.resetStats();
    const { ports: p } = await ports({ 'requeue-circular-metadata': true, 'confirm-apply': false });
    const code = await runDebugStuckJobs(p, { 'env-file': sb.envFile });
    expect(code).toBe(EXIT.aborted);
    expect((await sb.stats()).httpWrites).toBe(0);
  });
});
