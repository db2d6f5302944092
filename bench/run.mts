/**
 * npm run bench [-- --quick] [-- --runs N] [-- --latency MS] [-- --rtt MS,MS] [-- --out FILE] [-- --only SECTIONS]
 *                [-- --profile] [-- --scale-jobs N]
 *
 * Measures the runbooks against the sandbox (never part of `npm test`; traffic only to 127.0.0.1): round trips and
 * wall time of a diagnosis against the lower bound and the old procedure, startup, flatness in table and log size,
 * the bulk requeue, the production-scale row (10 million jobs, every queue read's server time) and the watch view's
 * refresh (bench/watch-row.ts). Prints a table and writes bench/results.json (the committed full results; --quick writes
 * bench/results.quick.json, git-ignored, and never the full file). See README, "Performance".
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { PREBUILT_DIR, PREBUILT_ENV } from '../lib/io/prebuilt.ts';
import { buildRunbooks } from '../scripts/bundle.ts';
import { childEnv, hasGnuTime, runTimed } from './child.ts';
import { type CorpusResult, corpusReport, corpusSection } from './corpus.ts';
import { growLog, insertFailedJobsSql, insertJobsSql } from './data.ts';
import { type LatencyProxy, startLatencyProxy } from './latency-proxy.ts';
import { runOldProcedure, type SshTarget, sshArgs } from './old-procedure.ts';
import { bundledSources, type CpuProfile, type ProfileSummary, summarizeProfile } from './profile.ts';
import { type BenchSandbox, ROOT, startBenchSandbox, stopAllSandboxes } from './sandbox.ts';
import { SCALE_ROW_JOBS, type ScaleRowResult, scaleRow, scaleRowGoals, scaleRowReport } from './scale-row.ts';
import { costSummary, type RunCost, runCost, type Summary, summarize } from './stats.ts';
import { fmt, kb, ratio, table } from './table.ts';
import {
  WATCH_SMALL_JOBS,
  type WatchRowOptions,
  type WatchRowResult,
  watchDerivation,
  watchGoals,
  watchNotMeasured,
  watchReport,
  watchSmall,
} from './watch-row.ts';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    latency: { type: 'string', default: '50' },
    rtt: { type: 'string', default: '50,200' },
    out: { type: 'string' },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'scale-jobs': { type: 'string' },
    sources: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (flags.help) {
  process.stdout.write(`Usage: npm run bench [-- --quick] [-- --runs N] [-- --latency MS] [-- --rtt MS,MS] [-- --out FILE]
                      [-- --only corpus,startup,diagnosis,link,scale,scale-row,bulk,profile,watch] [-- --profile]
                      [-- --scale-jobs N] [-- --sources]

  --quick     about a minute, plus 2 x ~16 s for the watch row: 3 runs, one scenario, no link-model diagnosis
              runs, scale at 100,000 jobs / 100 MB log (debug-stuck-jobs only), the scale row at 100,000 jobs, bulk
              at 200 jobs (the SQL function's large case 2,000) with one run per mode, the watch row's 4 refreshes
              at 1,000 and at the scale row's size
  --runs N    runs per figure (default 5, quick 3); each figure is the median with min and max
  --latency   the emulated network latency in ms (default 50)
  --rtt       the link model's round-trip times in ms, each run with the old procedure on the same link
              (default 50,200: a direct path and a Tailscale DERP relay)
  --profile   also run one diagnosis (debug-stuck-jobs --ci, demo, sandbox --latency) under node --cpu-prof into a
              temp folder and print where its CPU time goes by package (self and on-stack time, per thread);
              the same as adding "profile" to --only
  --scale-jobs N  the production-scale row's size (default 10,000,000, quick 100,000): its own sandbox seeded
              with N jobs (npm run sandbox -- seed), then debug-stuck-jobs, diagnose-env, a requeue preview of
              N/200 jobs and an applied requeue of N/100 through the SQL function, each with the server time of
              its queue reads; part of "scale" (with the 1,000 / 1M flatness runs) or alone as "scale-row";
              before those steps, the watch's refreshes on the seeded table (the watch row's large case)
  --only watch  the watch row: watch.mts at its default --every 5 on the link model at the first --rtt, for
              --runs refreshes after the first, on 1,000 jobs: per refresh the wall against 1 RTT + server time,
              HTTP requests and rounds, SSH execs and connections, bytes (its large case runs in the scale row)
  --sources   run the runbooks from their TypeScript sources (HD_RUNBOOKS_PREBUILT=off); by default the bench first
              builds dist/ as npm install's prepare does (npm run build) and the runbooks run their prebuilt bundles
  --out FILE  where the JSON goes (default bench/results.json; with --quick or --only bench/results.quick.json,
              git-ignored: a quick or partial run never overwrites the committed full results)
`);
  process.exit(0);
}

const FULL_RESULTS = path.join(ROOT, 'bench', 'results.json');
// Only a full run (every section, not --quick) writes the committed results; a partial one goes to the quick file.
const PARTIAL = flags.quick || flags.only !== undefined;
const OUT = path.resolve(flags.out ?? path.join(ROOT, 'bench', PARTIAL ? 'results.quick.json' : 'results.json'));
if (PARTIAL && OUT === FULL_RESULTS) {
  process.stderr.write(
    `bench: ${flags.quick ? '--quick' : '--only'} never writes bench/results.json (the committed full results): drop --out\n`,
  );
  process.exit(2);
}

const QUICK = flags.quick;
const RUNS = Math.max(1, Math.min(25, Number(flags.runs ?? (QUICK ? 3 : 5)) || 1));
const L = Math.max(0, Math.min(1000, Number(flags.latency) || 0));
const RTTS = [
  ...new Set(
    flags.rtt
      .split(',')
      .map((x) => Math.round(Number(x)))
      .filter((x) => Number.isFinite(x) && x > 0 && x <= 1000),
  ),
];
if (!RTTS.length) {
  process.stderr.write(`bench: --rtt ${flags.rtt}: no round-trip time between 1 and 1000 ms\n`);
  process.exit(2);
}
const SECTIONS = new Set(
  (
    flags.only ??
    (QUICK ? 'corpus,startup,diagnosis,watch,scale,bulk' : 'corpus,startup,diagnosis,link,watch,scale,bulk')
  ).split(','),
);
if (flags.profile) SECTIONS.add('profile');
const RUNBOOK_TIMEOUT_MS = 120_000;
const SCALE = QUICK
  ? { small: { jobs: 1_000, logMb: 1 }, large: { jobs: 100_000, logMb: 100 }, note: 'quick: scaled down' }
  : { small: { jobs: 1_000, logMb: 1 }, large: { jobs: 1_000_000, logMb: 1024 }, note: '' };
const BULK_JOBS = QUICK ? 200 : 10_000;
/** The SQL function's large case: the size it is for. */
const BULK_RPC_JOBS = QUICK ? 2_000 : 100_000;
const BULK_RUNS = QUICK ? 1 : Math.min(RUNS, 3);
const SCALE_RUNBOOKS = QUICK ? ['debug-stuck-jobs'] : ['debug-stuck-jobs', 'diagnose-env'];
const SCALE_ROW = Number(flags['scale-jobs'] ?? (QUICK ? 100_000 : SCALE_ROW_JOBS));
if (!Number.isInteger(SCALE_ROW) || SCALE_ROW < 1_000 || SCALE_ROW > 100_000_000) {
  process.stderr.write(`bench: --scale-jobs ${flags['scale-jobs']}: a whole number from 1000 to 100000000\n`);
  process.exit(2);
}

