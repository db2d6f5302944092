/**
 * The script form of a bundle (scripts/bundle.ts) and where its code cache goes (lib/io/prebuilt.ts). That a runbook
 * really runs it, keeps the cache and replaces one V8 refuses: test/integration/bundle.test.ts.
 */
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { CODE_CACHE_DIR, codeCacheFile, SCRIPT_META_URL } from '../../lib/io/prebuilt.ts';
import { scriptForm } from '../../scripts/bundle.ts';

const BANNER =
  "import { createRequire as __hdCreateRequire } from 'node:module'; const require = __hdCreateRequire(import.meta.url);";

describe('scriptForm', () => {
  it('makes the bundle the body of one async function of require and the URL import.meta.url stood for', async () => {
    const bundle = `#!/usr/bin/env node\n${BANNER}\nconst here = import.meta.url;\nawait Promise.resolve();\nglobalThis.__seen = [here, require('node:path').sep];\n`;
    const text = scriptForm(bundle, BANNER);
    expect(text).not.toContain('import.meta');
    expect(text).not.toContain('__hdCreateRequire');
    expect(text).toContain(SCRIPT_META_URL);
    const run = new vm.Script(text).runInThisContext() as (r: NodeJS.Require, url: string) => Promise<void>;
    await run(require, 'file:///x/dist/a.mjs');
    expect((globalThis as { __seen?: unknown }).__seen).toEqual(['file:///x/dist/a.mjs', '/']);
  });

  it('refuses a bundle that still holds an import or export statement (a function body cannot)', () => {
    expect(() => scriptForm(`${BANNER}\nimport fs from "node:fs";\n`, BANNER)).toThrow(/module statement: import fs/);
    expect(() => scriptForm(`${BANNER}\nexport const a = 1;\n`, BANNER)).toThrow(/module statement: export const/);
  });
});

describe('codeCacheFile', () => {
  const bundle = {
    script: '/r/dist/debug-stuck-jobs.js',
    moduleUrl: 'file:///r/dist/debug-stuck-jobs.mjs',
    buildId: 'a1',
  };

  it('is in the prebuilt folder, one per bundle, build, size and mtime', () => {
    const file = codeCacheFile(bundle, [100, 5]);
    expect(file).toMatch(new RegExp(`^/r/dist/${CODE_CACHE_DIR}/debug-stuck-jobs-[0-9a-f]{20}\\.bin$`));
    expect(codeCacheFile(bundle, [100, 5])).toBe(file);
    expect(codeCacheFile({ ...bundle, buildId: 'b2' }, [100, 5])).not.toBe(file);
    // V8 compares only a source's length: an edit that keeps it still changes the mtime, and so the file.
    expect(codeCacheFile(bundle, [100, 6])).not.toBe(file);
    expect(codeCacheFile(bundle, [101, 5])).not.toBe(file);
  });
});
