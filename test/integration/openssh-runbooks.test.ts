/**
 * The runbooks against a real OpenSSH sshd serving the sandbox's Spark home: the ssh2 server of the sandbox is
 * ours, so this is the check that the probe and the connection work with the sshd Spark really runs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { knownHostsLine } from '../../sandbox/spark/keys.ts';
import { type OpenSshd, startOpenSshd } from '../helpers/openssh.ts';
import { tempDir } from '../helpers/run.ts';
import { runRunbook, type Sandbox, startSandbox } from '../helpers/sandbox.ts';

let sb: Sandbox;
let sshd: OpenSshd | { skipped: string };
let envFile: string;

beforeAll(async () => {
  sb = await startSandbox();
  const dir = tempDir('hd-openssh-');
  sshd = await startOpenSshd({
    dir,
    home: sb.info.spark.home,
    authorizedKeys: [readFileSync(`${sb.info.spark.keyPath}.pub`, 'utf8').trim()],
  });
  if ('skipped' in sshd) {
    console.warn(`openssh-runbooks: skipped: ${sshd.skipped}`);
    return;
  }
  const knownHosts = path.join(dir, 'known_hosts');
  writeFileSync(knownHosts, `${knownHostsLine('127.0.0.1', sshd.port, sshd.hostPublicKey)}\n`);
  // Real sshd logs in as a real user whose home is not the Spark home: the worker folder is given absolute.
  envFile = path.join(dir, '.env');
  writeFileSync(
    envFile,
    readFileSync(sb.envFile, 'utf8')
      .replace(/^SPARK_PORT=.*$/m, `SPARK_PORT=${sshd.port}`)
      .replace(/^SPARK_USER=.*$/m, `SPARK_USER=${sshd.user}`)
      .replace(/^SPARK_KNOWN_HOSTS=.*$/m, `SPARK_KNOWN_HOSTS=${knownHosts}`)
      .replace(/^SPARK_WORKER_DIR=.*$/m, `SPARK_WORKER_DIR=${sb.info.spark.workerDir}`),
    { mode: 0o600 },
  );
});

afterAll(async () => {
  if (sshd && !('skipped' in sshd)) await sshd.close();
  await sb?.down();
});

describe('against a real OpenSSH sshd', () => {
  it('diagnose-env passes on a healthy sandbox', async (ctx) => {
    if ('skipped' in sshd) return ctx.skip(sshd.skipped);
    await sb.scenario('healthy');
    const r = await runRunbook('diagnose-env', ['--env-file', envFile, '--ci', '--json', '-']);
    const report = JSON.parse(r.stdout);
    expect(report.checks.find((c: { id: string }) => c.id === 'spark-connect').status).toBe('ok');
    expect(report.checks.find((c: { id: string }) => c.id === 'worker-process').status).toBe('ok');
    expect(report.checks.find((c: { id: string }) => c.id === 'spark-reach').status).toBe('ok');
    expect(r.code).toBe(0);
  });

  it('debug-stuck-jobs finds worker-down through real sshd', async (ctx) => {
    if ('skipped' in sshd) return ctx.skip(sshd.skipped);
    await sb.scenario('worker-down');
    const r = await runRunbook('debug-stuck-jobs', ['--env-file', envFile, '--ci', '--json', '-']);
    expect(JSON.parse(r.stdout).findings[0].id).toBe('worker-down');
    expect(r.code).toBe(1);
  });
});
