/**
 * The house's layers, read from the code itself (docs/architecture.md): lib/core → io → evidence → findings → actions
 * → flows, imports only pointing down, no cycles, and rooms small enough to read (files ≤ 400 lines, functions ≤ 80).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAst } from 'rolldown/parseAst';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/sandbox.ts';

const LAYERS = ['core', 'io', 'evidence', 'findings', 'actions', 'flows'] as const;
const MAX_FILE_LINES = 400;
const MAX_FUNCTION_LINES = 80;

const libFiles = readdirSync(path.join(ROOT, 'lib'), { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.ts'))
  .map((f) => path.join('lib', f))
  .sort();

const layerOf = (file: string) => LAYERS.indexOf(file.split(path.sep)[1] as (typeof LAYERS)[number]);

/** Every relative import of a file (static, type-only, re-exports and dynamic), as repository paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\s[^'";]*?from\s+'([^']+)'/gm),
    ...text.matchAll(/import\(\s*'([^']+)'\s*\)/g),
  ].map((m) => m[1]);
  return specs.filter((s) => s.startsWith('.')).map((s) => path.normalize(path.join(path.dirname(file), s)));
}

const graph = new Map(libFiles.map((f) => [f, importsOf(f)]));

function upwardImports(g: ReadonlyMap<string, string[]>): string[] {
  return [...g].flatMap(([from, targets]) =>
    targets.filter((to) => layerOf(to) > layerOf(from)).map((to) => `${from} → ${to}`),
  );
}

function cycles(g: ReadonlyMap<string, string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const walk = (file: string, trail: string[]) => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') {
      found.push([...trail.slice(trail.indexOf(file)), file].join(' → '));
      return;
    }
    state.set(file, 'open');
    for (const next of g.get(file) ?? []) walk(next, [...trail, file]);
    state.set(file, 'done');
  };
  for (const f of [...g.keys()].sort()) walk(f, []);
  return found;
}

interface Node {
  type?: string;
  start: number;
  end: number;
  id?: { name?: string } | null;
  key?: { name?: string };
  [k: string]: unknown;
}

/** Functions longer than the limit, with the name they are known by. */
function longFunctions(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const lineOf = (pos: number) => text.slice(0, pos).split('\n').length;
  const found: string[] = [];
  const visit = (n: unknown, name: string | undefined): void => {
    if (!n || typeof n !== 'object') return;
    if (Array.isArray(n)) {
      for (const c of n) visit(c, name);
      return;
    }
    const node = n as Node;
    if (/Function/.test(node.type ?? '')) {
      const lines = lineOf(node.end) - lineOf(node.start) + 1;
      if (lines > MAX_FUNCTION_LINES)
        found.push(`${file}:${lineOf(node.start)} ${node.id?.name ?? name ?? '(anonymous)'} (${lines} lines)`);
    }
    const named =
      node.type === 'VariableDeclarator'
        ? node.id?.name
        : node.type === 'Property' || node.type === 'MethodDefinition'
          ? node.key?.name
          : name;
    for (const [k, v] of Object.entries(node)) if (k !== 'parent') visit(v, named);
  };
  visit(parseAst(text, { lang: 'ts' }), undefined);
  return found;
}

describe('the layers of lib/', () => {
  it('every file sits in a layer folder', () => {
    expect(libFiles.filter((f) => layerOf(f) < 0)).toEqual([]);
    expect(libFiles.length).toBeGreaterThan(30);
  });

  it('imports point only down the layers (or within one)', () => {
    expect(upwardImports(graph)).toEqual([]);
  });

  it('has no import cycle', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('finds an upward import and a cycle when one is planted (the checks can fail)', () => {
    const planted = new Map(graph);
    planted.set('lib/core/job.ts', ['lib/flows/run.ts']);
    planted.set('lib/flows/run.ts', [...(graph.get('lib/flows/run.ts') ?? []), 'lib/core/job.ts']);
    expect(upwardImports(planted)).toEqual(['lib/core/job.ts → lib/flows/run.ts']);
    expect(cycles(planted)).toContain('lib/core/job.ts → lib/flows/run.ts → lib/core/job.ts');
  });
});

describe('rooms small enough to read', () => {
  it(`no file in lib/ over ${MAX_FILE_LINES} lines`, () => {
    const long = libFiles
      .map((f) => [f, readFileSync(path.join(ROOT, f), 'utf8').split('\n').length] as const)
      .filter(([, n]) => n > MAX_FILE_LINES)
      .map(([f, n]) => `${f} (${n} lines)`);
    expect(long).toEqual([]);
  });

  it(`no function in lib/ over ${MAX_FUNCTION_LINES} lines`, () => {
    expect(libFiles.flatMap(longFunctions)).toEqual([]);
  });

  it('measures functions (a long one planted in a string is found)', () => {
    const body = Array.from({ length: 90 }, (_, i) => `  const v${i} = ${i};`).join('\n');
    const text = `export function planted() {\n${body}\n}\n`;
    const lineOf = (pos: number) => text.slice(0, pos).split('\n').length;
    const fn = (parseAst(text, { lang: 'ts' }).body[0] as unknown as { declaration: Node }).declaration;
    expect(lineOf(fn.end) - lineOf(fn.start) + 1).toBe(92);
  });
});
