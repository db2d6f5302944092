/**
 * The probe's shell where bash does what a process did: each read gives what the command it replaced gave (date,
 * cat, sed | cut, grep, tail), on this machine's own clock, /proc and processes; and the reach check's answer comes
 * through a pipe, leaving no file behind.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { reachSection } from '../../lib/evidence/probe/reach.ts';
import { dateOfNanoseconds, PROBE_HELPERS } from '../../lib/evidence/probe/section.ts';
import { workerProcessSection } from '../../lib/evidence/probe/worker-process.ts';
import { workerSupervisorSection } from '../../lib/evidence/probe/worker-supervisor.ts';
import { buildProbeScript, parseProbeOutput, probePrelude } from '../../lib/evidence/spark-probe.ts';
import { tempDir } from '../helpers/run.ts';

const HELPERS = PROBE_HELPERS.join('\n');
const OPTIONS = { workerDir: '~/w', logTailBytes: 100, reachCheck: true, reachTimeoutSeconds: 5, marker: 'M' };
const ENV = { PATH: process.env.PATH, LC_ALL: 'C' };

const bash = (script: string, env: NodeJS.ProcessEnv = ENV) =>
  spawnSync('bash', ['-c', script], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * Runs a whole probe script as `bash -s` does, without blocking this process (a test's server must answer); ended as
 * the SSH server ends a dropped command (its whole process group) once its output satisfies `cutWhen`.
 */
function runProbe(script: string, env: NodeJS.ProcessEnv, cutWhen?: (stdout: string) => boolean) {
  const child = spawn('bash', ['-s'], { env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stdin.end(script);
  const poll = setInterval(() => {
    if (cutWhen?.(stdout)) process.kill(-child.pid!, 'SIGTERM');
  }, 20);
  return new Promise<{ stdout: string; code: number | null }>((resolve) =>
    child.on('close', (code) => {
      clearInterval(poll);
      resolve({ stdout, code });
    }),
  );
}

describe('now_ns', () => {
  const nowNs = (prefix: string, env: NodeJS.ProcessEnv = ENV) => {
    const before = Date.now();
    const out = bash(`${HELPERS}\n${prefix}\nnow_ns`, env).stdout;
    return { out, before, after: Date.now() };
  };

  it('prints the time in nanoseconds from EPOCHREALTIME, starting no process (no PATH at all)', () => {
    const { out, before, after } = nowNs('PATH=/nonexistent');
    expect(out).toMatch(/^\d{16}000\n$/);
    const at = dateOfNanoseconds(out)!.getTime();
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(after);
  });

  it('counts as date -u +%s%N does: the same epoch and unit', () => {
    const out = bash(`${HELPERS}\nnow_ns; date -u +%s%N; now_ns`).stdout.trim().split('\n').map(BigInt);
    expect(out).toHaveLength(3);
    // EPOCHREALTIME has microseconds: date's nanoseconds fall between the two readings, to the microsecond.
    expect(out[0] <= out[1]).toBe(true);
    expect(out[1] / 1000n <= out[2] / 1000n).toBe(true);
  });

  it('falls back to date where bash has no EPOCHREALTIME (bash 4)', () => {
    // Unset, the variable loses its special meaning, as in a bash that never had it.
    const { out, before, after } = nowNs('unset EPOCHREALTIME');
    expect(out).toMatch(/^\d{19}\n$/);
    const at = dateOfNanoseconds(out)!.getTime();
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(after);
    // The time came from date: without it, nothing.
    expect(nowNs('unset EPOCHREALTIME; PATH=/nonexistent').out).toBe('');
  });

  it("reads EPOCHREALTIME whatever the locale's decimal separator (a comma in many)", () => {
    // Set by hand once unset: the text bash 5 gives EPOCHREALTIME under such a locale.
    expect(nowNs('unset EPOCHREALTIME; EPOCHREALTIME=1768478400,012345').out).toBe('1768478400012345000\n');
  });
});

describe('slurp and statfield, on real processes', () => {
  const dir = tempDir('probe-shell-');
  const started: ChildProcess[] = [];
  afterAll(() => {
    for (const c of started) c.kill('SIGKILL');
  });
  const sleepBin = execFileSync('sh', ['-c', 'command -v sleep'], { encoding: 'utf8' }).trim();
  /** A sleep whose process name (comm, from its file name) is `name`. */
  const sleeper = (name: string) => {
    const file = path.join(dir, name);
    copyFileSync(sleepBin, file);
    chmodSync(file, 0o755);
    const c = spawn(file, ['30'], { stdio: 'ignore' });
    started.push(c);
    return c.pid!;
  };
  /** What /proc holds, read by Node: the fields after the name's last ") ", and the name. */
  const truth = (pid: number) => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    return { ppid: fields[1], start: fields[19], comm: readFileSync(`/proc/${pid}/comm`, 'utf8').replace(/\n+$/, '') };
  };
  const read = (pid: number) =>
    bash(
      `${HELPERS}\nstatfield ${pid} 2; printf '%s|' "$V"; statfield ${pid} 20; printf '%s|' "$V"; slurp /proc/${pid}/comm; printf '%s' "$V"`,
    );

  it.each([
    ['a plain name', 'hd-sleep'],
    ['spaces and parentheses', 'a) b (c'],
    ['a newline', 'a) b\n(c'],
  ])('reads the parent, the start and the name of a process whose name has %s', async (_, name) => {
    const pid = sleeper(name);
    await new Promise((r) => setTimeout(r, 100));
    const t = truth(pid);
    expect(t.comm).toBe(name);
    expect(t.ppid).toBe(String(process.pid));
    const r = read(pid);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${t.ppid}|${t.start}|${t.comm}`);
    if (name.includes('\n')) return;
    // What the commands it replaced read (sed | cut and cat stop at a newline in the name).
    const old = bash(
      `printf '%s|%s|%s' "$(sed "s/^.*) //" /proc/${pid}/stat | cut -d" " -f2)" "$(sed "s/^.*) //" /proc/${pid}/stat | cut -d" " -f20)" "$(cat /proc/${pid}/comm)"`,
    );
    expect(r.stdout).toBe(old.stdout);
  });

  it('gives nothing, and says nothing, for a process that is gone or a file that is not there', () => {
    const r = bash(
      `${HELPERS}\nV=x; statfield 999999999 2; printf '[%s]' "$V"; V=x; slurp /proc/999999999/comm; printf '[%s]' "$V"`,
    );
    expect(r.stdout).toBe('[][]');
    expect(r.stderr).toBe('');
  });
});

