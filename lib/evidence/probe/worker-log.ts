/** The worker's log, logs/worker.log in its folder: its size and age, and a tail bounded in bytes. */
import { withoutMarkup } from '../../core/html.ts';
import { clip } from '../../core/text.ts';
import { check } from '../../io/steps.ts';
import { formatAge, minutesBetween } from '../evidence.ts';
import { defineSection, notReceived, type ProbeOutput } from './section.ts';
import type { SparkEvidence } from './spark-evidence.ts';

const TITLE = 'Worker log';
const LOG = '"$W/logs/worker.log"';

function parseLog(out: ProbeOutput, logTailBytes: number): SparkEvidence['log'] {
  const stat = /^(\d+) (\d+)$/.exec(out.text('logstat').trim());
  if (!stat) return { status: 'missing', tail: [] };
  const size = Number(stat[1]);
  const truncated = size > logTailBytes;
  const lines = out.text('logtail').split('\n');
  // A tail cut by bytes starts mid-line; that first fragment is dropped rather than shown half.
  if (truncated && lines.length > 1) lines.shift();
  return {
    status: 'ok',
    size,
    modifiedAt: new Date(Number(stat[2]) * 1000),
    tail: lines.filter((l) => l !== ''),
    truncated,
  };
}

export const workerLogSection = defineSection({
  name: 'worker-log',
  outputs: { logstat: ['stat'], logtail: ['tail'] },
  script: (o) => [
    'section logstat',
    `if [ -f ${LOG} ]; then stat -c '%s %Y' ${LOG}; else echo missing; fi`,
    'section logtail',
    `[ -r ${LOG} ] && tail -c ${o.logTailBytes} ${LOG}`,
  ],
  outputBytes: (o) => o.logTailBytes,
  parse: (out, ctx): Pick<SparkEvidence, 'log'> => ({ log: parseLog(out, ctx.logTailBytes) }),
  show: ({ probe: { log }, now, unseen }) => {
    if (unseen('logstat')) return [notReceived('worker-log', TITLE)];
    if (log.status !== 'ok') {
      return [
        check('worker-log', TITLE, 'warning', 'logs/worker.log does not exist', {
          fix: "make the worker log to logs/worker.log in its folder (writable by the worker's user)",
        }),
      ];
    }
    // A worker that logs a gateway's error page logs the whole page: its title stands for it.
    const last = log.tail.length ? `; last: ${clip(withoutMarkup(log.tail[log.tail.length - 1]), 120)}` : '';
    const line = `written ${formatAge(minutesBetween(now, log.modifiedAt))} ago, ${Math.round(log.size / 1024)} KB${last}`;
    return [check('worker-log', TITLE, 'ok', line)];
  },
});
