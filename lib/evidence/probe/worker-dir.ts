/** The worker folder as Spark resolves it (symlinks, a trailing slash): every later check is about this one. */
import { check } from '../../io/steps.ts';
import { defineSection, notReceived } from './section.ts';
import type { SparkEvidence } from './spark-evidence.ts';

export const workerDirSection = defineSection({
  name: 'worker-dir',
  outputs: { dir: [] },
  // The real folder, then the folder as given (after ~), when they differ.
  script: () => [
    'section dir; if [ -d "$W" ]; then printf "%s\\n" "$W"; [ "$W" = "$W0" ] || printf "%s\\n" "$W0"; else echo "-"; fi',
  ],
  parse: (out, ctx): Pick<SparkEvidence, 'workerDir'> => {
    const [dir = '', given] = out.text('dir').trim().split('\n');
    const exists = dir !== '' && dir !== '-';
    return { workerDir: { path: exists ? dir : ctx.workerDir, exists, ...(given && given !== dir ? { given } : {}) } };
  },
  show: ({ probe: { workerDir }, unseen }) => {
    if (unseen('dir')) return [notReceived('worker-dir', 'Worker folder')];
    if (!workerDir.exists) {
      return [
        check('worker-dir', 'Worker folder', 'failed', `${workerDir.path} does not exist on Spark`, {
          fix: 'set SPARK_WORKER_DIR',
        }),
      ];
    }
    const shown = workerDir.given
      ? `${workerDir.path} (SPARK_WORKER_DIR ${workerDir.given}, resolved on Spark)`
      : workerDir.path;
    return [check('worker-dir', 'Worker folder', 'ok', shown)];
  },
  // Without the folder (or without knowing it), the checks after this one would be about nothing.
  endsChecks: (probe) => !probe.workerDir.exists,
});
