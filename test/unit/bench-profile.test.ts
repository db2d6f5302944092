// The benchmark's CPU profile summary (bench/profile.ts): categories of frames, and a real .cpuprofile made here by
// `node --cpu-prof` from a tiny program whose time is known to sit in "our lib", a package and @supabase/*.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bundledSources,
  type CpuProfile,
  categoryOf,
  NODE_INTERNALS,
  NODE_LOADER_WAIT,
  NODE_MODULES,
  OUR_LIB,
  type ProfileSummary,
  SUPABASE,
  summarizeProfile,
} from '../../bench/profile.ts';

const ROOT = '/repo';

describe('categoryOf', () => {
  it.each([
    ['file:///repo/lib/flows/diagnosis.ts', OUR_LIB],
    ['file:///repo/runbooks/debug-stuck-jobs.mts', 'runbooks/'],
    ['file:///elsewhere/node_modules/ssh2/lib/client.js', 'ssh2'],
    ['file:///repo/node_modules/@supabase/postgrest-js/dist/cjs/index.js', SUPABASE],
    ['file:///repo/node_modules/@types/x/index.js', '@types/x'],
    ['file:///repo/node_modules/tsx/node_modules/esbuild/lib/main.js', 'esbuild'],
    ['file:///repo/node_modules/tsx/dist/esm/index.mjs?342831db', 'tsx'],
    ['node:internal/modules/esm/loader', NODE_MODULES],
    ['node:internal/modules/esm/hooks', NODE_LOADER_WAIT],
    ['node:internal/deps/cjs-module-lexer/lexer', NODE_MODULES],
    ['node:internal/url', NODE_INTERNALS],
    ['wasm://wasm/0012', 'wasm (module lexers)'],
    ['file:///other/place.js', 'other'],
  ])('%s is %s', (url, category) => expect(categoryOf({ functionName: 'f', url }, ROOT)).toBe(category));

  it.each([
    ['(idle)', '(idle: waiting on I/O, timers)'],
    ['(garbage collector)', '(garbage collector)'],
    ['(program)', '(program: native, compile, parse)'],
    ['compileSourceTextModule', NODE_INTERNALS],
  ])('%s without a URL is %s', (functionName, category) =>
    expect(categoryOf({ functionName, url: '' }, ROOT)).toBe(category),
  );
});

describe('summarizeProfile, by hand', () => {
  // (root) -> main (lib) -> connect (ssh2); (root) -> (idle). Samples: main, connect, connect, idle.
  const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0 });
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame('(root)', ''), children: [2, 4] },
      { id: 2, callFrame: frame('main', 'file:///repo/lib/a.ts'), children: [3] },
      { id: 3, callFrame: frame('connect', 'file:///repo/node_modules/ssh2/lib/client.js') },
      { id: 4, callFrame: frame('(idle)', '') },
    ],
    startTime: 0,
    endTime: 10_000,
    samples: [2, 3, 3, 4],
    // at 1 ms, 2 ms, 5 ms, 6 ms: each lasts until the next, the last until endTime
    timeDeltas: [1_000, 1_000, 3_000, 1_000],
  };
  const s = summarizeProfile(profile, ROOT);

  it('charges each sample until the next one', () => {
    const by = Object.fromEntries(s.categories.map((c) => [c.category, c]));
    expect(by[OUR_LIB]).toEqual({ category: OUR_LIB, selfMs: 1, onStackMs: 5 });
    expect(by.ssh2).toEqual({ category: 'ssh2', selfMs: 4, onStackMs: 4 });
    expect(by['(idle: waiting on I/O, timers)'].selfMs).toBe(4);
    expect(s.categories[0].category).toBe('ssh2');
  });

  it('counts idle out of the busy time', () => {
    expect(s.totalMs).toBe(10);
    expect(s.busyMs).toBe(6);
  });

  it('adds a function up over its nodes and names its place', () =>
    expect(s.functions[0]).toEqual({ name: 'connect', category: 'ssh2', where: 'ssh2/lib/client.js:1', selfMs: 4 }));
});

