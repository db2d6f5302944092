/**
 * The catalog against genuine failures: tracebacks the real libraries produced (test/fixtures/tracebacks, made by
 * generate.py and capture-postgres.mts), the same made live by Debian's python3 and packages (.ci/run installs them),
 * Node's own wordings made here, and lines quoted from real reports (the thread is named beside each).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILTIN_ERROR_PATTERNS, matchPattern } from '../../lib/findings/error-patterns.ts';
import { tempDir } from '../helpers/run.ts';
import { ROOT } from '../helpers/sandbox.ts';

const FIXTURES = path.join(ROOT, 'test/fixtures/tracebacks');
/** Debian's interpreter: the one python3-ujson, -simplejson, -requests and -httpx install into. */
const PYTHON = '/usr/bin/python3';
const LIVE_LIBRARIES = ['json', 'ujson', 'simplejson', 'requests', 'httpx'];
const IMPORT = 'import_assets_jsonl';
const OTHER = 'embed_assets';

interface Case {
  library: string;
  type: string;
  message: string;
}

/** Failure B: the import job's own finding; in any other job type, the generic one. */
const B = { [IMPORT]: 'circular-metadata', [OTHER]: 'unstorable-structure' } as const;

const EXPECTED: Record<string, string | typeof B> = {
  'json-circular': B,
  'json-not-serializable': B,
  'json-check-circular-false': B,
  'orjson-circular': B,
  'orjson-not-serializable': B,
  'ujson-circular': B,
  'ujson-not-serializable': B,
  'simplejson-circular': B,
  'simplejson-not-serializable': B,
  'requests-json-circular': B,
  'httpx-json-circular': B,
  'requests-413': B,
  'httpx-413': B,
  'json-decode-jsonl-line': 'input-unreadable',
  'json-decode-empty-line': 'input-unreadable',
  'utf8-decode-jsonl': 'input-unreadable',
  'orjson-decode-jsonl-line': 'input-unreadable',
  'ujson-decode-jsonl-line': 'input-unreadable',
  'simplejson-decode-jsonl-line': 'input-unreadable',
  'requests-connection-refused': 'worker-network-error',
  'requests-https-connection-refused': 'worker-network-error',
  'requests-read-timeout': 'worker-network-error',
  'requests-connect-timeout': 'worker-network-error',
  'httpx-connect-error': 'worker-network-error',
  'httpx-read-timeout': 'worker-network-error',
  'httpx-connect-timeout': 'worker-network-error',
  'requests-401': 'job-auth-rejected',
  'httpx-401': 'job-auth-rejected',
  'requests-storage-404': 'storage-object-unavailable',
  'httpx-storage-404': 'storage-object-unavailable',
  'requests-storage-403': 'storage-object-unavailable',
  'disk-full-write': 'disk-full',
  'disk-full-oserror': 'disk-full',
  'module-not-found': 'worker-import-error',
  'cannot-import-name': 'worker-import-error',
};
/** str(e) alone says too little to name a cause: httpx's timeouts are just "timed out". */
const TOO_BARE_ALONE = new Set(['httpx-read-timeout', 'httpx-connect-timeout']);

const expectedFor = (name: string, jobType: string) => {
  const e = EXPECTED[name];
  return typeof e === 'string' ? e : e[jobType as keyof typeof B];
};

const idOf = (jobType: string, error: string | null, log: readonly string[] = []) =>
  matchPattern(BUILTIN_ERROR_PATTERNS, { job_type: jobType, error, debug: null }, log)?.id;

/** The last line of a traceback, `type: message` (the exception line a log shows last). */
const exceptionLine = (traceback: string) => {
  const lines = traceback.trimEnd().split('\n');
  const at = lines.findLastIndex((l) => /^[\w.]+(?:Error|Exception|Timeout|Exceeded)\b|^[\w.]+: /.test(l));
  return lines.slice(at).join('\n');
};

function readCases(dir: string): Record<string, Case> {
  return (JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { cases: Record<string, Case> }).cases;
}

/** Every case of a folder, as job error (exception line, str alone) and as the job's traceback in the log. */
function checkFolder(dir: string, names: readonly string[]) {
  const cases = readCases(dir);
  expect(Object.keys(cases).sort()).toEqual([...names].sort());
  for (const name of names) {
    const traceback = readFileSync(path.join(dir, `${name}.txt`), 'utf8');
    const c = cases[name];
    for (const jobType of [IMPORT, OTHER]) {
      const want = expectedFor(name, jobType);
      expect(idOf(jobType, null, traceback.split('\n')), `${name} traceback in the log (${jobType})`).toBe(want);
      expect(idOf(jobType, exceptionLine(traceback)), `${name} exception line as error (${jobType})`).toBe(want);
      expect(idOf(jobType, c.message), `${name} str(e) as error (${jobType})`).toBe(
        TOO_BARE_ALONE.has(name) ? undefined : want,
      );
    }
  }
}

