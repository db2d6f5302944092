/**
 * The runbooks against the real sandbox, run as an operator or CI would run them: child processes, stdin closed,
 * JSON read back. One sandbox for the file; each test applies the scenario it needs.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSparkKeys, knownHostsLine } from '../../sandbox/spark/keys.ts';
import { tempDir } from '../helpers/run.ts';
import { cleanEnv, ROOT, type RunResult, runRunbook, type Sandbox, startSandbox } from '../helpers/sandbox.ts';

const run = promisify(execFile);

interface JsonReport {
  runbook: string;
  verdict: string;
  exitCode: number;
  findings: Array<{ id: string; severity: string; title: string; evidence: string[]; fix: string; jobIds?: string[] }>;
  checks: Array<{ id: string; status: string; summary: string }>;
}

function json(r: RunResult): JsonReport {
  try {
    return JSON.parse(r.stdout) as JsonReport;
  } catch {
    throw new Error(`not JSON on stdout (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

/** A copy of the sandbox's laptop .env with some values replaced. */
function envVariant(sb: Sandbox, changes: Record<string, string>): string {
  let text = readFileSync(sb.envFile, 'utf8');
  for (const [k, v] of Object.entries(changes)) {
    const line = `${k}=${v}`;
    text = new RegExp(`^${k}=`, 'm').test(text) ? text.replace(new RegExp(`^${k}=.*$`, 'm'), line) : `${text}${line}\n`;
  }
  const file = path.join(tempDir('hd-env-'), '.env');
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

let sb: Sandbox;

beforeAll(async () => {
  sb = await startSandbox();
});

afterAll(async () => {
  await sb?.down();
});

describe('debug-stuck-jobs in CI mode', () => {
  const cases: Array<{ scenario: string; top: string }> = [
    { scenario: 'local-target', top: 'local-supabase-target' },
    { scenario: 'circular-metadata', top: 'circular-metadata' },
    { scenario: 'worker-down', top: 'worker-down' },
    { scenario: 'stale-running', top: 'stale-running' },
    { scenario: 'wrong-key-role', top: 'wrong-key-role' },
  ];
  for (const c of cases) {
    it(`names ${c.top} as the top finding, with its fix, in scenario ${c.scenario}`, async () => {
      await sb.scenario(c.scenario);
      const r = await runRunbook('debug-stuck-jobs', ['--env-file', sb.envFile, '--ci', '--json', '-']);
      const report = json(r);
      expect(r.code).toBe(1);
      expect(report.findings[0].id).toBe(c.top);
      expect(report.findings[0].fix.length).toBeGreaterThan(20);
      expect(report.verdict).toContain(`[${c.top}]`);
      expect(r.stderr).toContain(`fix: ${report.findings[0].fix.slice(0, 40)}`);
    });
  }

  it('exits 0 with no finding at warning level or above when healthy', async () => {
    await sb.scenario('healthy');
    const r = await runRunbook('debug-stuck-jobs', ['--env-file', sb.envFile, '--ci', '--json', '-']);
    const report = json(r);
    expect(report.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(r.code).toBe(0);
    expect(report.verdict).toMatch(/^healthy/);
  });

  it('links the failed jobs of failure B to their lines in the worker log', async () => {
    await sb.scenario('circular-metadata');
    const r = await runRunbook('debug-stuck-jobs', ['--env-file', sb.envFile, '--ci']);
    const failed = await sb.sql<{ id: string }>("select id from hd_ingestion_jobs where status = 'failed'");
    // Without --verbose: after the findings, the frame of the worker's code that raised and the exception line.
    expect(r.stdout).toMatch(/\nWorker log, job [0-9a-f-]{36} \(all lines: --verbose\)\n/);
    expect(r.stdout.indexOf('\nWorker log, job')).toBeGreaterThan(r.stdout.indexOf('[circular-metadata]'));
    expect(r.stdout).toMatch(
      /\nWorker log, job .*\n {4}File "[^"]*worker\.mjs", line \d+, in importAssetsJsonl\n {6}body = json\.dumps\(rows\)\n {2}ValueError: Circular reference detected\n/,
    );
    // --verbose: every line of every linked job, and the JSON report keeps them all.
    const verbose = await runRunbook('debug-stuck-jobs', ['--env-file', sb.envFile, '--ci', '--verbose']);
    expect(verbose.stdout).toContain('lines naming stuck jobs:');
    // The layout the log was read in: in --verbose and in the JSON report.
    expect(verbose.stdout).toMatch(/\nlayout: timestamped/i);
    const report = JSON.parse(
      (await runRunbook('debug-stuck-jobs', ['--env-file', sb.envFile, '--ci', '--json', '-'])).stdout,
    );
    expect(report.extra.logLayout).toMatchObject({ kind: 'timestamped', ansi: false, crlf: false });
    for (const { id } of failed) {
      expect(verbose.stdout).toMatch(
        new RegExp(`\\n {2}${id}:\\n(?: {4}.*\\n)*? {4}\\S+ ERROR job ${id} failed: ValueError`),
      );
    }
    expect(r.stdout).toContain('fix gate [circular-metadata]: the worker started');
    expect(r.stdout).toContain(`npx zx runbooks/requeue.mts --config ${sb.envFile} --id`);
  });

  it('without a terminal and without --ci: never prompts, never writes, finishes', async () => {
    await sb.scenario('circular-metadata');
    await sb.resetStats();
    const r = await runRunbook('debug-stuck-jobs', ['--env-file', sb.envFile], { stdin: '' });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('read-only');
    const stats = await sb.stats();
    expect(stats.httpWrites).toBe(0);
    expect(stats.ssh.connections).toBe(1);
  });

  it('uses one SSH connection and one exec channel per run', async () => {
    await sb.scenario('healthy');
    await sb.resetStats();
    const r = await runRunbook('debug-stuck-jobs', ['--env-file', sb.envFile, '--ci']);
    expect(r.code).toBe(0);
    const stats = await sb.stats();
    expect(stats.ssh.connections).toBe(1);
    expect(stats.ssh.execChannels).toBe(1);
    const laptopRequests = stats.events.filter((e) => e.role === 'service_role').length;
    // 4 queue reads from the laptop + 1 request the probe makes from Spark; the worker's polls come on top.
    expect(laptopRequests).toBeGreaterThanOrEqual(5);
  });

  it('without any config says what to do in one line and exits 2', async () => {
    const empty = tempDir('hd-noconf-');
    const r = await runRunbook('debug-stuck-jobs', ['--ci'], { cwd: empty });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^error: no configuration: no \.env in .* and SUPABASE_URL is not set\n {2}fix: .*\.env\.example.*npm run demo\n$/,
    );
  });

  it('rejects an unknown flag as a usage error (exit 2)', async () => {
    const r = await runRunbook('debug-stuck-jobs', ['--env-file', sb.envFile, '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Unknown option '--bogus'");
  });
});

describe('diagnose-env', () => {
  it('exits 0 on a healthy sandbox', async () => {
    await sb.scenario('healthy');
    const r = await runRunbook('diagnose-env', ['--env-file', sb.envFile, '--ci', '--json', '-']);
    expect(json(r).findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(r.code).toBe(0);
  });

  for (const [scenario, id] of [
    ['local-target', 'local-supabase-target'],
    ['wrong-key-role', 'wrong-key-role'],
  ] as const) {
    it(`finds ${id} in scenario ${scenario}`, async () => {
      await sb.scenario(scenario);
      const r = await runRunbook('diagnose-env', ['--env-file', sb.envFile, '--ci', '--json', '-']);
      expect(json(r).findings[0].id).toBe(id);
      expect(r.code).toBe(1);
    });
  }

  it('counts the jobs stranded in the local instance as evidence for failure A', async () => {
    await sb.scenario('local-target');
    const r = await runRunbook('diagnose-env', ['--env-file', sb.envFile, '--ci', '--json', '-']);
    const f = json(r).findings.find((x) => x.id === 'local-supabase-target')!;
    expect(f.evidence.join('\n')).toMatch(/the local instance holds 3 queued jobs/);
  });

  it('refuses a changed host key and runs nothing on Spark (host-key-mismatch)', async () => {
    await sb.scenario('healthy');
    const other = generateSparkKeys().host.public;
    const knownHosts = path.join(tempDir('hd-kh-'), 'known_hosts');
    writeFileSync(knownHosts, `${knownHostsLine('127.0.0.1', sb.info.spark.port, other)}\n`);
    const env = envVariant(sb, { SPARK_KNOWN_HOSTS: knownHosts });
    await sb.resetStats();
    const r = await runRunbook('diagnose-env', ['--env-file', env, '--ci', '--json', '-']);
    const report = json(r);
    expect(report.findings[0].id).toBe('host-key-mismatch');
    expect(r.code).toBe(2);
    const stats = await sb.stats();
    expect(stats.ssh.execChannels).toBe(0);
    expect(report.findings[0].fix).toContain('ssh-keygen -R');
  });

  it('refuses an unknown host key when non-interactive (host-key-unknown)', async () => {
    const knownHosts = path.join(tempDir('hd-kh-'), 'known_hosts');
    writeFileSync(knownHosts, '');
    const r = await runRunbook('diagnose-env', [
      '--env-file',
      envVariant(sb, { SPARK_KNOWN_HOSTS: knownHosts }),
      '--ci',
      '--json',
      '-',
    ]);
    expect(json(r).findings[0].id).toBe('host-key-unknown');
    expect(r.code).toBe(2);
  });

  it('accepts a pinned host key fingerprint instead of known_hosts (CI)', async () => {
    const env = envVariant(sb, {
      SPARK_KNOWN_HOSTS: '/nonexistent/known_hosts',
      SPARK_HOST_KEY_SHA256: sb.info.spark.hostKeyFingerprint,
    });
    const r = await runRunbook('diagnose-env', ['--env-file', env, '--ci', '--json', '-']);
    expect(json(r).checks.find((c) => c.id === 'spark-connect')?.status).toBe('ok');
    expect(r.code).toBe(0);
  });

  it('reads the SSH key from SPARK_SSH_KEY (the key itself, as CI passes it)', async () => {
    let text = readFileSync(sb.envFile, 'utf8').replace(/^SPARK_SSH_KEY_PATH=.*\n/m, '');
    const file = path.join(tempDir('hd-env-'), '.env');
    writeFileSync(file, text);
    text = '';
    const r = await runRunbook('diagnose-env', ['--env-file', file, '--ci', '--json', '-'], {
      env: { SPARK_SSH_KEY: readFileSync(sb.info.spark.keyPath, 'utf8') },
    });
    expect(json(r).checks.find((c) => c.id === 'spark-connect')?.status).toBe('ok');
  });

  it('authenticates with the SSH agent when no key file is configured', async () => {
    const agentDir = tempDir('hd-agent-');
    const sock = path.join(agentDir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 50 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
      await run('ssh-add', [sb.info.spark.keyPath], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
      const file = path.join(tempDir('hd-env-'), '.env');
      writeFileSync(file, readFileSync(sb.envFile, 'utf8').replace(/^SPARK_SSH_KEY_PATH=.*\n/m, ''));
      const r = await runRunbook('diagnose-env', ['--env-file', file, '--ci', '--json', '-'], {
        env: { SSH_AUTH_SOCK: sock, HOME: agentDir },
      });
      expect(json(r).checks.find((c) => c.id === 'spark-connect')?.status).toBe('ok');
    } finally {
      agent.kill();
    }
  });

  it('says spark-unreachable, with the likely cause, when nothing listens on the SSH port', async () => {
    const r = await runRunbook('diagnose-env', [
      '--env-file',
      envVariant(sb, { SPARK_PORT: '1' }),
      '--ci',
      '--json',
      '-',
    ]);
    const report = json(r);
    expect(report.findings[0].id).toBe('spark-unreachable');
    expect(report.findings[0].fix).toMatch(/SPARK_PORT/);
    expect(r.code).toBe(2);
  });

  it('says supabase-unreachable when the API does not answer', async () => {
    const r = await runRunbook('diagnose-env', [
      '--env-file',
      envVariant(sb, { SUPABASE_URL: 'http://127.0.0.1:1' }),
      '--ci',
      '--json',
      '-',
      '--timeout',
      '3',
    ]);
    const report = json(r);
    expect(report.findings.map((f) => f.id)).toContain('supabase-unreachable');
    expect(r.code).toBe(2);
  });
});

describe('a misspelled variable is named as the cause', () => {
  it('SPARK_PROT instead of SPARK_PORT: the typo is the first finding, and the connection finding points at it', async () => {
    // The default port on 127.0.0.2: nothing of this sandbox listens there (another host in real life).
    const text = readFileSync(sb.envFile, 'utf8').replace(/^SPARK_PORT=(\d+)$/m, 'SPARK_PROT=$1');
    const file = path.join(tempDir('hd-env-typo-'), '.env');
    writeFileSync(file, text.replace(/^SPARK_HOST=.*$/m, 'SPARK_HOST=127.0.0.2'), { mode: 0o600 });
    const r = await runRunbook('diagnose-env', ['--config', file, '--ci', '--json', '-']);
    const report = json(r);
    expect(report.findings[0].id, r.stderr).toBe('config-warning');
    expect(report.findings[0].title).toMatch(/^SPARK_PROT: /);
    const symptom = report.findings.find((f) => f.id === 'spark-unreachable' || f.id.startsWith('host-key'));
    expect(symptom?.evidence.join('\n')).toContain('probably because of SPARK_PROT: SPARK_PORT is not set');
    expect(report.findings[0].severity).toBe(symptom?.severity);
  });
});

describe('the literal commands an operator types', () => {
  const npx = (args: string[], env: Record<string, string | undefined> = {}) =>
    run('npx', args, { cwd: ROOT, env: cleanEnv(env), timeout: 90_000 }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  for (const name of ['debug-stuck-jobs', 'diagnose-env', 'requeue']) {
    it(`npx zx runbooks/${name}.mts --help prints usage and the exit codes`, async () => {
      const r = await npx(['zx', `runbooks/${name}.mts`, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`runbooks/${name}.mts`);
      expect(r.stdout).toContain('Exit codes:');
    });
  }

  it('npx zx runbooks/debug-stuck-jobs.mts --env-file DIR/.env --ci works on a healthy sandbox', async () => {
    await sb.scenario('healthy');
    const r = await npx(['zx', 'runbooks/debug-stuck-jobs.mts', '--env-file', sb.envFile, '--ci']);
    expect(r.stdout).toContain('healthy: no finding at warning level or above (exit 0)');
    expect(r.code).toBe(0);
  });
});

describe('an interactive run in a pseudo-terminal', () => {
  /** Runs a runbook under `script` (a real pty), answering prompts as they appear. */
  function inPty(
    args: string[],
    answers: Array<{ when: RegExp; send: string }>,
  ): Promise<{ code: number | null; screen: string }> {
    return new Promise((resolve, reject) => {
      const cmd = ['npx', 'zx', ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
      const child = spawn('script', ['-q', '-e', '-c', cmd, '/dev/null'], {
        cwd: ROOT,
        env: cleanEnv({ TERM: 'xterm', NO_COLOR: '1' }),
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let screen = '';
      const pending = [...answers];
      child.stdout.on('data', (d) => {
        screen += d;
        const next = pending[0];
        if (next?.when.test(screen)) {
          pending.shift();
          setTimeout(() => child.stdin.write(next.send), 200);
        }
      });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`pty run timed out:\n${screen}`));
      }, 60_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, screen });
      });
    });
  }

  it('shows the real prompt, defaults to No, and writes nothing', async () => {
    await sb.scenario('circular-metadata');
    await sb.resetStats();
    const { code, screen } = await inPty(
      ['runbooks/debug-stuck-jobs.mts', '--env-file', sb.envFile],
      [{ when: /Hand the 2 job\(s\) of circular-metadata over to requeue/, send: '\r' }],
    );
    expect(screen).toContain('the fix is probably not deployed yet');
    expect(screen).toMatch(/over to requeue \(preview first\)\?.*(y\/N|No)/s);
    expect(screen).toContain('not requeued');
    expect(code).toBe(1);
    expect((await sb.stats()).httpWrites).toBe(0);
  });

  it('shows an unknown host key fingerprint and asks before trusting it', async () => {
    await sb.scenario('healthy');
    const knownHosts = path.join(tempDir('hd-kh-'), 'known_hosts');
    writeFileSync(knownHosts, '');
    const env = envVariant(sb, { SPARK_KNOWN_HOSTS: knownHosts });
    const { code, screen } = await inPty(
      ['runbooks/diagnose-env.mts', '--env-file', env],
      [{ when: /Trust SHA256:\S+ for this run\?/, send: 'y' }],
    );
    expect(screen).toContain(`it presents ${sb.info.spark.hostKeyFingerprint}`);
    expect(screen).toMatch(/Connect to Spark: sparkuser@127\.0\.0\.1:\d+, host key SHA256:/);
    expect(code).toBe(0);
  });

  it('Ctrl-C at a prompt exits 3 with nothing written', async () => {
    await sb.scenario('circular-metadata');
    await sb.resetStats();
    const { code, screen } = await inPty(
      ['runbooks/debug-stuck-jobs.mts', '--env-file', sb.envFile],
      [{ when: /over to requeue/, send: '\x03' }],
    );
    expect(screen).toContain('stopped: at your request (Ctrl-C or Esc at a question)');
    expect(code).toBe(3);
    expect((await sb.stats()).httpWrites).toBe(0);
  });
});