describe('summarizeProfile of a real .cpuprofile', () => {
  let dir: string;
  let summary: ProfileSummary;
  let profile: CpuProfile;

  beforeAll(() => {
    dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bench-profile-')));
    const write = (rel: string, text: string) => {
      mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      writeFileSync(path.join(dir, rel), text);
    };
    // A fixed amount of work (not of wall time): on a busy machine the split between the three still holds.
    const spin = (name: string, n: number) =>
      `export function ${name}() { let x = 0; for (let i = 0; i < ${n}; i++) x += Math.sqrt(x + i); return x; }\n`;
    write('lib/busy.mjs', spin('spinOurs', 4e7));
    write('node_modules/slowpkg/index.mjs', spin('spinPkg', 1e7));
    write('node_modules/slowpkg/package.json', '{"main": "index.mjs"}');
    write('node_modules/@supabase/fake-js/index.mjs', spin('spinSupabase', 1e7));
    write('node_modules/@supabase/fake-js/package.json', '{"main": "index.mjs"}');
    write(
      'main.mjs',
      "import { spinOurs } from './lib/busy.mjs';\nimport { spinPkg } from 'slowpkg';\n" +
        "import { spinSupabase } from '@supabase/fake-js';\nspinOurs(); spinPkg(); spinSupabase();\n",
    );
    const r = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${path.join(dir, 'prof')}`, 'main.mjs'], {
      cwd: dir,
      // Without the repository's `--import=tsx` (npm's node-options), which the temp folder cannot resolve.
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const [file] = readdirSync(path.join(dir, 'prof'));
    profile = JSON.parse(readFileSync(path.join(dir, 'prof', file), 'utf8'));
    summary = summarizeProfile(profile, dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('accounts for the whole profile, no more', () => {
    const self = summary.categories.reduce((n, c) => n + c.selfMs, 0);
    expect(summary.totalMs).toBeCloseTo((profile.endTime - profile.startTime) / 1000, 6);
    // Nothing is charged twice: the self times add up to at most the profile's span (what precedes the first sample,
    // and a descheduled process on a busy machine, are simply not charged).
    expect(self).toBeLessThanOrEqual(summary.totalMs + 0.001);
    expect(self).toBeGreaterThan(0);
  });

  it('charges the busy loops where they are: our lib, the package, supabase-js', () => {
    const by = Object.fromEntries(summary.categories.map((c) => [c.category, c.selfMs]));
    // Each busy loop is charged to its own package (how much depends on the machine's load: not asserted).
    expect(by.slowpkg).toBeGreaterThan(0);
    expect(by[SUPABASE]).toBeGreaterThan(0);
    expect(by[OUR_LIB]).toBeGreaterThan(0);
    expect(summary.functions.find((f) => f.name === 'spinOurs')).toMatchObject({
      category: OUR_LIB,
      where: 'lib/busy.mjs:1',
    });
  });
});

describe('bundledSources: a prebuilt bundle read back to its sources', () => {
  // The shape esbuild gives an unminified bundle: a comment line with each module's path before its code.
  const BUNDLE = [
    '#!/usr/bin/env zx',
    'var __init = () => {};',
    '// ../node_modules/ssh-config/index.js',
    'function parse() {}',
    '// lib/io/context.ts',
    'function realPorts() {',
    '}',
    '// runbooks/debug-stuck-jobs.mts',
    'await runbookEntry();',
  ].join('\n');
  const url = 'file:///repo/dist/debug-stuck-jobs.mjs';
  const lines = bundledSources((u) => (u === url ? BUNDLE : undefined));

  it.each([
    [1, undefined],
    [3, '../node_modules/ssh-config/index.js'],
    [5, 'lib/io/context.ts'],
    [6, 'lib/io/context.ts'],
    [8, 'runbooks/debug-stuck-jobs.mts'],
  ])('line %i comes from %s', (line, source) => expect(lines(url, line)).toBe(source));

  it('other files are not bundles', () => expect(lines('file:///repo/lib/io/context.ts', 3)).toBeUndefined());

  it('summarizeProfile charges a bundle line to its source: our lib, a package', () => {
    const profile: CpuProfile = {
      nodes: [
        { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: [2, 3] },
        { id: 2, callFrame: { functionName: 'realPorts', url, lineNumber: 5 } },
        { id: 3, callFrame: { functionName: 'parse', url, lineNumber: 3 } },
      ],
      startTime: 0,
      endTime: 3_000,
      samples: [2, 3, 2],
      timeDeltas: [0, 1_000, 1_000],
    };
    const summary = summarizeProfile(profile, '/repo/', 10, lines);
    expect(summary.categories.map((c) => c.category).sort()).toEqual([OUR_LIB, 'ssh-config'].sort());
  });
});