describe('the committed tracebacks (test/fixtures/tracebacks)', () => {
  it('each is named by its family, in the import job and in any other job type', () => {
    checkFolder(FIXTURES, Object.keys(EXPECTED));
  });

  it('were made by the libraries they name, with versions recorded', () => {
    const cases = readCases(FIXTURES);
    const versions = JSON.parse(readFileSync(path.join(FIXTURES, 'index.json'), 'utf8')).cases as Record<
      string,
      { version: string; python: string }
    >;
    for (const [name, c] of Object.entries(cases)) {
      expect(versions[name].version, name).toMatch(/^\d+\.\d+/);
      expect(versions[name].python, name).toMatch(/^3\.\d+\.\d+$/);
      // The exception line of the traceback is the recorded type and message.
      const traceback = readFileSync(path.join(FIXTURES, `${name}.txt`), 'utf8');
      expect(traceback, name).toContain('Traceback (most recent call last):');
      expect(traceback, name).toContain(c.message.split('\n')[0]);
    }
    expect(cases['orjson-circular']).toMatchObject({ library: 'orjson', message: 'Recursion limit reached' });
  });

  it("PostgreSQL's own jsonb limits are failure B for the import job, and generic elsewhere", () => {
    const pg = JSON.parse(readFileSync(path.join(FIXTURES, 'postgres.json'), 'utf8')) as {
      cases: Record<string, { code: string; message: string; detail: string | null }>;
    };
    expect(Object.keys(pg.cases).sort()).toEqual([
      'jsonb-array-too-large',
      'jsonb-object-too-large',
      'jsonb-string-too-long',
    ]);
    for (const c of Object.values(pg.cases)) {
      expect(c.code).toBe('54000');
      expect(idOf(IMPORT, c.message)).toBe('circular-metadata');
      expect(idOf(OTHER, c.message)).toBe('unstorable-structure');
      // As psql and server logs print it.
      expect(idOf(IMPORT, `ERROR:  ${c.message}`)).toBe('circular-metadata');
    }
  });
});

describe('the same failures made live by python3 and the Debian packages', () => {
  it('every case the installed libraries make is named as its committed fixture is', () => {
    if (!existsSync(PYTHON)) {
      throw new Error(
        `${PYTHON} is missing: apt-get install python3 python3-ujson python3-simplejson python3-requests python3-httpx`,
      );
    }
    const out = tempDir('tracebacks-');
    execFileSync(PYTHON, [path.join(FIXTURES, 'generate.py'), '--out', out, '--libraries', LIVE_LIBRARIES.join(',')], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const names = Object.entries(readCases(FIXTURES))
      .filter(([, c]) => LIVE_LIBRARIES.includes(c.library))
      .map(([name]) => name);
    expect(names.length).toBeGreaterThan(25);
    checkFolder(out, names);
  });
});

/** Throws what `fn` throws, for Node's wordings. */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('did not throw');
}

describe("Node's own wordings", () => {
  it('JSON.stringify on a circular metadata object, with its "--> starting at object" lines', () => {
    const metadata: Record<string, unknown> = { source_line: { line_number: 7 } };
    (metadata.source_line as Record<string, unknown>).metadata = metadata;
    const e = thrown(() => JSON.stringify(metadata));
    expect(e.message).toContain('--> starting at object with constructor');
    expect(idOf(IMPORT, `${e.name}: ${e.message}`)).toBe('circular-metadata');
    expect(idOf(IMPORT, null, (e.stack ?? '').split('\n'))).toBe('circular-metadata');
    expect(idOf(OTHER, `${e.name}: ${e.message}`)).toBe('unstorable-structure');
  });

  it('JSON.stringify on a BigInt', () => {
    const e = thrown(() => JSON.stringify({ size: 10n }));
    expect(idOf(IMPORT, String(e))).toBe('circular-metadata');
  });

  it('a write to a full disk (/dev/full answers every write with ENOSPC)', () => {
    const e = thrown(() => writeFileSync('/dev/full', 'x'));
    expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(idOf(OTHER, String(e))).toBe('disk-full');
  });

  it('a refused connection', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const e = await new Promise<Error>((resolve) => net.connect(port, '127.0.0.1').on('error', resolve));
    expect(idOf(OTHER, String(e))).toBe('worker-network-error');
  });

  it('a missing module (require) and a missing package (import)', async () => {
    const required = thrown(() => createRequire(import.meta.url)('hd-worker-missing-module'));
    expect(idOf(OTHER, String(required))).toBe('worker-import-error');
    const imported = await import('hd-worker-missing-package' as string).catch((e: Error) => e);
    expect(idOf(OTHER, String(imported))).toBe('worker-import-error');
  });

  it("a 413 in Node's phrase", () => {
    expect(idOf(IMPORT, `413 ${STATUS_CODES[413]}`)).toBe('circular-metadata');
  });
});

