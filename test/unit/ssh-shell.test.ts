/**
 * The long-lived shell channel (lib/io/ssh/shell.ts): runs in a row on one channel, and every way a run can go wrong
 * (timeout, too much output, the channel or the connection closing, late output) closing that channel so the next
 * run starts clean; first with a fake channel, then with `bash -s` on this machine.
 */
import { describe, expect, it } from 'vitest';
import { ChannelShell, wrapScript } from '../../lib/io/ssh/shell.ts';
import { fakeLink, localBashLink } from '../helpers/local-shell.ts';

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('a shell over a fake channel', () => {
  it('runs two scripts in a row on one channel, each answer ending at its own token', async () => {
    const link = fakeLink();
    const shell = new ChannelShell(link, 60_000);
    const first = shell.run('echo one');
    await flush();
    expect(link.channels).toHaveLength(1);
    const [channel] = link.channels;
    expect(channel.written[0]).toContain('(\necho one\n) </dev/null;');
    channel.answer('one');
    expect(await first).toMatchObject({ code: 0, stdout: 'one', truncated: false, timedOut: false });

    const second = shell.run('exit 3');
    await flush();
    expect(link.channels).toHaveLength(1);
    expect(channel.written).toHaveLength(2);
    const [t1, t2] = channel.tokens();
    expect(t1).not.toBe(t2);
    channel.answer('two', 3);
    expect(await second).toMatchObject({ code: 3, stdout: 'two', connectionLost: false });
    expect(channel.closed).toBe(false);
  });

  it('a run asked for during another waits for it: one script on the channel at a time', async () => {
    const link = fakeLink();
    const shell = new ChannelShell(link, 60_000);
    const a = shell.run('echo a');
    const b = shell.run('echo b');
    await flush();
    const [channel] = link.channels;
    expect(channel.written).toHaveLength(1);
    channel.answer('a');
    expect((await a).stdout).toBe('a');
    await flush();
    expect(channel.written).toHaveLength(2);
    channel.answer('b');
    expect((await b).stdout).toBe('b');
  });

  it('an answer split across chunks, the token line too, is put together', async () => {
    const link = fakeLink();
    const shell = new ChannelShell(link, 60_000);
    const run = shell.run('x');
    await flush();
    const [channel] = link.channels;
    const text = `part one\npart two\n${channel.tokens()[0]} 0\n`;
    for (const piece of [text.slice(0, 5), text.slice(5, 20), text.slice(20, 30), text.slice(30)])
      channel.emit('data', Buffer.from(piece));
    expect(await run).toMatchObject({ code: 0, stdout: 'part one\npart two' });
  });

  it('a timeout closes the channel (KILL): its late output is never a later run’s, which opens a new one', async () => {
    const link = fakeLink();
    const shell = new ChannelShell(link, 60_000);
    const slow = shell.run('sleep 60', { timeoutMs: 20 });
    await flush();
    const [old] = link.channels;
    const result = await slow;
    expect(result).toMatchObject({ code: null, timedOut: true, connectionLost: false });
    expect(result.stderr).toContain('timed out');
    expect(old).toMatchObject({ closed: true, signals: ['KILL'] });

    const next = shell.run('echo fresh');
    await flush();
    expect(link.channels).toHaveLength(2);
    const fresh = link.channels[1];
    // The timed-out run's answer arrives late, on its own channel: nobody reads it.
    old.answer('stale');
    fresh.answer('fresh');
    expect(await next).toMatchObject({ code: 0, stdout: 'fresh' });
  });

  it('output no run waits for, and a line with another run’s token, do not end or fill the current run', async () => {
    const link = fakeLink();
    const shell = new ChannelShell(link, 60_000);
    const first = shell.run('a');
    await flush();
    const [channel] = link.channels;
    channel.answer('a');
    await first;
    channel.emit('data', Buffer.from('between runs\n'));
    const second = shell.run('b');
    await flush();
    const [oldToken] = channel.tokens();
    channel.emit('data', Buffer.from(`x\n${oldToken} 0\n`));
    channel.answer('b');
    const r = await second;
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('between runs');
    expect(r.stdout.endsWith('b')).toBe(true);
  });

  it('output past maxBytes cuts the run, closes the channel, and the next run opens a new one', async () => {
    const link = fakeLink();
    const shell = new ChannelShell(link, 60_000);
    const big = shell.run('yes', { maxBytes: 1000 });
    await flush();
    const [channel] = link.channels;
    for (let i = 0; i < 20; i++) channel.emit('data', Buffer.from('abcdefgh\n'.repeat(20)));
    const r = await big;
    expect(r).toMatchObject({ code: null, truncated: true, timedOut: false, connectionLost: false });
    expect(Buffer.byteLength(r.stdout)).toBe(1000);
    expect(channel.closed).toBe(true);

    // An answer of exactly maxBytes is whole.
    const exact = shell.run('printf', { maxBytes: 1000 });
    await flush();
    link.channels[1].answer('x'.repeat(1000));
    expect(await exact).toMatchObject({ code: 0, truncated: false, stdout: 'x'.repeat(1000) });
  });

  it('a channel that closes mid-run (the bash exited) gives what came, code null; the next run opens anew', async () => {
    const link = fakeLink();
    const shell = new ChannelShell(link, 60_000);
    const run = shell.run('x');
    await flush();
    const [channel] = link.channels;
    channel.emit('data', Buffer.from('half'));
    channel.emit('close');
    expect(await run).toMatchObject({ code: null, stdout: 'half', timedOut: false, connectionLost: false });
    const next = shell.run('y');
    await flush();
    expect(link.channels).toHaveLength(2);
    link.channels[1].answer('y');
    expect((await next).stdout).toBe('y');
  });

  it('a lost connection ends the run as lost; later runs are not sent', async () => {
    const link = fakeLink();
    const shell = new ChannelShell(link, 60_000);
    const run = shell.run('x');
    await flush();
    link.lose('connection lost: read ECONNRESET');
    const r = await run;
    expect(r).toMatchObject({ code: null, connectionLost: true });
    expect(r.stderr).toContain('ECONNRESET (during the command)');
    const later = await shell.run('y');
    expect(later).toMatchObject({ code: null, connectionLost: true });
    expect(later.stderr).toContain('not sent');
    expect(link.channels).toHaveLength(1);
  });

  it('a channel that cannot be opened is a failed run, not a hang', async () => {
    const link = fakeLink();
    link.failOpen = new Error('open failed');
    const shell = new ChannelShell(link, 60_000);
    const r = await shell.run('x');
    expect(r).toMatchObject({ code: null, connectionLost: false, timedOut: false });
    expect(r.stderr).toContain('could not start the command: open failed');
  });

  it('close() ends the channel and a run in progress; a later run opens a new channel', async () => {
    const link = fakeLink();
    const shell = new ChannelShell(link, 60_000);
    const run = shell.run('sleep 60');
    await flush();
    shell.close();
    expect(await run).toMatchObject({ code: null, connectionLost: true });
    expect(link.channels[0]).toMatchObject({ ended: true, closed: true, signals: ['KILL'] });
    const idle = new ChannelShell(link, 60_000);
    const done = idle.run('x');
    await flush();
    link.channels[1].answer('x');
    await done;
    idle.close();
    // An idle channel gets EOF and a close, no signal.
    expect(link.channels[1]).toMatchObject({ ended: true, closed: true, signals: [] });
  });
});

