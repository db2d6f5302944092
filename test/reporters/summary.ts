/**
 * Ends every run with one plain line, `tests: N passed, N failed, N skipped`, that any CI log reader understands
 * (vitest's own summary is coloured and shaped for people).
 *
 * A test that never ran because its file or suite could not be set up (a sandbox that did not start, a
 * `beforeAll` that threw) is counted as failed, never as skipped: vitest itself shows those as skipped, which
 * once hid a whole harness that never ran. Every real skip is named with its reason above the line, and an
 * error outside any test (a global teardown that found leftovers, an unhandled rejection) counts as a failure.
 */
import type { Reporter, SerializedError, TestCase, TestModule, TestSuite } from 'vitest/node';
import { leftovers } from '../setup/global.ts';

/** The first error of the nearest suite or module around `test` that failed to set up, if any. */
function setupError(test: TestCase): SerializedError | undefined {
  let node: TestSuite | TestModule = test.parent;
  for (;;) {
    const errors = node.errors();
    if (errors.length) return errors[0];
    if (node.type === 'module') return undefined;
    node = node.parent;
  }
}

function oneLine(text: string | undefined): string {
  return (text ?? '').split('\n')[0]!.slice(0, 200);
}

export default class PlainSummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    let passed = 0;
    let failed = 0;
    const skipped: string[] = [];
    const notRun = new Map<string, { count: number; error: string }>();
    for (const m of testModules) {
      const tests = [...m.children.allTests()];
      for (const t of tests) {
        const result = t.result();
        if (result.state === 'passed') passed++;
        else if (result.state === 'failed') failed++;
        else {
          const error = setupError(t);
          if (error) {
            failed++;
            const entry = notRun.get(m.relativeModuleId) ?? { count: 0, error: oneLine(error.message) };
            entry.count++;
            notRun.set(m.relativeModuleId, entry);
          } else {
            const reason =
              result.state === 'skipped'
                ? (result.note ?? (t.options.mode === 'todo' ? 'todo' : 'no reason given'))
                : `${result.state} when the run ended`;
            skipped.push(`  ${t.fullName} (${m.relativeModuleId}): ${reason}`);
          }
        }
      }
      // A file that failed before it declared a test (an import that threw) still counts once.
      if (!tests.length && m.state() === 'failed') {
        failed++;
        notRun.set(m.relativeModuleId, { count: 1, error: oneLine(m.errors()[0]?.message) });
      }
    }
    failed += unhandledErrors.length;
    const left = leftovers();
    failed += left.length;
    const lines: string[] = [''];
    for (const l of left) lines.push(`left behind by the tests, counted as failed: ${l}`);
    for (const [file, { count, error }] of notRun)
      lines.push(`did not run: ${file}: ${count} test${count === 1 ? '' : 's'} counted as failed: ${error}`);
    for (const e of unhandledErrors) lines.push(`error outside any test, counted as failed: ${oneLine(e.message)}`);
    if (skipped.length) lines.push(`skipped (${skipped.length}):`, ...skipped);
    lines.push(`tests: ${passed} passed, ${failed} failed${skipped.length ? `, ${skipped.length} skipped` : ''}`, '');
    process.stdout.write(lines.join('\n'));
    // vitest's exit code knows nothing of leftovers or of tests that never ran: a red line is a red run.
    if (failed) process.exitCode = 1;
  }
}
