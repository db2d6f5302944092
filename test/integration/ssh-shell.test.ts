import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSpark, type SparkSshSession } from '../../lib/io/ssh/connect.ts';
import { fingerprintSha256, generateSparkKeys } from '../../sandbox/spark/keys.ts';
import { type SparkSshServer, startSparkSsh } from '../../sandbox/spark/ssh-server.ts';
import { type SandboxControls, SandboxStats } from '../../sandbox/stats.ts';
import { processesWorkingIn } from '../helpers/proc.ts';
import { tempDir } from '../helpers/run.ts';

const HANG_MS = 30_000;
const keys = generateSparkKeys();
const stats = new SandboxStats();
const controls: SandboxControls = { latencyMs: 0 };
const home = tempDir('hd-shell-home-');
let server: SparkSshServer;
const sessions: SparkSshSession[] = [];

/** Processes working in the Spark home: the remote bash of a shell while its channel is open. */
const inHome = (): number[] => processesWorkingIn(home);

async function eventually(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + HANG_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${HANG_MS / 1000} s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function connect(): Promise<SparkSshSession> {
  const r = await connectSpark({
    target: { host: '127.0.0.1', port: server.port, user: 'sparkuser', source: 'test' },
    auth: { kind: 'file', path: '/keys/id', source: 'test' },
    pinnedFingerprint: fingerprintSha256(keys.host.public),
    readTextFile: async () => keys.client.private,
    timeoutMs: HANG_MS,
  });
  if (!r.ok) throw new Error(r.failure.message);
  sessions.push(r.session);
  return r.session;
}

beforeAll(async () => {
  server = await startSparkSsh({
    home,
    user: 'sparkuser',
    hostKey: keys.host.private,
    authorizedKeys: keys.client.public,
    port: 0,
    stats,
    controls,
  });
});

afterAll(async () => {
  await Promise.all(sessions.map((s) => s.close()));
  await server?.close();
});

describe('the shell on the sandbox’s Spark', () => {
  it('runs five scripts on ONE exec channel, each in its own subshell; close() leaves no process', async () => {
    controls.sshFault = undefined;
    stats.reset();
    const session = await connect();
    const shell = session.shell();
    for (let i = 1; i <= 5; i++) {
      const r = await shell.run(`set -u; N=${i}; echo "run $N in $PWD"`);
      expect(r).toMatchObject({ code: 0, stdout: `run ${i} in ${home}\n`, timedOut: false, connectionLost: false });
    }
    expect(stats.snapshot().ssh).toMatchObject({ connections: 1, execChannels: 1 });
    expect(inHome()).toHaveLength(1);
    shell.close();
    await eventually(() => inHome().length === 0, 'the remote bash gone once the shell is closed');
    // A plain exec still works on the same connection.
    expect(await session.exec('echo exec')).toMatchObject({ code: 0, stdout: 'exec\n' });
  });

  it('a timeout kills the remote bash; the next run opens a new channel and nothing late leaks into it', async () => {
    controls.sshFault = undefined;
    stats.reset();
    const session = await connect();
    const shell = session.shell();
    const slow = await shell.run('sleep 0.5; echo late', { timeoutMs: 100 });
    expect(slow).toMatchObject({ code: null, timedOut: true });
    const next = await shell.run('sleep 1; echo next');
    expect(next).toMatchObject({ code: 0, stdout: 'next\n' });
    expect(stats.snapshot().ssh.execChannels).toBe(2);
    shell.close();
    await eventually(() => inHome().length === 0, 'no bash left');
  });

  it('output past maxBytes cuts the run and ends its bash; a bash that exits ends only its run', async () => {
    controls.sshFault = undefined;
    const session = await connect();
    const shell = session.shell();
    const big = await shell.run('yes abcdefgh', { maxBytes: 1000 });
    expect(big).toMatchObject({ code: null, truncated: true, timedOut: false, connectionLost: false });
    expect(Buffer.byteLength(big.stdout)).toBe(1000);
    await eventually(() => inHome().length === 0, 'the cut bash killed');
    // `$$` in the subshell is the shell's bash itself.
    const gone = await shell.run('echo bye; kill -KILL $$');
    expect(gone).toMatchObject({ code: null, stdout: 'bye\n', connectionLost: false });
    expect(await shell.run('echo again')).toMatchObject({ code: 0, stdout: 'again\n' });
    shell.close();
    await eventually(() => inHome().length === 0, 'no bash left');
  });

  it('ssh-drop: the connection cut under a run is a lost connection, and later runs are not sent', async () => {
    controls.sshFault = undefined;
    const session = await connect();
    const shell = session.shell();
    controls.sshFault = { kind: 'drop-mid-command' };
    try {
      const r = await shell.run('sleep 5; echo never', { timeoutMs: HANG_MS });
      expect(r).toMatchObject({ code: null, connectionLost: true, timedOut: false });
      const later = await shell.run('echo hi');
      expect(later).toMatchObject({ code: null, connectionLost: true });
      expect(later.stderr).toContain('not sent');
    } finally {
      controls.sshFault = undefined;
    }
    await eventually(() => inHome().length === 0, 'no bash left after the drop');
  });

  it('ssh-no-procps: the scripts run with the PATH of the channel’s bash', async () => {
    controls.sshFault = { kind: 'missing-command', commands: ['ps', 'pgrep'] };
    try {
      const session = await connect();
      const shell = session.shell();
      const r = await shell.run('command -v ps || echo "no ps"; command -v find >/dev/null && echo find');
      expect(r).toMatchObject({ code: 0, stdout: 'no ps\nfind\n' });
      shell.close();
    } finally {
      controls.sshFault = undefined;
    }
  });
});
