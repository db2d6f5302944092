import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorSignature, NO_ERROR_TEXT } from '../../lib/findings/error-signature.ts';

const OOM_TRACEBACK = `Traceback (most recent call last):
  File "/home/sparkuser/srv/hd-worker/worker.py", line 212, in process_job
    frames = model.encode(batch)
             ^^^^^^^^^^^^^^^^^^^
  File "/opt/conda/lib/python3.11/site-packages/torch/nn/modules/module.py", line 1518, in _wrapped_call_impl
    return self._call_impl(*args, **kwargs)
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 23.65 GiB total capacity)
`;

const CHAINED = `Traceback (most recent call last):
  File "w.py", line 3, in <module>
    open("/data/x")
FileNotFoundError: [Errno 2] No such file or directory: '/data/x'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "w.py", line 5, in <module>
    raise RuntimeError(f"job {job_id} failed")
RuntimeError: job 3fa85f64-5717-4562-b3fc-2c963f66afa6 failed
`;

describe('errorSignature', () => {
  const cases: [name: string, text: string | null | undefined, expected: string][] = [
    ['null', null, NO_ERROR_TEXT],
    ['undefined', undefined, NO_ERROR_TEXT],
    ['empty', '', NO_ERROR_TEXT],
    ['whitespace', ' \n\t\n', NO_ERROR_TEXT],
    ['only rules', '-----\n=====\n', NO_ERROR_TEXT],
    [
      'Python traceback: the final exception line',
      OOM_TRACEBACK,
      'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate <n> GiB (GPU <n>; <n> GiB total capacity)',
    ],
    ['chained traceback: the last exception', CHAINED, 'RuntimeError: job <uuid> failed'],
    [
      'tail of a traceback without its header',
      '  File "/srv/w.py", line 9, in run\n    x()\nValueError: bad frame rate 29.97 in /data/clip_0042.mp4',
      'ValueError: bad frame rate <n> in <path>',
    ],
    [
      'exception without a message, then log noise below it',
      'Traceback (most recent call last):\n  File "w.py", line 1, in <module>\nKeyboardInterrupt\n',
      'KeyboardInterrupt',
    ],
    [
      'multi-line exception message',
      'Traceback (most recent call last):\n  File "w.py", line 1, in <module>\nsubprocess.CalledProcessError: Command failed\nstderr: boom\n',
      'subprocess.CalledProcessError: Command failed',
    ],
    [
      'Node error: first line',
      'Error: connect ECONNREFUSED 127.0.0.1:5432\n    at TCPConnectWrap.afterConnect',
      'Error: connect ECONNREFUSED <n>:<n>',
    ],
    ['leading blank lines', '\n\n   \nffmpeg exited with code 1\nmore', 'ffmpeg exited with code <n>'],
    [
      'UUIDs',
      'job 3FA85F64-5717-4562-B3FC-2C963F66AFA6 and 00000000-0000-0000-0000-000000000000',
      'job <uuid> and <uuid>',
    ],
    ['hex ids', 'commit a1b2c3d4e5f6 on object 0xdeadbeef, short abc123', 'commit <hex> on object <hex>, short abc123'],
    ['hex glued with _', 'chunk job_3fa9c2e1b7 lost', 'chunk job_<hex> lost'],
    ['long decimal ids are numbers', 'row 1234567890 locked', 'row <n> locked'],
    ['numbers with units', 'timeout after 30s waiting for 12GiB', 'timeout after <n>s waiting for <n>GiB'],
    [
      'identifiers keep their digits',
      'float16 is unsupported with utf8 and sha256',
      'float16 is unsupported with utf8 and sha256',
    ],
    ['numbers after _ are ids', 'missing chunk_0042 of part_7', 'missing chunk_<n> of part_<n>'],
    ['versions stay', 'needs v1.2.3', 'needs v1.2.3'],
    ['URLs', 'GET https://abc.supabase.co/rest/v1/hd_ingestion_jobs?id=eq.42 returned 503', 'GET <url> returned <n>'],
    [
      'absolute paths',
      'cannot read /home/sparkuser/srv/hd-worker/.env or ~/cache/x.bin',
      'cannot read <path> or <path>',
    ],
    ['Windows paths', 'cannot read C:\\data\\in.mp4', 'cannot read <path>'],
    [
      'relative words with / are not paths',
      'read and/or write failed: 1/2 done',
      'read and/or write failed: <n>/<n> done',
    ],
    ['double-quoted strings', 'KeyError: "clip_17" missing', 'KeyError: "<s>" missing'],
    ['single-quoted strings', "can't find 'model.safetensors' in cache", 'can\'t find "<s>" in cache'],
    ['backticks', 'column `hd_ingestion_jobs.foo` does not exist', 'column "<s>" does not exist'],
    ['log timestamp and level stripped', '2024-05-01T12:00:00.123Z ERROR upload failed', 'upload failed'],
    ['bracketed timestamp', '[2024-05-01 12:00:00] [ERROR] upload failed', 'upload failed'],
    ['whitespace collapsed', 'a   b\t\tc', 'a b c'],
  ];

  for (const [name, text, expected] of cases) {
    it(name, () => {
      expect(errorSignature(text)).toBe(expected);
    });
  }

  it("a gateway's error page stored as the error is its title, never the markup", () => {
    const page = readFileSync(new URL('../fixtures/gateway/cloudflare-522.html', import.meta.url), 'utf8');
    const signature = errorSignature(`postgrest.exceptions.APIError: ${page}`);
    expect(signature).toBe('postgrest.exceptions.APIError: [HTML page: <token> | <n>: Connection timed out]');
  });

  it('groups failures that differ only in ids, numbers and paths', () => {
    const a = errorSignature(
      "RuntimeError: job 3fa85f64-5717-4562-b3fc-2c963f66afa6 failed reading '/data/a.mp4' after 3 tries",
    );
    const b = errorSignature(
      "RuntimeError: job 9c1d2e3f-0000-4562-b3fc-aaaaaaaaaaaa failed reading '/data/bb/c.mp4' after 12 tries",
    );
    expect(a).toBe(b);
  });

  it('cuts to at most 120 characters, between words', () => {
    const sig = errorSignature(`ValueError: ${'word '.repeat(60)}`);
    expect(sig.length).toBeLessThanOrEqual(120);
    expect(sig.length).toBeGreaterThan(110);
    expect(sig).toMatch(/ word…$/);
    expect(errorSignature(`E: ${'y '.repeat(58)}`)).toBe(`E: ${'y '.repeat(58)}`.trim());
  });

  it('masks long opaque tokens, so a key in an error never survives half-rewritten', () => {
    const key = `sb_secret_${'a1_B2-c3'.repeat(4)}`;
    const sig = errorSignature(`AuthError: key ${key} rejected after 3 tries`);
    expect(sig).toBe('AuthError: key <token> rejected after <n> tries');
  });
});
