/**
 * The prebuilt runbooks: npm's `prepare` (scripts/build.mts) bundles each runbook with everything it runs into one
 * file, dist/NAME.mjs, which needs about half the CPU of the TypeScript sources through tsx to start. The sources
 * stay the truth: a bundle is used only while every file it was built from is exactly as it was then (size and mtime,
 * listed in dist/manifest.json). An edited, added or removed source, a reinstalled package, a missing or older
 * manifest: the runbook runs from its sources. `HD_RUNBOOKS_PREBUILT=off` always runs the sources.
 *
 * A runbook runs its bundle's script form, dist/NAME.js, through node:vm with V8's code cache: the first run after a
 * build saves the code V8 compiled for it (dist/.v8/, one file per bundle, build and Node version), and the next runs
 * skip compiling it again (about 45 ms of a diagnosis's 350 ms of CPU). A cache V8 refuses (another V8, other flags)
 * is made again; one that cannot be written (a read-only install) is simply not kept.
 *
 * Checked on every start, so it only stats files (about 250, a millisecond or two) and imports nothing.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';

/** The folder the bundles go to, next to runbooks/ (git-ignored). */
export const PREBUILT_DIR = 'dist';
export const MANIFEST_FILE = 'manifest.json';
/** Bumped when the layout of a bundle or of the manifest changes: an older build is then not used. */
export const MANIFEST_VERSION = 2;
/** Where the code caches go, inside the prebuilt folder (a build removes it). */
export const CODE_CACHE_DIR = '.v8';
/** The script form: one async function of `require` and the bundle's URL (which stands for `import.meta.url`). */
export const SCRIPT_META_URL = '__hdImportMetaUrl';
export const SCRIPT_PREFIX = `(async function (require, ${SCRIPT_META_URL}) {\n`;
export const SCRIPT_SUFFIX = '\n})';
export const PREBUILT_ENV = 'HD_RUNBOOKS_PREBUILT';

export interface PrebuiltManifest {
  version: number;
  builtAt: string;
  /** Random per build: a code cache is of one build's bundles only. */
  buildId: string;
  /** The runbooks bundled, by name (dist/NAME.mjs and NAME.js from runbooks/NAME.mts). */
  runbooks: string[];
  /** Every file the bundles were built from, relative to the repository: [size, mtimeMs] when they were. */
  inputs: Record<string, [number, number]>;
}

/** The size and mtime recorded for a file, or undefined when it cannot be read. */
export function fileStamp(file: string): [number, number] | undefined {
  try {
    const s = statSync(file);
    return [s.size, s.mtimeMs];
  } catch {
    return undefined;
  }
}

/** A runbook's prebuilt bundle that may run instead of its sources. */
export interface PrebuiltRunbook {
  /** dist/NAME.js, the script form. */
  script: string;
  /** The URL the bundle's own `import.meta.url` stands for (dist/NAME.mjs). */
  moduleUrl: string;
  buildId: string;
}

/**
 * The prebuilt bundle of the runbook at `runbookUrl` (…/runbooks/NAME.mts) when it may run instead of the sources;
 * undefined otherwise (also for a URL that is not a runbook's, e.g. a bundle's own).
 */
export function prebuiltRunbook(
  runbookUrl: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): PrebuiltRunbook | undefined {
  if (env[PREBUILT_ENV] === 'off' || !runbookUrl.startsWith('file:')) return undefined;
  const file = fileURLToPath(runbookUrl);
  const match = /^(.*)[/\\]runbooks[/\\]([a-z][a-z0-9-]*)\.mts$/.exec(file);
  if (!match) return undefined;
  const [, root, name] = match;
  const dir = path.join(root, PREBUILT_DIR);
  let manifest: PrebuiltManifest;
  try {
    manifest = JSON.parse(readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')) as PrebuiltManifest;
  } catch {
    return undefined;
  }
  if (
    manifest?.version !== MANIFEST_VERSION ||
    !manifest.runbooks?.includes(name) ||
    !manifest.inputs ||
    typeof manifest.buildId !== 'string'
  )
    return undefined;
  const script = path.join(dir, `${name}.js`);
  if (!fileStamp(script)) return undefined;
  for (const [input, stamp] of Object.entries(manifest.inputs)) {
    const now = fileStamp(path.resolve(root, input));
    if (!now || now[0] !== stamp[0] || now[1] !== stamp[1]) return undefined;
  }
  return { script, moduleUrl: pathToFileURL(path.join(dir, `${name}.mjs`)).href, buildId: manifest.buildId };
}

/**
 * Where the code cache of `bundle` goes: named after its build, its file's size and mtime (a bundle edited in place
 * never meets an older cache: V8 itself checks only the source's length) and this Node and V8.
 */
export function codeCacheFile(bundle: PrebuiltRunbook, stamp: [number, number]): string {
  const key = [bundle.buildId, ...stamp, process.version, process.versions.v8, process.arch].join('|');
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 20);
  return path.join(path.dirname(bundle.script), CODE_CACHE_DIR, `${path.basename(bundle.script, '.js')}-${hash}.bin`);
}

/**
 * Runs a prebuilt bundle's script form in this process, with its code cache when there is one V8 accepts; without
 * one, the code compiled during this run is saved as the process exits (written to a temporary file, then renamed: a
 * reader never sees half a cache). Resolves when the bundle's top level has run.
 */
export async function runPrebuiltScript(bundle: PrebuiltRunbook): Promise<void> {
  const source = readFileSync(bundle.script, 'utf8');
  const stamp = fileStamp(bundle.script);
  const cacheFile = stamp ? codeCacheFile(bundle, stamp) : undefined;
  let cachedData: Buffer | undefined;
  try {
    cachedData = cacheFile ? readFileSync(cacheFile) : undefined;
  } catch {
    // None yet.
  }
  const script = new vm.Script(source, { filename: bundle.script, cachedData });
  if (cacheFile && (!cachedData || script.cachedDataRejected))
    process.once('exit', () => saveCodeCache(script, cacheFile));
  const run = script.runInThisContext() as (require: NodeJS.Require, metaUrl: string) => Promise<void>;
  await run(createRequire(bundle.moduleUrl), bundle.moduleUrl);
}

function saveCodeCache(script: vm.Script, file: string): void {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(temporary, script.createCachedData(), { flag: 'wx' });
    renameSync(temporary, file);
  } catch {
    // A read-only install, a full disk: the next run compiles again.
    rmSync(temporary, { force: true });
  }
}