const work = mkdtempSync(path.join(os.tmpdir(), 'hd-bench-'));
const proxies: LatencyProxy[] = [];
const log = (m: string) => process.stderr.write(`bench: ${m}\n`);

async function cleanup(): Promise<void> {
  await Promise.all(proxies.map((p) => p.close().catch(() => {})));
  await stopAllSandboxes();
  rmSync(work, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping the sandboxes`);
    void cleanup().finally(() => process.exit(130));
  });
}

// --- measuring one runbook -------------------------------------------------------------------------------------

interface Measured {
  wallMs: Summary;
  maxRssMb: Summary;
  costs: RunCost[];
  codes: number[];
  /** Per run: what the runbook printed as its SSH connect time, when it did. */
  connectMs: Summary;
}

/** A runbook's environment: the bench's children's, and with --sources the switch to the TypeScript sources. */
function runbookEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return childEnv({ ...(flags.sources ? { [PREBUILT_ENV]: 'off' } : {}), ...extra });
}

function npxZx(script: string, args: string[], env?: Record<string, string>) {
  return runTimed('npx', ['zx', script, ...args], {
    cwd: ROOT,
    env: runbookEnv(env),
    timeoutMs: RUNBOOK_TIMEOUT_MS,
  });
}

const warmed = new Set<string>();

/** Warms the file cache and tsx's transform cache for a script, once per bench: its first run is not measured. */
async function warmUp(script: string, args: string[]): Promise<void> {
  if (warmed.has(script)) return;
  warmed.add(script);
  await npxZx(script, args);
}

/** `runs` measured runs, each with the sandbox's stats reset before and read after. */
async function measureRunbook(sb: BenchSandbox, runbook: string, args: string[], runs = RUNS): Promise<Measured> {
  const script = `runbooks/${runbook}.mts`;
  await warmUp(script, args);
  const walls: number[] = [];
  const rss: number[] = [];
  const costs: RunCost[] = [];
  const codes: number[] = [];
  const connect: number[] = [];
  for (let i = 0; i < runs; i++) {
    await sb.resetStats();
    const r = await npxZx(script, args);
    const stats = await sb.stats();
    if (r.code === null || r.code >= 2) {
      throw new Error(
        `${runbook} ${args.join(' ')} exited ${r.code}:\n${r.stdout.slice(-1500)}\n${r.stderr.slice(-1500)}`,
      );
    }
    walls.push(r.wallMs);
    if (r.maxRssMb !== undefined) rss.push(r.maxRssMb);
    costs.push(runCost(stats));
    codes.push(r.code);
    const c = /Connect to Spark: .*\((\d+) ms\)/.exec(r.stdout);
    if (c) connect.push(Number(c[1]));
  }
  return { wallMs: summarize(walls), maxRssMb: summarize(rss), costs, codes, connectMs: summarize(connect) };
}

interface OldMeasured {
  wallMs: Summary;
  costs: RunCost[];
  steps: Record<string, Summary>;
}

async function measureOld(sb: BenchSandbox, target: SshTarget, useRequests: boolean): Promise<OldMeasured> {
  if (!warmed.has('old')) {
    warmed.add('old');
    await runOldProcedure(target, { cwd: work, useRequests, timeoutMs: 60_000 });
  }
  const walls: number[] = [];
  const costs: RunCost[] = [];
  const steps: Record<string, number[]> = {};
  for (let i = 0; i < RUNS; i++) {
    await sb.resetStats();
    const r = await runOldProcedure(target, { cwd: work, useRequests, timeoutMs: 60_000 });
    const stats = await sb.stats();
    if (!r.ok) throw new Error(`the old procedure failed:\n${r.output}`);
    walls.push(r.wallMs);
    costs.push(runCost(stats));
    for (const s of r.steps) {
      const list = steps[s.what] ?? [];
      list.push(s.wallMs);
      steps[s.what] = list;
    }
  }
  return {
    wallMs: summarize(walls),
    costs,
    steps: Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, summarize(v)])),
  };
}

function costOf(m: { costs: RunCost[] }) {
  const k = (key: keyof RunCost) => costSummary(m.costs, key);
  return {
    requests: k('requests'),
    laptopRequests: k('laptopRequests'),
    sparkRequests: k('sparkRequests'),
    workerRequests: k('workerRequests'),
    writes: k('writes'),
    rounds: k('rounds'),
    sshConnections: k('sshConnections'),
    execChannels: k('execChannels'),
    bytesMoved: k('bytesMoved'),
    httpBytes: k('httpBytes'),
    sshBytes: k('sshBytes'),
  };
}

// --- the sections ----------------------------------------------------------------------------------------------

const RUNBOOKS = ['debug-stuck-jobs', 'diagnose-env'] as const;

interface Results {
  generatedAt: string;
  machine: Record<string, unknown>;
  config: Record<string, unknown>;
  startup?: {
    emptyMs: Summary;
    help: Record<string, { wallMs: Summary; ratio: number }>;
  };
  lowerBound: Record<string, unknown>;
  corpus?: CorpusResult;
  diagnosis: Array<Record<string, unknown>>;
  oldProcedure: Array<Record<string, unknown>>;
  scale: Array<Record<string, unknown>>;
  bulk: Array<Record<string, unknown>>;
  scaleRow?: ScaleRowResult;
  /** The watch row's small case (its large case is scaleRow.watch). */
  watch?: WatchRowResult;
  profile?: {
    run: string;
    latencyMs: number;
    wallMs: number;
    exitCode: number | null;
    threads: Array<{ thread: string; file: string; summary: ProfileSummary }>;
  };
  goals: Array<{ goal: string; target: string; measured: string; met: boolean | null }>;
  notes: string[];
}

const results: Results = {
  generatedAt: new Date().toISOString(),
  machine: {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpu: os.cpus()[0]?.model,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  },
  config: {
    quick: QUICK,
    runs: RUNS,
    latencyMs: L,
    scale: SCALE,
    bulkJobs: BULK_JOBS,
    bulkRpcJobs: BULK_RPC_JOBS,
    scaleRowJobs: SCALE_ROW,
  },
  lowerBound: {},
  diagnosis: [],
  oldProcedure: [],
  scale: [],
  bulk: [],
  goals: [],
  notes: [],
};

async function startupSection(): Promise<void> {
  log('startup: npx zx <runbook> --help against npx zx of an empty .mts');
  const empty = path.join(work, 'empty.mts');
  writeFileSync(empty, 'export {};\n');
  const names = [
    'debug-stuck-jobs',
    'diagnose-env',
    ...(existsSync(path.join(ROOT, 'runbooks/requeue.mts')) ? ['requeue'] : []),
  ];
  const emptyWalls: number[] = [];
  const helpWalls: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  // Warm the file cache and tsx's transform cache once; then interleave, so drift hits both sides alike.
  await npxZx(empty, []);
  for (const n of names) await warmUp(`runbooks/${n}.mts`, ['--help']);
  const runs = QUICK ? RUNS : Math.max(RUNS, 7);
  for (let i = 0; i < runs; i++) {
    emptyWalls.push((await npxZx(empty, [])).wallMs);
    for (const n of names) {
      const r = await npxZx(`runbooks/${n}.mts`, ['--help']);
      if (r.code !== 0) throw new Error(`${n} --help exited ${r.code}: ${r.stderr.slice(-500)}`);
      helpWalls[n].push(r.wallMs);
    }
  }
  const emptyMs = summarize(emptyWalls);
  results.startup = {
    emptyMs,
    help: Object.fromEntries(
      names.map((n) => {
        const s = summarize(helpWalls[n]);
        return [n, { wallMs: s, ratio: s.median / emptyMs.median }];
      }),
    ),
  };
}

async function emptyStartupMs(): Promise<number> {
  if (!results.startup) await startupSection();
  return results.startup!.emptyMs.median;
}

/** Does Spark's python3 have `requests`? The old snippet needs it; without, its urllib twin is used. */
async function sparkHasRequests(target: SshTarget): Promise<boolean> {
  const r = await runTimed('ssh', sshArgs(target, ['python3', '-c', "'import requests'"]), {
    cwd: work,
    env: childEnv(),
    timeoutMs: 30_000,
    memory: false,
  });
  return r.code === 0;
}

function sparkTarget(sb: BenchSandbox, port = sb.info.spark.port, knownHosts = sb.info.spark.knownHosts): SshTarget {
  return { host: '127.0.0.1', port, user: sb.info.spark.user, keyPath: sb.info.spark.keyPath, knownHosts };
}

/** Items 1 and 2: round trips and wall time, sandbox latency model, plus the old procedure. */
async function diagnosisSection(sb: BenchSandbox, startupMs: number): Promise<void> {
  const target = sparkTarget(sb);
  const useRequests = await sparkHasRequests(target);
  if (!useRequests) results.notes.push("Spark's python3 has no `requests`: the old snippet ran with urllib instead.");
  const scenarios = QUICK ? ['demo'] : ['healthy', 'demo'];
  const bound = startupMs + 2 * L;
  results.lowerBound.sandboxLatency = {
    model: `sandbox --latency ${L}: the API holds every response ${L} ms, Spark holds every exec ${L} ms; TCP and the SSH handshake are not delayed`,
    derivation: [
      `HTTP: the reads are independent, so one parallel round: 1 x ${L} ms`,
      `SSH: one exec channel (${L} ms) whose probe makes one request from Spark to the API (reach check, ${L} ms): 2 x ${L} ms`,
      'both run in parallel: max(HTTP, SSH) = SSH',
      `plus process startup: npx zx of an empty .mts (${startupMs.toFixed(0)} ms, median)`,
    ],
    boundMs: bound,
  };
  for (const scenario of scenarios) {
    log(`diagnosis: scenario ${scenario}, latency ${L} ms`);
    await sb.latency(0);
    await sb.scenario(scenario);
    await sb.quietWorker();
    await sb.latency(L);
    for (const rb of RUNBOOKS) {
      const m = await measureRunbook(sb, rb, ['--ci', '--env-file', sb.envFile]);
      results.diagnosis.push({
        model: 'sandbox-latency',
        latencyMs: L,
        runbook: rb,
        scenario,
        exitCodes: [...new Set(m.codes)],
        ...costOf(m),
        wallMs: m.wallMs,
        maxRssMb: m.maxRssMb,
        sshConnectMs: m.connectMs,
        lowerBoundMs: bound,
        ratioToBound: m.wallMs.median / bound,
      });
    }
    log(`old procedure: scenario ${scenario}`);
    const old = await measureOld(sb, target, useRequests);
    results.oldProcedure.push({
      model: 'sandbox-latency',
      latencyMs: L,
      scenario,
      python: useRequests ? 'requests' : 'urllib',
      ...costOf(old),
      wallMs: old.wallMs,
      steps: old.steps,
    });
  }
}

/**
 * Item 2 on a link that charges every round trip (TCP, SSH handshake): the same runs through latency proxies, once
 * per round-trip time, each with the old procedure on the same link right after the runbooks.
 */
async function linkSection(sb: BenchSandbox, startupMs: number): Promise<void> {
  for (const rtt of RTTS) await linkAtRtt(sb, startupMs, rtt);
}

async function linkAtRtt(sb: BenchSandbox, startupMs: number, rtt: number): Promise<void> {
  log(`link: every round trip ${rtt} ms through a TCP proxy (sandbox latency 0)`);
  await sb.latency(0);
  await sb.scenario('demo');
  const api = await startLatencyProxy({ targetPort: Number(new URL(sb.info.cloud.url).port), rttMs: rtt });
  proxies.push(api);
  const ssh = await startLatencyProxy({ targetPort: sb.info.spark.port, rttMs: rtt });
  proxies.push(ssh);
  const apiUrl = `http://127.0.0.1:${api.port}`;
  const cloudUrl = sb.info.cloud.url;
  // The same host key under the proxy's port; the laptop, the worker's .env and the app's env all name the proxy.
  const knownHosts = path.join(work, `known_hosts.link-${rtt}`);
  writeFileSync(
    knownHosts,
    readFileSync(sb.info.spark.knownHosts, 'utf8').replace(
      `[127.0.0.1]:${sb.info.spark.port}`,
      `[127.0.0.1]:${ssh.port}`,
    ),
  );
  const appEnv = path.join(work, `app.link-${rtt}.env`);
  writeFileSync(appEnv, readFileSync(sb.info.app.envFile, 'utf8').replaceAll(cloudUrl, apiUrl));
  const envFile = path.join(work, `laptop.link-${rtt}.env`);
  writeFileSync(
    envFile,
    readFileSync(sb.envFile, 'utf8')
      .replaceAll(cloudUrl, apiUrl)
      .replace(/^SPARK_PORT=.*$/m, `SPARK_PORT=${ssh.port}`)
      .replace(/^SPARK_KNOWN_HOSTS=.*$/m, `SPARK_KNOWN_HOSTS=${knownHosts}`)
      .replace(/^APP_ENV_FILE=.*$/m, `APP_ENV_FILE=${appEnv}`),
    { mode: 0o600 },
  );
  const workerEnv = path.join(sb.workerDir, '.env');
  writeFileSync(workerEnv, readFileSync(workerEnv, 'utf8').replaceAll(cloudUrl, apiUrl), { mode: 0o600 });
  try {
    await measureLink(sb, startupMs, rtt, envFile, sparkTarget(sb, ssh.port, knownHosts));
  } finally {
    writeFileSync(workerEnv, readFileSync(workerEnv, 'utf8').replaceAll(apiUrl, cloudUrl), { mode: 0o600 });
    await Promise.all([api.close(), ssh.close()]);
    proxies.length = 0;
  }
}

async function measureLink(
  sb: BenchSandbox,
  startupMs: number,
  rtt: number,
  envFile: string,
  target: SshTarget,
): Promise<void> {
  await sb.quietWorker();

  const useRequests = await sparkHasRequests(target);
  // How many round trips OpenSSH needs to log in and run a no-op: the old procedure pays this twice.
  const sshTrue: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await runTimed('ssh', sshArgs(target, ['true']), {
      cwd: work,
      env: childEnv(),
      timeoutMs: 30_000,
      memory: false,
    });
    sshTrue.push(r.wallMs);
  }
  const bound = startupMs + 9 * rtt;
  results.lowerBound[`link-${rtt}`] = {
    rttMs: rtt,
    model: `a link with a ${rtt} ms round trip on every path (laptop-Supabase, laptop-Spark, Spark-Supabase), no TLS (the sandbox speaks plain HTTP)`,
    derivation: [
      'HTTP: TCP connect (1 RTT) + the parallel reads (1 RTT) = 2 RTT',
      'SSH, fewest round trips the protocol allows: TCP connect (1), server version + KEXINIT (1), ECDH key exchange (1), ' +
        'NEWKEYS + ssh-userauth service request (1), publickey auth with the signature sent at once (1), channel open (1), ' +
        'exec with the script on stdin until its output (1) = 7 RTT',
      "inside the exec, the probe's reach check from Spark: TCP connect + one request = 2 RTT",
      `SSH path 9 RTT > HTTP path 2 RTT: bound = startup + 9 x ${rtt} ms`,
      `with TLS to Supabase Cloud add 1 RTT (TLS 1.3) to the HTTP path and to the reach check: still SSH-bound`,
    ],
    boundMs: bound,
    measuredOpenSshLoginAndTrueMs: summarize(sshTrue),
  };
  for (const rb of RUNBOOKS) {
    const m = await measureRunbook(sb, rb, ['--ci', '--env-file', envFile]);
    results.diagnosis.push({
      model: 'link-rtt',
      rttMs: rtt,
      runbook: rb,
      scenario: 'demo',
      exitCodes: [...new Set(m.codes)],
      ...costOf(m),
      wallMs: m.wallMs,
      maxRssMb: m.maxRssMb,
      sshConnectMs: m.connectMs,
      sshConnectRtts: m.connectMs.median / rtt,
      lowerBoundMs: bound,
      ratioToBound: m.wallMs.median / bound,
    });
  }
  const old = await measureOld(sb, target, useRequests);
  results.oldProcedure.push({
    model: 'link-rtt',
    rttMs: rtt,
    scenario: 'demo',
    python: useRequests ? 'requests' : 'urllib',
    ...costOf(old),
    wallMs: old.wallMs,
    steps: old.steps,
  });
}

