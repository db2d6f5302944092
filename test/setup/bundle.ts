/**
 * The runbooks prebuilt from the current sources, once per test run, exactly as npm's prepare builds them for an
 * operator (scripts/bundle.ts), for the tests that start a runbook hundreds of times (the fault harness, the requeue
 * suite): the same code as one bundle starts in about half the CPU time of the sources through the tsx loader. The
 * bundle is built here from the sources of this very run, so it can never be stale; the end-to-end runbook tests
 * still run the `.mts` sources through tsx (HD_RUNBOOKS_PREBUILT=off), and test/integration/bundle.test.ts checks
 * that both give the same output and that a runbook hands over to its bundle only while the sources are unchanged.
 */
import { buildRunbooks } from '../../scripts/bundle.ts';

/** The runbooks the bundle and source runs are compared on, by name (runbooks/NAME.mts). */
export const RUNBOOKS = ['debug-stuck-jobs', 'diagnose-env', 'requeue'] as const;

/**
 * Bundles every runbook into `outDir/NAME.mjs`. `outDir` must be inside the project (e.g. node_modules/.cache/…) so
 * that the packages left out of the bundle are found in its node_modules.
 */
export async function bundleRunbooks(root: string, outDir: string): Promise<void> {
  await buildRunbooks(root, outDir);
}
