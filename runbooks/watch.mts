#!/usr/bin/env zx
// npx zx runbooks/watch.mts --help
import { WATCH_HELP, WATCH_OPTIONS } from '../lib/flows/usage.ts';
import { runbookEntry } from '../lib/io/entry.ts';

// The handlers present before the entry adds its own: Ctrl-C ends a watch (exit 0), it does not abort one.
const earlier = new Set(process.listeners('SIGINT'));

await runbookEntry({
  importMetaUrl: import.meta.url,
  options: WATCH_OPTIONS,
  help: WATCH_HELP,
  run: async (ports, flags) => {
    // Loaded only to run: --help needs no client library.
    const [watch, gather, spark] = await Promise.all([
      import('../lib/flows/watch.ts'),
      import('../lib/evidence/gather.ts'),
      import('../lib/evidence/watch-worker.ts'),
    ]);
    // Ctrl-C is how a watch ends: the entry's "finish what is in flight, exit 3" steps aside for the watch's own
    // stop (the end line, exit 0). Nothing is written by a watch; a second Ctrl-C quits at once.
    const stop = new AbortController();
    const ctrlC = () => (stop.signal.aborted ? process.exit(0) : stop.abort());
    for (const l of process.listeners('SIGINT')) if (!earlier.has(l)) process.off('SIGINT', l);
    process.on('SIGINT', ctrlC);
    return watch.runWatch(ports, flags, {
      stop: stop.signal,
      steps: [
        gather.configStep, // 1. check the laptop config (SUPABASE_URL, the key, SPARK_HOST)
        spark.watchSparkStep, // 2. connect to Spark once; the connection stays open for the whole watch
      ],
      // Then (lib/flows/watch.ts), every --every seconds until Ctrl-C, --for or --once: 3. one refresh — seven
      // bounded reads in one parallel round, and one small command on the open connection (the worker's pid, start,
      // log) → 4. the view, redrawn in place on a terminal → 5. at the end, the line saying what was seen.
      listen: () => {
        // On a terminal, Ctrl-C and q are read as keys (no signal reaches the npx and shell processes around this
        // one, which would die of it and turn the exit code into 130).
        const tty = process.stdin;
        if (!ports.prompt.interactive || !tty.isTTY) return () => {};
        const onKey = (b: Buffer) => (b.includes(0x03) || b.includes(0x71) ? ctrlC() : undefined);
        tty.setRawMode(true);
        tty.on('data', onKey).resume();
        return () => {
          tty.off('data', onKey).pause();
          tty.setRawMode(false);
        };
      },
    });
  },
});