/** Item 4: the same diagnosis at a small and a large table and log. */
async function scaleSection(sb: BenchSandbox): Promise<void> {
  await sb.latency(0);
  await sb.scenario('healthy');
  await sb.quietWorker();
  let jobs = Number((await sb.sql<{ n: number }>('select count(*)::int as n from public.hd_ingestion_jobs')).rows[0].n);
  for (const [label, size] of [
    ['small', SCALE.small],
    ['large', SCALE.large],
  ] as const) {
    log(`scale: ${size.jobs.toLocaleString('en')} jobs, ${size.logMb} MB worker.log`);
    await sb.latency(0);
    const t = performance.now();
    if (size.jobs > jobs) {
      await sb.sql(insertJobsSql(size.jobs - jobs, jobs));
      jobs = size.jobs;
    }
    // Settle the table as a long-lived one would be (no autovacuum run in the middle of a measurement).
    await sb.sql('vacuum analyze public.hd_ingestion_jobs');
    const logBytes = growLog(sb.workerDir, size.logMb * 1024 * 1024);
    log(`scale: data ready in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    await sb.latency(L);
    for (const rb of SCALE_RUNBOOKS) {
      const m = await measureRunbook(sb, rb, ['--ci', '--env-file', sb.envFile]);
      results.scale.push({
        label,
        note: label === 'large' ? SCALE.note : '',
        jobs,
        logBytes,
        latencyMs: L,
        runbook: rb,
        ...costOf(m),
        wallMs: m.wallMs,
        maxRssMb: m.maxRssMb,
      });
    }
  }
}

/** One bulk requeue measured: how it writes, how many jobs, and its goal (judged at full size only). */
interface BulkMode {
  mode: 'per-job' | 'sql-function';
  rpc: 'off' | 'only';
  jobs: number;
  fullJobs: number;
  goalMs: number;
}

/**
 * Item 5: bulk requeue of failed jobs, per-job compare-and-set and with the SQL function (10,000 jobs each, and
 * 100,000 with the SQL function: the size the SQL function is for).
 */
async function bulkSection(sb: BenchSandbox): Promise<void> {
  const script = path.join(ROOT, 'runbooks/requeue.mts');
  if (!existsSync(script)) {
    results.bulk.push({ notMeasured: 'runbooks/requeue.mts does not exist' });
    return;
  }
  await sb.latency(0);
  await sb.scenario('healthy');
  // The worker would pick the requeued jobs up at once: stopped, so the table holds still and every request is ours.
  await sb.worker('stop');
  const modes: BulkMode[] = [
    { mode: 'per-job', rpc: 'off', jobs: BULK_JOBS, fullJobs: 10_000, goalMs: 30_000 },
    { mode: 'sql-function', rpc: 'only', jobs: BULK_JOBS, fullJobs: 10_000, goalMs: 3_000 },
    { mode: 'sql-function', rpc: 'only', jobs: BULK_RPC_JOBS, fullJobs: 100_000, goalMs: 30_000 },
  ];
  for (const m of modes) {
    if (m.rpc === 'only') {
      await sb.latency(0);
      for (const f of ['002_requeue_rpc.sql', '003_requeue_again.sql'])
        await sb.sql(readFileSync(path.join(ROOT, 'sandbox/migrations', f), 'utf8'));
    }
    results.bulk.push(await bulkRuns(sb, script, m));
  }
}

/** The runs of one bulk mode, each on freshly inserted failed jobs; a row of the bulk table. */
async function bulkRuns(sb: BenchSandbox, script: string, m: BulkMode): Promise<Record<string, unknown>> {
  log(`bulk: ${m.jobs.toLocaleString('en')} failed jobs, ${m.mode}, latency ${L} ms`);
  const audit = path.join(work, 'requeue-audit.jsonl');
  const args = ['--status', 'failed', '--limit', String(m.jobs), '--apply', '--yes', '--reason', 'bench: bulk requeue'];
  args.push('--rpc', m.rpc, '--skip-fix-gate', 'the bench measures writes, not the gate');
  args.push('--audit', audit, '--ci', '--env-file', sb.envFile);
  const walls: number[] = [];
  const requests: number[] = [];
  const writes: number[] = [];
  let failure: string | undefined;
  for (let i = 0; i < BULK_RUNS && !failure; i++) {
    await sb.latency(0);
    await sb.sql('truncate public.hd_assets, public.hd_ingestion_jobs');
    await sb.sql(insertFailedJobsSql(m.jobs));
    await sb.sql('vacuum analyze public.hd_ingestion_jobs');
    rmSync(audit, { force: true });
    await sb.latency(L);
    await sb.resetStats();
    const r = await runTimed('npx', ['zx', script, ...args], { cwd: ROOT, env: runbookEnv(), timeoutMs: 600_000 });
    const stats = await sb.stats();
    await sb.latency(0);
    const queued = Number(
      (await sb.sql<{ n: number }>("select count(*)::int as n from public.hd_ingestion_jobs where status = 'queued'"))
        .rows[0].n,
    );
    if (r.code !== 0 || queued !== m.jobs) {
      failure = `exit ${r.code}, ${queued} of ${m.jobs} queued: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' / ')}`;
      break;
    }
    walls.push(r.wallMs);
    requests.push(stats.httpTotal);
    writes.push(stats.httpWrites);
    // A slow path is measured once: repeating a minute-long run would break the bench's time budget.
    if (r.wallMs > 60_000) break;
  }
  const row = { mode: m.mode, jobs: m.jobs, latencyMs: L, goalMs: m.goalMs, fullJobs: m.fullJobs };
  if (failure) {
    results.notes.push(`bulk requeue, ${m.mode}, ${m.jobs.toLocaleString('en')} jobs: not measured: ${failure}`);
    return { ...row, notMeasured: failure };
  }
  return {
    ...row,
    note: m.jobs < m.fullJobs ? 'quick: scaled down' : '',
    requests: summarize(requests),
    writes: summarize(writes),
    wallMs: summarize(walls),
  };
}

/**
 * One diagnosis under `node --cpu-prof` (zx's CLI with tsx's loader, as `npx zx` runs it, minus npm: --cpu-prof is
 * not allowed in NODE_OPTIONS), its profiles in a temp folder that goes with the bench's work folder. The file
 * caches are warm (the runbook ran once before); the profiler's own overhead makes the wall a little longer.
 */
async function profileSection(sb: BenchSandbox): Promise<void> {
  const runbook = 'debug-stuck-jobs';
  const script = `runbooks/${runbook}.mts`;
  const args = ['--ci', '--env-file', sb.envFile];
  log(`profile: ${runbook} --ci, demo, latency ${L} ms, under node --cpu-prof`);
  await sb.latency(0);
  await sb.scenario('demo');
  await sb.quietWorker();
  await sb.latency(L);
  await warmUp(script, args);
  const dir = mkdtempSync(path.join(work, 'cpu-prof-'));
  const zxCli = path.join(ROOT, 'node_modules', 'zx', 'build', 'cli.js');
  const r = await runTimed(
    process.execPath,
    ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=250', '--import=tsx', zxCli, script, ...args],
    { cwd: ROOT, env: runbookEnv(), timeoutMs: RUNBOOK_TIMEOUT_MS, memory: false },
  );
  if (r.code === null || r.code >= 2)
    throw new Error(`profile: ${runbook} exited ${r.code}:\n${r.stderr.slice(-1500)}`);
  // Frames in a prebuilt bundle (dist/NAME.mjs) are charged to the source file each line came from.
  const distUrl = pathToFileURL(path.join(ROOT, PREBUILT_DIR)).href;
  const bundled = bundledSources((url) =>
    url.startsWith(`${distUrl}/`) && url.endsWith('.mjs') ? readFileSync(fileURLToPath(url), 'utf8') : undefined,
  );
  // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread, the other tsx's loader thread.
  const threads = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => {
      const tid = Number(/\.(\d+)\.\d+\.cpuprofile$/.exec(f)?.[1]);
      const profile = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as CpuProfile;
      return {
        thread: tid === 0 ? 'main' : `loader (thread ${tid})`,
        file: f,
        summary: summarizeProfile(profile, ROOT, 10, bundled),
      };
    })
    .sort((a, b) => (a.thread === 'main' ? -1 : b.thread === 'main' ? 1 : a.thread.localeCompare(b.thread)));
  if (!threads.length) throw new Error(`profile: no .cpuprofile in ${dir}:\n${r.stderr.slice(-1500)}`);
  results.profile = {
    run: `${runbook} --ci (demo), sandbox --latency ${L}`,
    latencyMs: L,
    wallMs: r.wallMs,
    exitCode: r.code,
    threads,
  };
}

function profileReport(p: NonNullable<Results['profile']>): string[] {
  const out = [`CPU profile: ${p.run}, one run under --cpu-prof, wall ${p.wallMs.toFixed(0)} ms (exit ${p.exitCode})`];
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  for (const { thread, summary } of p.threads) {
    const main = thread === 'main';
    out.push(
      `${thread}: profile ${ms(summary.totalMs)}, on CPU ${ms(summary.busyMs)}`,
      table(
        ['category', 'self', 'self %', 'on stack'],
        summary.categories
          .slice(0, main ? 14 : 6)
          .map((c) => [
            c.category,
            ms(c.selfMs),
            `${((100 * c.selfMs) / summary.totalMs).toFixed(1)}%`,
            c.category.startsWith('(') ? '' : ms(c.onStackMs),
          ]),
      ),
    );
    out.push(
      `${thread}: top functions by self time`,
      table(
        ['function', 'category', 'where', 'self'],
        summary.functions.slice(0, main ? 8 : 5).map((f) => [f.name, f.category, f.where, ms(f.selfMs)]),
      ),
    );
  }
  out.push('');
  return out;
}

// --- goals and output ------------------------------------------------------------------------------------------

type Row = Record<string, unknown> & { wallMs?: Summary; maxRssMb?: Summary };
const S = (r: Row, k: string) => r[k] as Summary;

function evaluateGoals(): void {
  const g = results.goals;
  const add = (goal: string, target: string, measured: string, met: boolean | null) =>
    g.push({ goal, target, measured, met });
  const sandboxRows = results.diagnosis.filter((d) => d.model === 'sandbox-latency');
  for (const d of sandboxRows) {
    const name = `${d.runbook} (${d.scenario})`;
    add(`${name}: HTTP requests`, '<= 6', fmt(S(d, 'requests')), S(d, 'requests').max <= 6);
    add(`${name}: sequential rounds`, '<= 2', fmt(S(d, 'rounds')), S(d, 'rounds').max <= 2);
    add(
      `${name}: SSH connections`,
      '= 1',
      fmt(S(d, 'sshConnections')),
      S(d, 'sshConnections').max === 1 && S(d, 'sshConnections').min === 1,
    );
    const r = d.ratioToBound as number;
    add(`${name}: wall / lower bound at ${L} ms`, '<= 1.25x', `${r.toFixed(2)}x`, r <= 1.25);
    const old = results.oldProcedure.find((o) => o.model === d.model && o.scenario === d.scenario);
    if (old)
      add(
        `${name}: wall vs old procedure (sandbox latency)`,
        '<= 1.0x',
        ratio(S(d, 'wallMs').median, S(old, 'wallMs').median),
        S(d, 'wallMs').median <= S(old, 'wallMs').median,
      );
  }
  for (const d of results.diagnosis.filter((x) => x.model === 'link-rtt')) {
    const name = `${d.runbook} (${d.scenario}, link ${d.rttMs} ms RTT)`;
    const r = d.ratioToBound as number;
    add(`${name}: wall / lower bound`, '<= 1.25x', `${r.toFixed(2)}x`, r <= 1.25);
    const old = results.oldProcedure.find((o) => o.model === 'link-rtt' && o.rttMs === d.rttMs);
    if (old)
      add(
        `${name}: wall vs old procedure`,
        '<= 1.0x',
        ratio(S(d, 'wallMs').median, S(old, 'wallMs').median),
        S(d, 'wallMs').median <= S(old, 'wallMs').median,
      );
  }
  if (results.startup) {
    for (const [n, h] of Object.entries(results.startup.help))
      add(`${n} --help startup / empty script`, '<= 1.1x', `${h.ratio.toFixed(2)}x`, h.ratio <= 1.1);
  }
  for (const rb of RUNBOOKS) {
    const small = results.scale.find((s) => s.runbook === rb && s.label === 'small');
    const large = results.scale.find((s) => s.runbook === rb && s.label === 'large');
    if (!small || !large) continue;
    const tag = `${rb} at ${Number(large.jobs).toLocaleString('en')} jobs / ${Math.round(Number(large.logBytes) / 2 ** 20)} MB log`;
    // Scaled down (--quick) is shown, not judged: the goals are for a million jobs and a 1 GB log.
    const judge = (met: boolean) => (QUICK ? null : met);
    add(
      `${tag}: same requests as at 1,000 / 1 MB`,
      `= ${S(small, 'requests').median}`,
      fmt(S(large, 'requests')),
      judge(
        S(large, 'requests').max === S(small, 'requests').max && S(large, 'requests').min === S(small, 'requests').min,
      ),
    );
    add(
      `${tag}: bytes moved`,
      '<= 256 KB',
      kb(S(large, 'bytesMoved')),
      judge(S(large, 'bytesMoved').max <= 256 * 1024),
    );
    const mem = large.maxRssMb as Summary;
    add(`${tag}: peak memory`, '<= 150 MB', fmt(mem, ' MB'), mem.n ? judge(mem.max <= 150) : null);
  }
  if (results.scaleRow) g.push(...scaleRowGoals(results.scaleRow));
  g.push(...watchGoals(results.watch, results.scaleRow?.watch, SCALE_ROW_JOBS));
  for (const b of results.bulk) {
    if (!b.mode) continue;
    const target = Number(b.goalMs);
    const w = b.wallMs as Summary | undefined;
    add(
      `bulk requeue ${Number(b.jobs).toLocaleString('en')} jobs, ${b.mode}, at ${L} ms`,
      `<= ${target / 1000} s`,
      w ? fmt(w, ' ms') : 'not measured (see notes)',
      // Scaled down (--quick) is shown, not judged.
      w && b.jobs === b.fullJobs ? w.median <= target : null,
    );
  }
}

function printReport(): string {
  const out: string[] = [];
  const m = results.machine;
  out.push(
    `hd-worker-runbooks bench · ${results.generatedAt} · ${m.nproc} CPUs (${m.cpu}), ${m.memoryGiB} GiB, Node ${m.node} · load at start ${(m.loadAverageAtStart as number[]).join(' ')}`,
    `runs per figure: ${RUNS} (median [min–max]) · latency ${L} ms${QUICK ? ' · QUICK (scaled down: see notes)' : ''}`,
    '',
  );
  if (results.corpus) out.push(...corpusReport(results.corpus));
  if (results.startup) {
    out.push('Startup (npx zx <runbook> --help vs npx zx empty.mts)');
    out.push(
      table(
        ['script', 'wall', 'ratio'],
        [
          ['empty .mts', fmt(results.startup.emptyMs, ' ms'), '1.00x'],
          ...Object.entries(results.startup.help).map(([n, h]) => [
            `${n} --help`,
            fmt(h.wallMs, ' ms'),
            `${h.ratio.toFixed(2)}x`,
          ]),
        ],
      ),
      '',
    );
  }
  const groups = [
    {
      key: 'sandbox-latency',
      rtt: 0,
      title: `Diagnosis, sandbox --latency ${L} (API response +${L} ms, SSH exec +${L} ms)`,
      lowerBound: 'sandboxLatency',
    },
    ...RTTS.map((rtt) => ({
      key: 'link-rtt',
      rtt,
      title: `Diagnosis, link with ${rtt} ms on every round trip (TCP, SSH handshake) via proxy`,
      lowerBound: `link-${rtt}`,
    })),
  ];
  for (const { key, rtt, title, lowerBound } of groups) {
    const inGroup = (d: Record<string, unknown>) => d.model === key && (key !== 'link-rtt' || d.rttMs === rtt);
    const rows = results.diagnosis.filter(inGroup);
    const olds = results.oldProcedure.filter(inGroup);
    if (!rows.length && !olds.length) continue;
    const lb = results.lowerBound[lowerBound] as { boundMs: number; derivation: string[] } | undefined;
    out.push(title);
    out.push(
      table(
        ['run', 'HTTP (laptop+Spark)', 'rounds', 'SSH conn', 'exec', 'bytes', 'wall', 'x bound', 'x old', 'peak RSS'],
        [
          ...rows.map((d) => {
            const old = olds.find((o) => o.scenario === d.scenario);
            return [
              `${d.runbook} --ci (${d.scenario})`,
              `${fmt(S(d, 'requests'))} (${fmt(S(d, 'laptopRequests'))}+${fmt(S(d, 'sparkRequests'))})`,
              key === 'link-rtt' ? '—' : fmt(S(d, 'rounds')),
              fmt(S(d, 'sshConnections')),
              fmt(S(d, 'execChannels')),
              kb(S(d, 'bytesMoved')),
              fmt(S(d, 'wallMs'), ' ms'),
              `${(d.ratioToBound as number).toFixed(2)}x`,
              old ? ratio(S(d, 'wallMs').median, S(old, 'wallMs').median) : '—',
              fmt(S(d, 'maxRssMb'), ' MB'),
            ];
          }),
          ...olds.map((o) => [
            `old procedure (${o.scenario}, python ${o.python})`,
            `${fmt(S(o, 'requests'))} (${fmt(S(o, 'laptopRequests'))}+${fmt(S(o, 'sparkRequests'))})`,
            key === 'link-rtt' ? '—' : fmt(S(o, 'rounds')),
            fmt(S(o, 'sshConnections')),
            fmt(S(o, 'execChannels')),
            kb(S(o, 'bytesMoved')),
            fmt(S(o, 'wallMs'), ' ms'),
            '',
            '1.00x',
            '',
          ]),
        ],
      ),
    );
    if (lb) out.push(`lower bound ${lb.boundMs.toFixed(0)} ms:`, ...lb.derivation.map((l) => `  - ${l}`));
    if (key === 'link-rtt') {
      out.push(
        "  rounds: see the rows above; behind the proxy the API's own timestamps are shifted per connection, so overlap says nothing",
      );
      const l = results.lowerBound[lowerBound] as { measuredOpenSshLoginAndTrueMs: Summary };
      const conn = rows[0]?.sshConnectMs as Summary | undefined;
      out.push(
        `  measured: OpenSSH login + \`true\` ${fmt(l.measuredOpenSshLoginAndTrueMs, ' ms')} (${(l.measuredOpenSshLoginAndTrueMs.median / rtt).toFixed(1)} RTT); ` +
          `the runbook's ssh2 connect ${fmt(conn, ' ms')} (${conn ? (conn.median / rtt).toFixed(1) : '?'} RTT)`,
      );
    }
    out.push('');
  }
  const linkRows = results.diagnosis.filter((d) => d.model === 'link-rtt');
  if (linkRows.length) {
    out.push('Link model side by side: diagnosis vs the old procedure on the same link, same run');
    out.push(
      table(
        ['RTT', 'run', 'diagnosis wall', 'old procedure wall', 'ratio', 'x bound'],
        linkRows.map((d) => {
          const old = results.oldProcedure.find((o) => o.model === 'link-rtt' && o.rttMs === d.rttMs);
          return [
            `${d.rttMs} ms`,
            `${d.runbook} --ci (${d.scenario})`,
            fmt(S(d, 'wallMs'), ' ms'),
            old ? fmt(S(old, 'wallMs'), ' ms') : '—',
            old ? ratio(S(d, 'wallMs').median, S(old, 'wallMs').median) : '—',
            `${(d.ratioToBound as number).toFixed(2)}x`,
          ];
        }),
      ),
      '',
    );
  }
  if (results.profile) out.push(...profileReport(results.profile));
  if (results.scale.length) {
    out.push(`Scale (sandbox --latency ${L})${SCALE.note ? ` · ${SCALE.note}` : ''}`);
    out.push(
      table(
        ['run', 'jobs', 'worker.log', 'HTTP', 'bytes', 'wall', 'peak RSS'],
        results.scale.map((s) => [
          `${s.runbook} --ci`,
          Number(s.jobs).toLocaleString('en'),
          `${(Number(s.logBytes) / 2 ** 20).toFixed(0)} MB`,
          fmt(S(s, 'requests')),
          kb(S(s, 'bytesMoved')),
          fmt(S(s, 'wallMs'), ' ms'),
          fmt(S(s, 'maxRssMb'), ' MB'),
        ]),
      ),
      '',
    );
  }
  if (results.scaleRow) out.push(...scaleRowReport(results.scaleRow));
  out.push(...watchReport([results.watch, results.scaleRow?.watch].filter((w) => w !== undefined)));
  if (results.bulk.length) {
    out.push(`Bulk requeue (sandbox --latency ${L})`);
    out.push(
      table(
        ['mode', 'jobs', 'HTTP', 'writes', 'wall'],
        results.bulk.map((b) =>
          b.notMeasured
            ? [String(b.mode ?? 'requeue'), String(b.jobs ?? ''), 'not measured (see notes)', '', '']
            : [
                `${b.mode}${b.note ? ` (${b.note})` : ''}`,
                Number(b.jobs).toLocaleString('en'),
                fmt(S(b, 'requests')),
                fmt(S(b, 'writes')),
                fmt(S(b, 'wallMs'), ' ms'),
              ],
        ),
      ),
      '',
    );
  }
  out.push('Goals');
  out.push(
    table(
      ['goal', 'target', 'measured', ''],
      results.goals.map((g) => [g.goal, g.target, g.measured, g.met === null ? 'n/a' : g.met ? 'met' : 'MISSED']),
    ),
  );
  if (results.notes.length) out.push('', 'Notes', ...results.notes.map((n) => `  - ${n}`));
  return out.join('\n');
}

