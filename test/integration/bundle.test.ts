/**
 * The fault harness starts the runbooks from the run's bundle of the sources (test/setup/bundle.ts); operators and
 * the end-to-end tests start the `.mts` sources through tsx. Both must be the same program: same output, same
 * exit code, on the paths that differ between the two (argument parsing from import.meta.url, lazy imports, the
 * config error path, a full diagnosis).
 */
import { spawn } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CODE_CACHE_DIR, MANIFEST_FILE, PREBUILT_DIR, PREBUILT_ENV } from '../../lib/io/prebuilt.ts';
import { TSX } from '../../sandbox/client.ts';
import { buildRunbooks } from '../../scripts/bundle.ts';
import { tempDir } from '../helpers/run.ts';
import { cleanEnv, ROOT, type RunResult, runRunbook, type Sandbox, startSandbox } from '../helpers/sandbox.ts';
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

/**
 * An operator's `npx zx runbooks/NAME.mts` runs the prebuilt bundle in dist/ only while every file it was built from
 * is unchanged. Checked in a copy of the repository (its own runbooks/, lib/ and dist/; node_modules shared), whose
 * bundle is marked so that a run shows which code ran: the mark is in the output, not in the sources, so the bundle
 * stays up to date with them.
 */
describe('the hand-over from runbooks/NAME.mts to dist/NAME.js', () => {
  const MARK = 'ran-the-prebuilt-bundle';
  let repo: string;
  let brokenEnv: string;

  beforeAll(async () => {
    repo = tempDir('hd-prebuilt-repo-');
    for (const part of ['runbooks', 'lib', 'package.json'])
      cpSync(path.join(ROOT, part), path.join(repo, part), { recursive: true });
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(repo, 'node_modules'));
    await buildRunbooks(repo, path.join(repo, PREBUILT_DIR));
    mark();
    brokenEnv = path.join(repo, 'broken.env');
    writeFileSync(brokenEnv, 'SUPABASE_URL=not a url\nSUPABASE_SERVICE_ROLE_KEY=abc\n');
  });

  /** The test's clean environment without its switch to the sources: an operator's, unless `extra` sets it. */
  function operatorEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
    const env = cleanEnv(extra);
    if (!(PREBUILT_ENV in extra)) delete env[PREBUILT_ENV];
    return env;
  }

  /** Marks the copy's bundle (its script form, which the hand-over runs): a run of it writes MARK first. */
  function mark(): void {
    const bundle = path.join(repo, PREBUILT_DIR, 'diagnose-env.js');
    const [opening, ...rest] = readFileSync(bundle, 'utf8').split('\n');
    writeFileSync(bundle, [opening, `process.stderr.write(${JSON.stringify(`${MARK}\n`)});`, ...rest].join('\n'));
  }

  /** The copy's code caches of diagnose-env, by file name. */
  function caches(): string[] {
    try {
      return readdirSync(path.join(repo, PREBUILT_DIR, CODE_CACHE_DIR)).filter((f) => f.startsWith('diagnose-env-'));
    } catch {
      return [];
    }
  }

  /** The copy's runbook from its .mts, through tsx, as `npx zx` runs it. */
  function run(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ['--import', TSX, path.join(repo, 'runbooks', 'diagnose-env.mts'), ...args],
        { cwd: repo, env: operatorEnv(env), stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => {
        stdout += d;
      });
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('runs the bundle while the sources are unchanged, with the same result as the sources', async () => {
    const args = ['--env-file', brokenEnv, '--ci'];
    const [prebuilt, sources] = await Promise.all([run(args), run(args, { [PREBUILT_ENV]: 'off' })]);
    expect(prebuilt.stderr).toContain(MARK);
    expect(sources.stderr).not.toContain(MARK);
    expect(prebuilt.code).toBe(2);
    expect({ ...prebuilt, stderr: prebuilt.stderr.replace(`${MARK}\n`, '') }).toEqual(sources);
  });

  it('answers --help and usage errors from the sources, without loading the bundle', async () => {
    const [help, usage] = await Promise.all([run(['--help']), run(['--no-such-flag'])]);
    expect(help).toMatchObject({ code: 0 });
    expect(help.stdout).toContain('Usage: npx zx runbooks/diagnose-env.mts');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("Unknown option '--no-such-flag'");
    for (const r of [help, usage]) expect(r.stderr + r.stdout).not.toContain(MARK);
  });

  it("keeps V8's code cache of the bundle after its first run, uses it after, and makes it again when V8 refuses it", async () => {
    await buildRunbooks(repo, path.join(repo, PREBUILT_DIR));
    mark();
    expect(caches()).toEqual([]);
    const args = ['--env-file', brokenEnv, '--ci'];
    const first = await run(args);
    expect(first.stderr).toContain(MARK);
    const [cache] = caches();
    expect(cache, 'the first run saved the code cache').toBeTruthy();
    const file = path.join(repo, PREBUILT_DIR, CODE_CACHE_DIR, cache);
    const saved = readFileSync(file);
    expect(saved.length).toBeGreaterThan(10_000);
    // Used as it is: the same answer, and the file not written again.
    expect(await run(args)).toEqual(first);
    expect(readFileSync(file).equals(saved)).toBe(true);
    // A cache V8 refuses (here: not one at all) changes nothing of the run, and is replaced by a good one.
    writeFileSync(file, 'not a code cache');
    expect(await run(args)).toEqual(first);
    expect(readFileSync(file).length).toBeGreaterThan(10_000);
    expect(caches()).toEqual([cache]);
    // A new build is a new bundle: its runs never meet the old build's cache.
    await buildRunbooks(repo, path.join(repo, PREBUILT_DIR));
    mark();
    expect(caches()).toEqual([]);
  });

  it('runs the sources once a file the bundle came from has changed, until it is built again', async () => {
    const args = ['--env-file', brokenEnv, '--ci'];
    expect((await run(args)).stderr).toContain(MARK);
    // Touched (a checkout, an editor's save): the mtime differs from the manifest's.
    const source = path.join(repo, 'lib', 'io', 'keys.ts');
    const earlier = new Date(Date.now() - 60_000);
    utimesSync(source, earlier, earlier);
    const touched = await run(args);
    expect(touched.stderr).not.toContain(MARK);
    expect(touched.code).toBe(2);
    await buildRunbooks(repo, path.join(repo, PREBUILT_DIR));
    mark();
    expect((await run(args)).stderr).toContain(MARK);
    // Edited: a line more.
    writeFileSync(source, `${readFileSync(source, 'utf8')}\n// edited\n`);
    expect((await run(args)).stderr).not.toContain(MARK);
    await buildRunbooks(repo, path.join(repo, PREBUILT_DIR));
    mark();
    expect((await run(args)).stderr).toContain(MARK);
    // No manifest (a build that failed half-way leaves none).
    rmSync(path.join(repo, PREBUILT_DIR, MANIFEST_FILE));
    const none = await run(args);
    expect(none.stderr).not.toContain(MARK);
    expect(none.code).toBe(2);
  });
});