describe('a shell over bash -s on this machine', () => {
  it('each script runs as it arrives, in its own subshell: variables, set -u, exit and stdin are its own', async () => {
    const link = localBashLink();
    const shell = new ChannelShell(link, 30_000);
    try {
      expect(await shell.run('set -u; X=1; echo "x=$X"; f() { echo f; }; f')).toMatchObject({
        code: 0,
        stdout: 'x=1\nf\n',
      });
      expect(
        await shell.run('test -v X && echo "x=$X" || echo x=unset; f 2>/dev/null || echo "no f"; echo "$Y"'),
      ).toMatchObject({
        code: 0,
        stdout: 'x=unset\nno f\n\n',
      });
      expect(await shell.run('echo before; exit 3; echo after')).toMatchObject({ code: 3, stdout: 'before\n' });
      // stdin is /dev/null: a script that reads does not eat the next one.
      expect(await shell.run('cat; echo read')).toMatchObject({ code: 0, stdout: 'read\n' });
      expect(await shell.run("printf 'no newline'")).toMatchObject({ code: 0, stdout: 'no newline' });
      expect(link.children).toHaveLength(1);
    } finally {
      shell.close();
    }
  });

  it('a syntax error ends that bash: the run is cut short and the next one starts a new bash', async () => {
    const link = localBashLink();
    const shell = new ChannelShell(link, 30_000);
    try {
      const bad = await shell.run('echo partial; if then fi');
      expect(bad.code).toBeNull();
      expect(bad.stderr).toContain('syntax error');
      expect(await shell.run('echo ok')).toMatchObject({ code: 0, stdout: 'ok\n' });
      expect(link.children).toHaveLength(2);
    } finally {
      shell.close();
    }
  });

  it('a timed-out script is killed with its bash; no process is left after close()', async () => {
    const link = localBashLink();
    const shell = new ChannelShell(link, 30_000);
    const r = await shell.run('sleep 30; echo late', { timeoutMs: 100 });
    expect(r).toMatchObject({ code: null, timedOut: true });
    expect(await shell.run('echo next')).toMatchObject({ code: 0, stdout: 'next\n' });
    shell.close();
    await Promise.all(
      link.children.map((c) =>
        c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((done) => c.once('close', done)),
      ),
    );
    expect(link.children.every((c) => c.exitCode !== null || c.signalCode !== null)).toBe(true);
  });

  it('wraps a script so that the token line follows whatever the subshell did', () => {
    const wrapped = wrapScript('echo hi', '@@hd-shell-00@@');
    expect(wrapped).toBe("(\necho hi\n) </dev/null; printf '\\n%s %s\\n' '@@hd-shell-00@@' \"$?\"\n");
  });
});
