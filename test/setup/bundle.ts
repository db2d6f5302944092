/**
 * The runbooks bundled from the current sources, once per test run, for the tests that start a runbook hundreds
 * of times (the fault harness, the requeue suite). A runbook through the tsx loader spends ~0.3 s of CPU
 * transforming and resolving its modules before it does anything; the same code as one bundle starts in ~0.2 s
 * instead of ~0.5 s. The bundle is built here from the sources of this very run, so it can never be stale; the
 * end-to-end runbook tests still run the `.mts` sources through tsx, as an operator does, and
 * test/integration/bundle.test.ts checks that both give the same output.
 */
import path from 'node:path';
import { build } from 'esbuild';

/** The runbooks, by name (runbooks/NAME.mts). */
export const RUNBOOKS = ['debug-stuck-jobs', 'diagnose-env', 'requeue'] as const;

/**
 * Bundles every runbook into `outDir/NAME.mjs`. Dependencies stay external: `outDir` must be inside the project
 * (e.g. node_modules/.cache/…) so that Node finds them in its node_modules.
 */
export async function bundleRunbooks(root: string, outDir: string): Promise<void> {
  await build({
    absWorkingDir: root,
    entryPoints: RUNBOOKS.map((name) => path.join(root, 'runbooks', `${name}.mts`)),
    outdir: outDir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'error',
  });
}
