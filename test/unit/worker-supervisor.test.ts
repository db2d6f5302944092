/** How the worker runs (its systemd unit, a container, its parents) and the restart that follows from it. */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { PROBE_HELPERS } from '../../lib/evidence/probe/section.ts';
import type { SparkEvidence } from '../../lib/evidence/probe/spark-evidence.ts';
import type { WorkerSupervisor } from '../../lib/evidence/probe/worker-supervisor.ts';
import { workerSupervisorSection } from '../../lib/evidence/probe/worker-supervisor.ts';
import { restartHint } from '../../lib/findings/restart.ts';

const OPTIONS = {
  workerDir: '~/srv/hd-worker',
  logTailBytes: 1024,
  reachCheck: false,
  reachTimeoutSeconds: 1,
  marker: 'M',
};

describe('the supervisor section, run for real', () => {
  const children: Array<{ kill: () => void }> = [];
  afterEach(() => {
    for (const c of children.splice(0)) c.kill();
  });

  it("reads this machine's /proc for a real process: its pid, cgroup and parents", () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    children.push(child);
    // The section's own lines, as the probe sends them, with `section` printing the marker the frame would and the
    // frame's helpers.
    const script = [
      'section() { printf "\\nM %s\\n" "$1"; }',
      ...PROBE_HELPERS,
      `pids=${child.pid}`,
      ...workerSupervisorSection.script(OPTIONS),
    ].join('\n');
    const run = spawnSync('bash', ['-s'], { input: script, encoding: 'utf8' });
    expect(run.status).toBe(0);
    const text = run.stdout.split('\nM supervisor\n')[1] ?? '';
    const { supervisors } = workerSupervisorSection.parse(
      { text: (name) => (name === 'supervisor' ? text.replace(/\n$/, '') : ''), has: () => true },
      { workerDir: '~/srv/hd-worker', laptopMidpoint: new Date(), logTailBytes: 1024 },
    );
    expect(supervisors).toHaveLength(1);
    const s = supervisors![0];
    expect(s.pid).toBe(child.pid);
    // Its parent is this very process (the test's node), named as /proc names it.
    expect(s.ancestors[0]).toBe(readFileSync('/proc/self/comm', 'utf8').trim());
    const cgroup = readFileSync(`/proc/${child.pid}/cgroup`, 'utf8');
    expect(s.container).toBe(/docker|containerd|libpod|kubepods/.test(cgroup));
  });
});

function probe(
  supervisor: Omit<WorkerSupervisor, 'pid'>,
  args = 'python3 /home/sparkuser/srv/hd-worker/worker.py',
): SparkEvidence {
  return {
    workerDir: { path: '/home/sparkuser/srv/hd-worker', exists: true },
    processes: [{ pid: 4242, ppid: 1, elapsedSeconds: 60, startedAt: new Date(), args }],
    supervisors: [{ pid: 4242, ...supervisor }],
  } as unknown as SparkEvidence;
}

describe('restartHint', () => {
  it.each([
    [
      'a systemd unit',
      { unit: 'hd-worker.service', userUnit: false, container: false, ancestors: ['systemd'] },
      { how: 'systemd unit hd-worker.service', command: 'sudo systemctl restart hd-worker.service' },
    ],
    [
      'a systemd user unit',
      { unit: 'hd-worker.service', userUnit: true, container: false, ancestors: ['systemd', 'systemd'] },
      { how: 'systemd user unit hd-worker.service', command: 'systemctl --user restart hd-worker.service' },
    ],
    [
      'a container',
      { userUnit: false, container: true, ancestors: ['containerd-shim'] },
      { how: 'a container', advice: 'restart its container the way it was deployed (e.g. docker compose restart)' },
    ],
    [
      'a tmux session',
      { userUnit: false, container: false, ancestors: ['bash', 'tmux: server', 'systemd'] },
      { how: 'a tmux session', advice: 'attach (tmux attach), stop it with Ctrl-C and start it again there' },
    ],
    [
      'a screen session',
      { userUnit: false, container: false, ancestors: ['bash', 'screen', 'systemd'] },
      { how: 'a screen session', advice: 'attach (screen -r), stop it with Ctrl-C and start it again there' },
    ],
    [
      'nohup: left running, its parent init',
      { userUnit: false, container: false, ancestors: ['systemd'] },
      {
        how: 'started by hand and left running (nohup or &)',
        advice:
          'stop it (kill 4242) and start it again as before, in /home/sparkuser/srv/hd-worker: python3 /home/sparkuser/srv/hd-worker/worker.py',
      },
    ],
  ])('%s', (_name, supervisor, hint) => {
    expect(restartHint(probe(supervisor))).toEqual(hint);
  });

  it('names no command when it cannot tell (two workers, or none)', () => {
    expect(restartHint(undefined)).toBeUndefined();
    const two = probe({ userUnit: false, container: false, ancestors: ['systemd'] });
    two.processes.push({ ...two.processes[0], pid: 5000, ppid: 1 });
    expect(restartHint(two)).toBeUndefined();
  });
});
