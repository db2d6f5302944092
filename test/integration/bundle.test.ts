/**
 * The fault harness starts the runbooks from the run's bundle of the sources (test/setup/bundle.ts); operators and
 * the end-to-end tests start the `.mts` sources through tsx. Both must be the same program: same output, same
 * exit code, on the paths that differ between the two (argument parsing from import.meta.url, lazy imports, the
 * config error path, a full diagnosis).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/run.ts';
import { runRunbook, type Sandbox, startSandbox } from '../helpers/sandbox.ts';
import { RUNBOOKS } from '../setup/bundle.ts';

let sb: Sandbox;

beforeAll(async () => {
  expect(process.env.HD_TEST_BUNDLE_DIR, 'the global setup builds the bundle').toBeTruthy();
  sb = await startSandbox({ scenario: 'demo' });
});

afterAll(async () => {
  await sb?.down();
});

/**
 * What differs between any two runs against a live sandbox: times, durations and ages, ids, sizes, and the worker log
 * excerpt (the worker keeps polling between the two runs). The rest must be the same, line for line.
 */
function stable(text: string): string {
  return (
    text
      .replace(/\nWorker log[^\n]*\n[\s\S]*?\n\n/, '\nWorker log\n(excerpt)\n\n')
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'UUID')
      // An age's unit too: on a busy machine the second run may come a minute later ("59 s" and then "1 min").
      .replace(/\b\d+ (?:s|min|h|d)\b/g, 'AGE')
      .replace(/\d+/g, 'N')
  );
}

describe.each(RUNBOOKS)('%s: bundle and source', (name) => {
  it('print the same --help', async () => {
    const [source, bundle] = await Promise.all([
      runRunbook(name, ['--help']),
      runRunbook(name, ['--help'], { from: 'bundle' }),
    ]);
    expect(source.code).toBe(0);
    expect(bundle).toEqual(source);
  });

  it('fail the same way on a broken config', async () => {
    const file = path.join(tempDir('hd-bundle-env-'), '.env');
    writeFileSync(file, 'SUPABASE_URL=not a url\nSUPABASE_SERVICE_ROLE_KEY=abc\n');
    const args = ['--env-file', file, '--ci'];
    const [source, bundle] = await Promise.all([runRunbook(name, args), runRunbook(name, args, { from: 'bundle' })]);
    expect(source.code).toBe(2);
    expect(bundle).toEqual(source);
  });

  it('give the same diagnosis of the demo incident', async () => {
    const args = ['--env-file', sb.envFile, '--ci', '--json', '-'];
    const source = await runRunbook(name, args);
    const bundle = await runRunbook(name, args, { from: 'bundle' });
    expect(bundle.code).toBe(source.code);
    const ids = (r: { stdout: string }) =>
      (JSON.parse(r.stdout) as { findings: { id: string }[] }).findings.map((f) => f.id);
    expect(ids(bundle)).toEqual(ids(source));
    expect(stable(bundle.stderr)).toBe(stable(source.stderr));
  });
});
