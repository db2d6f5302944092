/** Free space on the worker folder's file system (`df -P`, in KiB). */
import { diskLow } from '../../core/thresholds.ts';
import { check } from '../../io/steps.ts';
import { defineSection } from './section.ts';
import type { SparkEvidence } from './spark-evidence.ts';

export const diskSection = defineSection({
  name: 'disk',
  outputs: { disk: ['df'] },
  // df's last line, as `| tail -n 1` would give it.
  // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's own ${…} expansions, in a bash line
  script: () => ['section disk; D=$(df -Pk "$W" 2>/dev/null); D=${D##*$\'\\n\'}; [ -n "$D" ] && printf \'%s\\n\' "$D"'],
  parse: (out): Pick<SparkEvidence, 'disk'> => {
    // filesystem, blocks, used, available, capacity, mount point (which may hold spaces)
    const d = /^\S+\s+\d+\s+\d+\s+(\d+)\s+(\d+)%\s+(.+)$/.exec(out.text('disk').trim());
    return { disk: d ? { availableKb: Number(d[1]), usedPercent: Number(d[2]), mount: d[3] } : undefined };
  },
  show: ({ probe: { disk } }) =>
    disk
      ? [
          check(
            'disk',
            'Free disk on Spark',
            diskLow(disk) ? 'warning' : 'ok',
            `${Math.round(disk.availableKb / 1024)} MB free (${disk.usedPercent}% used) on ${disk.mount}`,
          ),
        ]
      : [],
});
