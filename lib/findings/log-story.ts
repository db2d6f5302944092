/**
 * The lines of a job's log that carry its story: the line that says it failed, the frame in the worker's own code
 * that raised (with its source line), and the exception line that ends the traceback. The rest (library frames,
 * caret lines, polls) is in --verbose and the JSON report.
 */

/** A frame of a Python traceback or a Node stack. */
const PY_FRAME = /^\s*File "([^"]+)", line \d+/;
const NODE_FRAME = /^\s*at (?:.+ \()?((?:file:\/\/)?\/[^):]+|node:[^):]+):\d+/;
/** Frames that are a library's or the runtime's, not the worker's own code. */
const LIBRARY =
  /site-packages|dist-packages|\/lib\/python\d|\/lib64\/python\d|node_modules|^node:|<frozen |\/usr\/lib\/node/;
/** Python's exception line ("ValueError: …", "json.decoder.JSONDecodeError: …", "KeyError") or Node's ("TypeError: …"). */
const EXCEPTION =
  /^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Warning|Timeout|Failure)\b(?::.*)?$/;
/** The failure line: a level, a word, or structlog's console level column (`[error    ]`). */
const FAILED = /\b(?:ERROR|CRITICAL|FATAL|Exception|failed|Traceback)\b|\[(?:error|critical|exception) *\]/;

function frameFile(line: string): string | undefined {
  return PY_FRAME.exec(line)?.[1] ?? NODE_FRAME.exec(line)?.[1];
}

/**
 * At most four lines: the first failure line, the innermost frame of the worker's own code and its source line
 * (Python shows the source under the frame), and the last exception line. Lines not found are left out; a job
 * whose lines hold no failure keeps its first two lines.
 */
export function storyLines(lines: readonly string[]): string[] {
  const failedAt = lines.findIndex((l) => FAILED.test(l));
  if (failedAt < 0) return lines.slice(0, 2);
  const picked = new Set<number>([failedAt]);
  let ownFrame = -1;
  for (let i = failedAt; i < lines.length; i++) {
    const file = frameFile(lines[i]);
    if (file && !LIBRARY.test(file)) ownFrame = i;
  }
  if (ownFrame >= 0) {
    picked.add(ownFrame);
    const source = lines[ownFrame + 1];
    if (PY_FRAME.test(lines[ownFrame]) && source !== undefined && !frameFile(source) && !EXCEPTION.test(source.trim()))
      picked.add(ownFrame + 1);
  }
  const exceptionAt = lines.findLastIndex((l, i) => i > failedAt && EXCEPTION.test(l.trim()));
  if (exceptionAt >= 0) picked.add(exceptionAt);
  return [...picked].sort((a, b) => a - b).map((i) => lines[i]);
}
