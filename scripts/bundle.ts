/**
 * Builds the prebuilt runbooks (lib/io/prebuilt.ts says when they are used): every runbooks/NAME.mts with everything
 * it runs in one ES module, OUT/NAME.mjs; the same code as a script, OUT/NAME.js (one async function, which the
 * runbooks run through node:vm with V8's code cache: prebuilt.ts); and OUT/manifest.json naming every file that went
 * in, with its size and mtime. npm's `prepare` builds them into dist/ (scripts/build.mts); the test run builds its own from its sources
 * (test/setup/bundle.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import type { Plugin } from 'esbuild';
import {
  CODE_CACHE_DIR,
  fileStamp,
  MANIFEST_FILE,
  MANIFEST_VERSION,
  type PrebuiltManifest,
  SCRIPT_META_URL,
  SCRIPT_PREFIX,
  SCRIPT_SUFFIX,
} from '../lib/io/prebuilt.ts';

/**
 * Packages loaded from node_modules at run time rather than bundled: prompts is only for a question; cpu-features is
 * ssh2's optional native helper. (ssh2 itself is bundled: through tsx's require hooks its 40 files took ~100 ms to
 * load, on the SSH path. See inPlace for what it finds next to itself.)
 */
export const EXTERNAL_PACKAGES = ['prompts', 'cpu-features'];

/**
 * What a bundled package finds next to itself stays where it is installed: a native add-on (ssh2's optional crypto
 * binding) is required from its package in node_modules, and a module that names `__dirname` (which an ES module
 * lacks) gets its own folder there.
 */
function inPlace(): Plugin {
  const inNodeModules = (file: string) => {
    const at = file.lastIndexOf(`${path.sep}node_modules${path.sep}`);
    return at < 0
      ? undefined
      : file
          .slice(at + '/node_modules/'.length)
          .split(path.sep)
          .join('/');
  };
  return {
    name: 'in-place',
    setup(b) {
      b.onResolve({ filter: /\.node$/ }, (args) => {
        const pkgPath = inNodeModules(path.resolve(args.resolveDir, args.path));
        return pkgPath ? { path: pkgPath, external: true } : undefined;
      });
      b.onLoad({ filter: /[\\/]node_modules[\\/].*\.c?js$/ }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        const pkgPath = inNodeModules(args.path);
        if (!pkgPath || !/\b__dirname\b/.test(text)) return undefined;
        const here = `var __dirname = require('node:path').dirname(require.resolve(${JSON.stringify(pkgPath)}));\n`;
        return { contents: here + text, loader: 'js', resolveDir: path.dirname(args.path) };
      });
    },
  };
}

/**
 * Node's own modules through `require` (the banner's, or the script form's parameter), never an `import` statement:
 * so the bundle's text is also a valid function body (scriptForm). Each is a one-line CommonJS module of the bundle.
 */
function builtinsThroughRequire(): Plugin {
  const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
  return {
    name: 'builtins-through-require',
    setup(b) {
      b.onResolve({ filter: /^[a-z:_/]+$/ }, (args) => {
        if (!builtins.has(args.path)) return undefined;
        if (args.namespace === 'hd-builtin') return { path: args.path, external: true };
        return { path: args.path, namespace: 'hd-builtin' };
      });
      b.onLoad({ filter: /.*/, namespace: 'hd-builtin' }, (args) => ({
        contents: `module.exports = require(${JSON.stringify(args.path)});`,
        loader: 'js',
      }));
    },
  };
}

/**
 * The bundle as a script: its text (without the banner) as the body of one async function taking `require` and the
 * module's URL, which node:vm can compile with a code cache (an ES module cannot have one on Node 20). Throws when an
 * `import`/`export` statement is left, which a function body cannot hold: the build then fails, and the sources run.
 */
export function scriptForm(bundle: string, banner: string): string {
  const body = bundle.replace(banner, '').replace(/^#!.*\n/, '');
  const statement = /^(?:import|export)\b[^\n]*/m.exec(body);
  if (statement) throw new Error(`a bundle still holds a module statement: ${statement[0].slice(0, 80)}`);
  return `${SCRIPT_PREFIX}${body.replace(/\bimport\.meta\.url\b/g, SCRIPT_META_URL)}${SCRIPT_SUFFIX}`;
}

/** The ES module's first line: a `require` for the packages left out and for Node's own modules. */
const BANNER =
  "import { createRequire as __hdCreateRequire } from 'node:module'; const require = __hdCreateRequire(import.meta.url);";

/** The runbooks there are to build, by name. */
export function runbookNames(root: string): string[] {
  return readdirSync(path.join(root, 'runbooks'))
    .filter((f) => f.endsWith('.mts'))
    .map((f) => f.slice(0, -'.mts'.length))
    .sort();
}

/**
 * Builds every runbook into `outDir` (inside the project, so that the external packages resolve from its
 * node_modules) and writes the manifest last: a build that fails or is interrupted leaves none, and so no bundle in
 * use. A source changed while the build ran (its mtime is later than the start) leaves none either.
 */
export async function buildRunbooks(root: string, outDir: string): Promise<PrebuiltManifest> {
  const { build } = await import('esbuild');
  const started = Date.now();
  const manifestPath = path.join(outDir, MANIFEST_FILE);
  rmSync(manifestPath, { force: true });
  // Code caches are of the bundles they were made from: a build starts without any.
  rmSync(path.join(outDir, CODE_CACHE_DIR), { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const runbooks = runbookNames(root);
  const result = await build({
    absWorkingDir: root,
    entryPoints: runbooks.map((name) => path.join(root, 'runbooks', `${name}.mts`)),
    outdir: outDir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: EXTERNAL_PACKAGES,
    plugins: [inPlace(), builtinsThroughRequire()],
    // import() becomes a plain lazy call: tsx would otherwise rewrite every import() of a 1.4 MB file, and make it a
    // source map, on every start. The external packages are then require()d, through the banner's require.
    supported: { 'dynamic-import': false },
    banner: { js: BANNER },
    metafile: true,
    logLevel: 'error',
  });
  const inputs: PrebuiltManifest['inputs'] = {};
  // Files only: a Node module through require (builtinsThroughRequire) is an input of its own namespace.
  for (const input of Object.keys(result.metafile.inputs).filter((i) => !i.startsWith('hd-builtin:'))) {
    const stamp = fileStamp(path.resolve(root, input));
    if (!stamp || stamp[1] >= started) {
      throw new Error(`${input} changed while the runbooks were being built; build again`);
    }
    inputs[input] = stamp;
  }
  for (const name of runbooks) {
    const bundle = readFileSync(path.join(outDir, `${name}.mjs`), 'utf8');
    writeFileSync(path.join(outDir, `${name}.js`), scriptForm(bundle, BANNER));
  }
  const manifest: PrebuiltManifest = {
    version: MANIFEST_VERSION,
    builtAt: new Date(started).toISOString(),
    buildId: randomBytes(8).toString('hex'),
    runbooks,
    inputs,
  };
  const temporary = `${manifestPath}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(manifest, null, 1)}\n`);
  renameSync(temporary, manifestPath);
  return manifest;
}