describe('cgroup_of, against the grep it replaced', () => {
  const fn = workerSupervisorSection.script(OPTIONS).find((l) => l.startsWith('cgroup_of() {'))!;
  const fields = `printf '%s\\t%s\\t%s\\n' "\${u:--}" "\${k:-0}" "\${d:--}"`;
  const OLD = [
    'u=$(grep -o "[^/]*\\.service" "$f" 2>/dev/null | tail -n 1)',
    'k=$(grep -c "user@[0-9]*\\.service" "$f" 2>/dev/null)',
    'd=$(grep -qE "docker|containerd|libpod|kubepods" "$f" 2>/dev/null && echo container)',
  ].join('; ');
  /** Each file's u, k and d, by the old greps and by cgroup_of. */
  const both = (files: string[]) => {
    const list = files.map((f) => `'${f}'`).join(' ');
    const old = bash(`for f in ${list}; do ${OLD}; ${fields}; done`);
    const now = bash(`${fn}\nfor f in ${list}; do cgroup_of "$f"; ${fields}; done`);
    expect(now.stderr).toBe('');
    return { old: old.stdout, now: now.stdout };
  };

  it("gives grep's answers for the cgroup file of every process on this machine, and for none", () => {
    const dir = tempDir('probe-cgroup-');
    // Copied first (a process may end between the two reads), each text once.
    const texts = new Set<string>();
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        texts.add(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
      } catch {
        // Gone meanwhile.
      }
    }
    expect(texts.size).toBeGreaterThan(0);
    const files = [path.join(dir, 'absent')];
    for (const text of texts) {
      files.push(path.join(dir, String(files.length)));
      writeFileSync(files.at(-1)!, text);
    }
    const { old, now } = both(files);
    expect(now).toBe(old);
  });

  it('gives them for the paths systemd, docker, containerd and kubernetes give their cgroups (a differential test)', () => {
    // Lines in the kernel's format (hierarchy-ID:controllers:path, v2's 0::path); the paths are the layouts the
    // section tells apart. Both implementations read the same files: only their agreement is asserted here, the
    // meaning of each layout is worker-supervisor's test.
    const dir = tempDir('probe-cgroup-layouts-');
    const layouts = [
      ['user.slice/user-1000.slice/user@1000.service/app.slice/hd-worker.service', 'system.slice/ssh.service'],
      ['system.slice/hd-worker.service', 'docker/3f2a9c'],
      ['system.slice/a.serviceb.service.d/x', 'kubepods/besteffort/pod1'],
      ['user.slice/user-1000.slice/session-3.scope', 'system.slice/containerd.service'],
      ['system.slice/docker-3f2a9c.scope'],
    ];
    const files = layouts.map((paths, i) => {
      const file = path.join(dir, `layout-${i}`);
      const v1 = paths.map((p, j) => `${j + 2}:${['name=systemd', 'pids'][j] ?? 'freezer'}:/${p}`);
      writeFileSync(file, `${[...v1, `0::/${paths[0]}`].join('\n')}\n`);
      return file;
    });
    const { old, now } = both(files);
    expect(now).toBe(old);
    // The cases were there: a user unit's line, a container's.
    expect(now).toMatch(/\t[1-9]\t/);
    expect(now).toContain('\tcontainer\n');
  });
});