describe('lines quoted from real reports', () => {
  const quoted: [source: string, jobType: string, text: string, id: string | undefined][] = [
    // https://github.com/lllyasviel/FramePack/issues/369 (torch ≥ 2.5 names the class torch.OutOfMemoryError)
    [
      'torch.OutOfMemoryError',
      OTHER,
      'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 29.76 GiB',
      'gpu-out-of-memory',
    ],
    // https://github.com/carolchenyx/MGFN./issues/35
    [
      'torch.cuda.OutOfMemoryError',
      IMPORT,
      'torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.70 GiB. GPU 0 has a total capacty of 6.00 GiB of which 0 bytes is free. Of the allocated memory 2.93 GiB is allocated by PyTorch, and 2.30 GiB is reserved by PyTorch but unallocated. If reserved but unallocated memory is large try setting max_split_size_mb to avoid fragmentation.  See documentation for Memory Management and PYTORCH_CUDA_ALLOC_CONF',
      'gpu-out-of-memory',
    ],
    // https://github.com/open-mmlab/mmsegmentation/issues/944 (torch before 1.13: a RuntimeError)
    [
      'RuntimeError: CUDA out of memory',
      OTHER,
      'RuntimeError: CUDA out of memory. Tried to allocate 1006.00 MiB (GPU 0; 10.91 GiB total capacity; 9.18 GiB already allocated; 569.81 MiB free; 9.49 GiB reserved in total by PyTorch)',
      'gpu-out-of-memory',
    ],
    // https://github.com/rafaelwendel/phpsupabase/issues/15 (PostgREST's body on an expired key)
    [
      'PGRST301 JWT expired',
      IMPORT,
      '{"code":"PGRST301","details":null,"hint":null,"message":"JWT expired"}',
      'job-auth-rejected',
    ],
    // https://github.com/supabase/supabase-py/issues/1228 (postgrest-py's APIError)
    [
      'postgrest.exceptions.APIError',
      OTHER,
      "postgrest.exceptions.APIError: {'message': 'Expected 3 parts in JWT; got 1', 'code': 'PGRST301', 'hint': None, 'details': None}",
      'job-auth-rejected',
    ],
    // https://github.com/supabase/supabase-py/issues/195
    ['JWSError', OTHER, 'JWSError JWSInvalidSignature', 'job-auth-rejected'],
    // https://github.com/supabase/storage-js/issues/209 (Storage's answer for a missing object)
    [
      'Object not found',
      IMPORT,
      '{"statusCode":"404","error":"not_found","message":"Object not found"}',
      'storage-object-unavailable',
    ],
    // https://github.com/supabase/storage/issues/469
    [
      'Bucket not found',
      OTHER,
      'Error status 400: {"statusCode":"404","error":"Bucket not found","message":"Bucket not found"}',
      'storage-object-unavailable',
    ],
    // https://github.com/The-Vibe-Company/quivr/issues/2375 (httpx through supabase-py)
    [
      'httpx.ReadTimeout',
      OTHER,
      '    raise mapped_exc(message) from exc\nhttpx.ReadTimeout: timed out',
      'worker-network-error',
    ],
    // https://github.com/nautobot/nautobot-app-ssot/issues/67 (psycopg2's wording of the jsonb limit)
    [
      'psycopg2 ProgramLimitExceeded',
      IMPORT,
      'psycopg2.errors.ProgramLimitExceeded: total size of jsonb object elements exceeds the maximum of 268435455 bytes',
      'circular-metadata',
    ],
    // https://github.com/ijl/orjson/issues/37 (orjson's own class name in IPython)
    [
      'orjson JSONEncodeError',
      IMPORT,
      'JSONEncodeError: Type is not JSON serializable: numpy.int32',
      'circular-metadata',
    ],
    // https://github.com/ultrajson/ultrajson/issues/339
    ['ujson OverflowError', OTHER, 'OverflowError: Maximum recursion level reached', 'unstorable-structure'],
    // https://github.com/supabase/supabase-py/issues/721: a JSONDecodeError from Storage's response body (httpx
    // .json()), not from the JSONL: not input-unreadable, and nothing else claims it.
    [
      'JSONDecodeError in a response body',
      IMPORT,
      [
        '  File "/usr/local/lib/python3.10/site-packages/storage3/_sync/file_api.py", line 49, in _request',
        '    {**response.json(), "statusCode": response.status_code}',
        '  File "/usr/local/lib/python3.10/site-packages/httpx/_models.py", line 761, in json',
        '    return jsonlib.loads(self.content, **kwargs)',
        'json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)',
      ].join('\n'),
      undefined,
    ],
  ];
  it.each(quoted)('%s (%s)', (_source, jobType, text, id) => {
    expect(idOf(jobType, null, text.split('\n'))).toBe(id);
  });
});
