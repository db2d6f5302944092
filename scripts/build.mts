/**
 * npm run build (and npm's prepare through scripts/prepare.mjs, after every npm install / npm ci): the prebuilt
 * runbooks in dist/, which the runbooks run instead of their sources while those are unchanged (lib/io/prebuilt.ts).
 *
 * From prepare it never fails the install: without esbuild (it comes with tsx) or when the build fails, it says so in
 * one line and the runbooks run from their TypeScript sources, as they do without a build.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PREBUILT_DIR } from '../lib/io/prebuilt.ts';
import { buildRunbooks } from './bundle.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const prepare = process.env.npm_lifecycle_event === 'prepare';
const started = performance.now();
try {
  const manifest = await buildRunbooks(ROOT, path.join(ROOT, PREBUILT_DIR));
  process.stdout.write(
    `built ${manifest.runbooks.length} runbooks into ${PREBUILT_DIR}/ from ${Object.keys(manifest.inputs).length} files in ${Math.round(performance.now() - started)} ms\n`,
  );
} catch (e) {
  const why = (e as Error).message.split('\n')[0];
  process.stderr.write(
    `${prepare ? 'warning' : 'error'}: the runbooks were not prebuilt (${why})\n  fix: npm run build; until then they run from their sources (slower to start)\n`,
  );
  process.exitCode = prepare ? 0 : 1;
}