// --- main ------------------------------------------------------------------------------------------------------

/** What the runbooks run: dist/ built now, as npm install's prepare builds it, or (--sources) the sources. */
async function prebuild(): Promise<void> {
  results.config.runbooksFrom = flags.sources ? 'sources' : 'prebuilt';
  if (flags.sources) {
    results.notes.push(
      '--sources: the runbooks ran from their TypeScript sources through tsx (HD_RUNBOOKS_PREBUILT=off).',
    );
    return;
  }
  log('building dist/ (npm run build), as npm install does');
  const manifest = await buildRunbooks(ROOT, path.join(ROOT, PREBUILT_DIR));
  results.notes.push(
    `The runbooks ran from their prebuilt bundles (dist/, built by the bench from this checkout's ${Object.keys(manifest.inputs).length} source files, as npm install's prepare does); --sources runs the TypeScript sources.`,
  );
}

async function main(): Promise<void> {
  const started = performance.now();
  if (!hasGnuTime())
    results.notes.push('GNU time (/usr/bin/time) is missing: peak memory not measured (apt-get install time).');
  results.notes.push(
    "Requests are told apart by the client the sandbox records: the runbook's supabase-js (x-client-info), curl and " +
      'python-requests from Spark, the worker (Node fetch). The worker is kept running but polls once an hour during ' +
      'measurements (its .env WORKER_POLL_MS), so the table holds still; its requests are excluded all the same.',
    'Rounds = clusters of overlapping laptop requests ([startedAt, endedAt] from the sandbox) + SSH exec channels; ' +
      'requests made from Spark inside an exec lengthen that round and are not counted as rounds.',
    'Peak memory: GNU time %M of `npx zx …` (largest process of the tree: the runbook itself).',
  );
  await prebuild();
  if (SECTIONS.has('corpus')) results.corpus = corpusSection();
  const startupMs =
    SECTIONS.has('startup') || SECTIONS.has('diagnosis') || SECTIONS.has('link') ? await emptyStartupMs() : 0;
  const watchOptions: WatchRowOptions = {
    rttMs: RTTS[0],
    everySeconds: 5,
    refreshes: RUNS,
    work,
    env: runbookEnv(),
    log,
  };
  if (SECTIONS.has('watch') || SECTIONS.has('scale') || SECTIONS.has('scale-row'))
    results.lowerBound.watch = { rttMs: RTTS[0], derivation: watchDerivation(RTTS[0]) };
  if (['diagnosis', 'link', 'scale', 'bulk', 'profile', 'watch'].some((x) => SECTIONS.has(x))) {
    log('starting a sandbox');
    const sb = await startBenchSandbox({ scenario: 'healthy' });
    try {
      if (SECTIONS.has('diagnosis')) await diagnosisSection(sb, startupMs);
      if (SECTIONS.has('link')) await linkSection(sb, startupMs);
      if (SECTIONS.has('profile')) await profileSection(sb);
      if (SECTIONS.has('watch'))
        results.watch = await watchSmall(sb, watchOptions).catch((e) =>
          watchNotMeasured('small', WATCH_SMALL_JOBS, watchOptions, e),
        );
      if (SECTIONS.has('scale')) await scaleSection(sb);
      if (SECTIONS.has('bulk')) await bulkSection(sb);
    } finally {
      await sb.down();
    }
  }
  // Its own sandbox, after the shared one is down: seeding millions of rows wants the machine to itself.
  if (SECTIONS.has('scale') || SECTIONS.has('scale-row')) {
    try {
      results.scaleRow = await scaleRow({ jobs: SCALE_ROW, work, log, watch: watchOptions });
    } catch (e) {
      results.scaleRow = {
        jobs: SCALE_ROW,
        limits: '',
        seed: { seconds: 0, summary: '' },
        steps: [],
        notMeasured: (e as Error).message.split('\n')[0],
      };
    }
  }
  if (QUICK) {
    results.notes.push(
      `--quick: no link-model runs; scale at ${SCALE.large.jobs.toLocaleString('en')} jobs / ${SCALE.large.logMb} MB log, ` +
        `debug-stuck-jobs only; bulk requeue of ${BULK_JOBS} jobs (${BULK_RPC_JOBS.toLocaleString('en')} for the SQL function's large case), one run per mode (scaled-down goals are shown, not judged).`,
    );
  }
  evaluateGoals();
  results.config.totalSeconds = Math.round((performance.now() - started) / 100) / 10;
  const text = printReport();
  process.stdout.write(`${text}\n\ntotal ${results.config.totalSeconds} s\n`);
  writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
  log(`wrote ${path.relative(process.cwd(), OUT) || OUT}`);
}

try {
  await main();
} finally {
  await cleanup();
}
