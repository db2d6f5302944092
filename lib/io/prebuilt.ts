/**
 * The prebuilt runbooks: npm's `prepare` (scripts/build.mts) bundles each runbook with everything it runs into one
 * file, dist/NAME.mjs, which needs about half the CPU of the TypeScript sources through tsx to start. The sources
 * stay the truth: a bundle is used only while every file it was built from is exactly as it was then (size and mtime,
 * listed in dist/manifest.json). An edited, added or removed source, a reinstalled package, a missing or older
 * manifest: the runbook runs from its sources. `HD_RUNBOOKS_PREBUILT=off` always runs the sources.
 *
 * Checked on every start, so it only stats files (about 250, a millisecond or two) and imports nothing.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The folder the bundles go to, next to runbooks/ (git-ignored). */
export const PREBUILT_DIR = 'dist';
export const MANIFEST_FILE = 'manifest.json';
/** Bumped when the layout of a bundle or of the manifest changes: an older build is then not used. */
export const MANIFEST_VERSION = 1;
export const PREBUILT_ENV = 'HD_RUNBOOKS_PREBUILT';

export interface PrebuiltManifest {
  version: number;
  builtAt: string;
  /** The runbooks bundled, by name (dist/NAME.mjs from runbooks/NAME.mts). */
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

/**
 * The file URL of the prebuilt bundle of the runbook at `runbookUrl` (…/runbooks/NAME.mts) when it may run instead
 * of the sources; undefined otherwise (also for a URL that is not a runbook's, e.g. a bundle's own).
 */
export function prebuiltRunbook(
  runbookUrl: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
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
  if (manifest?.version !== MANIFEST_VERSION || !manifest.runbooks?.includes(name) || !manifest.inputs)
    return undefined;
  const bundle = path.join(dir, `${name}.mjs`);
  if (!fileStamp(bundle)) return undefined;
  for (const [input, stamp] of Object.entries(manifest.inputs)) {
    const now = fileStamp(path.resolve(root, input));
    if (!now || now[0] !== stamp[0] || now[1] !== stamp[1]) return undefined;
  }
  return pathToFileURL(bundle).href;
}