describe('the reach check, run by bash', () => {
  const script = buildProbeScript(OPTIONS);
  const home = tempDir('probe-reach-');
  const w = path.join(home, 'w');
  mkdirSync(w);
  const env = (tmp: string) => ({ PATH: process.env.PATH, HOME: home, TMPDIR: tmp, LC_ALL: 'C' });
  const seen: http.IncomingHttpHeaders[] = [];
  const urls: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    urls.push(req.url ?? '');
    if (req.url?.includes('hang')) return; // never answers
    res.end('[]');
  });
  const port = new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('sends the URL without its trailing slashes and the key as the .env has it, quotes and backslashes too', async () => {
    const key = 'eyJ"a\\b&c\\"d';
    writeFileSync(
      path.join(w, '.env'),
      `SUPABASE_URL=http://127.0.0.1:${await port}//\nSUPABASE_SERVICE_ROLE_KEY='${key}'\n`,
    );
    seen.length = 0;
    const tmp = tempDir('probe-tmp-');
    const r = await runProbe(script, env(tmp));
    const ev = parseProbeOutput(r.stdout, 'M', { workerDir: '~/w', laptopMidpoint: new Date(), logTailBytes: 100 });
    expect(ev.reach).toMatchObject({ status: 'ok', httpStatus: 200 });
    expect(urls.at(-1)).toBe('/rest/v1/hd_ingestion_jobs?select=id&limit=1');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ apikey: key, authorization: `Bearer ${key}` });
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('uses SUPABASE_SECRET_KEY when there is no service-role key, with no Bearer for a key that is not a JWT', async () => {
    writeFileSync(
      path.join(w, '.env'),
      `SUPABASE_URL=http://127.0.0.1:${await port}\nSUPABASE_SERVICE_ROLE_KEY=\nSUPABASE_SECRET_KEY=sb_secret_x\n`,
    );
    seen.length = 0;
    await runProbe(script, env(tempDir('probe-tmp-')));
    expect(seen).toHaveLength(1);
    expect(seen[0].apikey).toBe('sb_secret_x');
    expect(seen[0].authorization).toBeUndefined();
  });

  it('leaves no file behind when the probe is cut short during the request', async () => {
    writeFileSync(path.join(w, '.env'), `SUPABASE_URL=http://127.0.0.1:${await port}/hang\nSUPABASE_SECRET_KEY=k\n`);
    const tmp = tempDir('probe-tmp-');
    // Cut while it waits for the request's answer.
    const r = await runProbe(
      script,
      env(tmp),
      (out) => out.includes('\nM reach\n') && /^\/hang\//.test(urls.at(-1) ?? ''),
    );
    expect(r.stdout).not.toContain('\nM end\n');
    expect(readdirSync(tmp)).toEqual([]);
  });

  it("keeps curl's last two lines, as tail -n 2 did", () => {
    const line = reachSection.setup!(OPTIONS).find((l) => l.trim().startsWith('case "$C" in'))!;
    for (const raw of ['', 'http 200 0.1\n', 'curl: (7) Failed to connect\nhttp 000 0.002\n', 'w\nx\ny\n', 'x\n\n']) {
      const tail = execFileSync('tail', ['-n', '2'], { input: raw, encoding: 'utf8' });
      const kept = bash(`C=$(printf '%s' "$1")\n${line}`.replace('"$1"', `'${raw}'`)).stdout;
      // $(...) drops curl's trailing blank lines; the parser trims them anyway.
      expect(kept).toBe(tail.replace(/\n+$/, raw ? '\n' : ''));
    }
  });
});

describe("the worker's processes never include the probe's own", () => {
  it("leaves out a process of the probe's group that runs a file in the folder, and keeps one of another group", () => {
    const w = tempDir('probe-own-group-');
    writeFileSync(path.join(w, '.env'), 'A=1\n');
    const o = { ...OPTIONS, workerDir: w };
    const section = [...probePrelude(o), ...workerProcessSection.script(o)].join('\n');
    // Both name the folder's .env (a file in it: what the section counts); `setsid` puts the second in a group of its
    // own, as the worker's is. Each is waited for until its command line is there, then both are ended.
    const r = bash(
      [
        `tail -f "${w}/.env" >/dev/null 2>&1 & own=$!`,
        `setsid tail -f "${w}/.env" >/dev/null 2>&1 & other=$!`,
        'for p in $own $other; do until grep -q env "/proc/$p/cmdline" 2>/dev/null; do :; done; done',
        section,
        'echo "own=$own other=$other"; kill $own $other',
      ].join('\n'),
    );
    const pids = /own=(\d+) other=(\d+)/.exec(r.stdout)!;
    const listed = r.stdout
      .split('\nM process\n')[1]
      .split('\nM procstart\n')[0]
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0]);
    expect(listed).toContain(pids[2]);
    expect(listed).not.toContain(pids[1]);
  });
});
