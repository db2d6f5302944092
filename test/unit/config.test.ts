import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { EXIT, RunbookError } from '../../lib/core/exit-codes.ts';
import { DEFAULT_RULES } from '../../lib/core/stuck-rules.ts';
import { type ConfigInput, loadConfig, stuckRulesFrom } from '../../lib/io/config.ts';
import { memoryFiles, opaqueKey, signedJwt } from '../helpers/fake-ports.ts';

const CWD = '/work/laptop';
const REF_A = 'aaaaaaaaaaaaaaaaaaaa';
const REF_B = 'bbbbbbbbbbbbbbbbbbbb';
const REF_C = 'cccccccccccccccccccc';
const url = (ref: string) => `https://${ref}.supabase.co`;

let keyA: string;
let keyB: string;
let keyC: string;
const secretKey = opaqueKey('secret');

beforeAll(async () => {
  [keyA, keyB, keyC] = await Promise.all([REF_A, REF_B, REF_C].map((ref) => signedJwt({ role: 'service_role', ref })));
});

function input(o: { flag?: string; env?: Record<string, string>; files?: Record<string, string> }): ConfigInput {
  const files = memoryFiles(o.files);
  return { envFileFlag: o.flag, cwd: CWD, env: o.env ?? {}, readFile: files.read };
}

function thrown(fn: () => unknown): RunbookError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RunbookError);
    return e as RunbookError;
  }
  throw new Error('expected a RunbookError, nothing was thrown');
}

describe('loadConfig precedence', () => {
  it('takes --env-file over the environment and over ./.env', () => {
    const c = loadConfig(
      input({
        flag: 'ops/prod.env',
        env: { SUPABASE_URL: url(REF_B), SUPABASE_SERVICE_ROLE_KEY: keyB },
        files: {
          [path.join(CWD, 'ops/prod.env')]: `SUPABASE_URL=${url(REF_A)}\nSUPABASE_SERVICE_ROLE_KEY=${keyA}\n`,
          [path.join(CWD, '.env')]: `SUPABASE_URL=${url(REF_C)}\nSUPABASE_SERVICE_ROLE_KEY=${keyC}\n`,
        },
      }),
    );
    expect(c.values.SUPABASE_URL).toBe(url(REF_A));
    expect(c.supabaseKey).toBe(keyA);
    expect(c.envFile).toBe(path.join(CWD, 'ops/prod.env'));
    expect(c.laptop.source).toBe(`SUPABASE_URL in ${path.join(CWD, 'ops/prod.env')}`);
    expect(c.laptop.url?.projectRef).toBe(REF_A);
  });

  it('takes the environment over ./.env when no --env-file is given', () => {
    const c = loadConfig(
      input({
        env: { SUPABASE_URL: url(REF_B), SUPABASE_SERVICE_ROLE_KEY: keyB },
        files: { [path.join(CWD, '.env')]: `SUPABASE_URL=${url(REF_C)}\nSUPABASE_SERVICE_ROLE_KEY=${keyC}\n` },
      }),
    );
    expect(c.values.SUPABASE_URL).toBe(url(REF_B));
    expect(c.supabaseKey).toBe(keyB);
    expect(c.laptop.source).toBe('SUPABASE_URL in the environment');
    // The file was still read: its other variables count.
    expect(c.envFile).toBe(path.join(CWD, '.env'));
  });

  it('falls back to ./.env for what the environment does not set', () => {
    const c = loadConfig(
      input({
        env: { SPARK_HOST: 'spark-env' },
        files: {
          [path.join(CWD, '.env')]:
            `SUPABASE_URL=${url(REF_C)}\nSUPABASE_SERVICE_ROLE_KEY=${keyC}\nSPARK_HOST=spark-file\n`,
        },
      }),
    );
    expect(c.values.SUPABASE_URL).toBe(url(REF_C));
    expect(c.values.SPARK_HOST).toBe('spark-env');
    expect(c.laptop.source).toBe(`SUPABASE_URL in ${path.join(CWD, '.env')}`);
  });

  it('reads only its own names from the environment', () => {
    const c = loadConfig(
      input({ env: { SUPABASE_URL: url(REF_A), SUPABASE_SECRET_KEY: secretKey, HOME: '/home/x', PATH: '/bin' } }),
    );
    expect(c.values.HOME).toBeUndefined();
    expect(c.issues.map((i) => i.name)).not.toContain('PATH');
    expect(c.envFile).toBeUndefined();
  });

  it('uses SUPABASE_SECRET_KEY when no service-role key is set, and registers both kinds of secret', () => {
    const c = loadConfig(input({ env: { SUPABASE_URL: url(REF_A), SUPABASE_SECRET_KEY: secretKey } }));
    expect(c.laptop.keyVar).toBe('SUPABASE_SECRET_KEY');
    expect(c.laptop.key?.kind).toBe('secret');
    expect(c.supabaseKey).toBe(secretKey);
    expect(c.secrets).toEqual([secretKey]);
  });

  it('never puts a key into the laptop side it returns', () => {
    const c = loadConfig(input({ env: { SUPABASE_URL: url(REF_A), SUPABASE_SERVICE_ROLE_KEY: keyA } }));
    expect(JSON.stringify(c.laptop)).not.toContain(keyA);
    expect(JSON.stringify(c.laptop)).not.toContain(keyA.split('.')[2]);
    expect(c.secrets).toContain(keyA);
  });

  it('keeps the project ref a self-hosted URL does not carry', () => {
    const c = loadConfig(
      input({
        env: {
          SUPABASE_URL: 'https://supabase.internal.example',
          SUPABASE_SERVICE_ROLE_KEY: keyA,
          SUPABASE_PROJECT_REF: REF_A,
        },
      }),
    );
    expect(c.laptop.url?.kind).toBe('custom');
    expect(c.laptop.declaredRef).toBe(REF_A);
  });
});

describe('loadConfig failures', () => {
  it('says which config file is missing, with exit code 2', () => {
    const e = thrown(() => loadConfig(input({ flag: 'nope/.env.prod', env: { SUPABASE_URL: url(REF_A) } })));
    expect(e.code).toBe(EXIT.couldNotRun);
    expect(e.message).toBe('config file nope/.env.prod: no such file');
    expect(e.fix).toContain('.env.example');
  });

  it('with no configuration at all, says so in one line and points at .env.example and npm run demo', () => {
    const e = thrown(() => loadConfig(input({})));
    expect(e.code).toBe(EXIT.couldNotRun);
    expect(e.message).toBe(`no configuration: no .env in ${CWD} and SUPABASE_URL is not set`);
    expect(e.message).not.toContain('\n');
    expect(e.fix).toContain('.env.example');
    expect(e.fix).toContain('npm run demo');
    expect(e.fix).not.toContain('\n');
  });

  it('turns an unreadable file into a RunbookError naming it', () => {
    const e = thrown(() =>
      loadConfig({
        cwd: CWD,
        env: {},
        readFile: () => {
          throw Object.assign(new Error('permission denied'), { code: 'EACCES' });
        },
      }),
    );
    expect(e.message).toBe(`cannot read ${path.join(CWD, '.env')}: EACCES`);
  });

  const errorCases: [name: string, vars: () => Record<string, string>, message: RegExp][] = [
    [
      'no key at all',
      () => ({ SUPABASE_URL: url(REF_A) }),
      /neither SUPABASE_SERVICE_ROLE_KEY nor SUPABASE_SECRET_KEY is set/,
    ],
    [
      'a URL with a path',
      () => ({ SUPABASE_URL: `${url(REF_A)}/rest/v1`, SUPABASE_SERVICE_ROLE_KEY: keyA }),
      /SUPABASE_URL has a path/,
    ],
    [
      'a bad port',
      () => ({ SUPABASE_URL: url(REF_A), SUPABASE_SERVICE_ROLE_KEY: keyA, SPARK_PORT: '99999' }),
      /SPARK_PORT must be a whole number/,
    ],
    [
      'two errors',
      () => ({ SUPABASE_URL: url(REF_A), SUPABASE_SERVICE_ROLE_KEY: keyA, SPARK_PORT: 'x', MAX_ATTEMPTS: '0' }),
      /^SPARK_PORT must be a whole number/,
    ],
  ];

  it('names every config error: the first with its fix, the others each on a line below it', () => {
    const e = thrown(() =>
      loadConfig(
        input({
          env: { SUPABASE_URL: url(REF_A), SUPABASE_SERVICE_ROLE_KEY: keyA, SPARK_PORT: 'x', MAX_ATTEMPTS: '0' },
        }),
      ),
    );
    expect(e.message).toMatch(/^SPARK_PORT must be a whole number .*\(in the environment\)$/);
    expect(e.fix.split('\n')).toHaveLength(2);
    expect(e.fix.split('\n')[1]).toMatch(/^ {2}also: MAX_ATTEMPTS must be a whole number .* → /);
  });

  it('says which misspelled name stands where a required one is missing', () => {
    const file = `SUPABSE_URL=${url(REF_A)}\nSUPABASE_SERVICE_ROLE_KEY=${keyA}\n`;
    const e = thrown(() => loadConfig(input({ files: { [`${CWD}/.env`]: file } })));
    expect(e.message).toBe(`SUPABASE_URL is not set (in ${CWD}/.env)`);
    expect(e.fix).toBe('SUPABSE_URL is set instead: did you mean SUPABASE_URL? (rename it)');
  });

  it.each(errorCases)('reports %s as a RunbookError saying where the config came from', (_name, vars, message) => {
    const e = thrown(() => loadConfig(input({ env: vars() })));
    expect(e.code).toBe(EXIT.couldNotRun);
    expect(e.message).toMatch(message);
    expect(e.message).toContain('(in the environment)');
    expect(e.fix.length).toBeGreaterThan(0);
  });

  it('never puts the key into an error message', () => {
    const e = thrown(() =>
      loadConfig(input({ env: { SUPABASE_URL: url(REF_A), SUPABASE_SERVICE_ROLE_KEY: `${keyA}x y` } })),
    );
    expect(`${e.message} ${e.fix}`).not.toContain(keyA);
  });

  it('keeps warnings (an anon key) as issues instead of failing', async () => {
    const anon = await signedJwt({ role: 'anon', ref: REF_A });
    const c = loadConfig(input({ env: { SUPABASE_URL: url(REF_A), SUPABASE_SERVICE_ROLE_KEY: anon } }));
    expect(c.issues).toEqual([expect.objectContaining({ name: 'SUPABASE_SERVICE_ROLE_KEY', severity: 'warning' })]);
    expect(c.laptop.key?.privileged).toBe(false);
  });
});

describe('stuckRulesFrom', () => {
  it('uses the defaults when neither flags nor env set anything', () => {
    expect(stuckRulesFrom({}, {})).toEqual(DEFAULT_RULES);
  });

  it('takes env values over the defaults', () => {
    expect(stuckRulesFrom({ STUCK_QUEUED_MINUTES: '30', STUCK_RUNNING_MINUTES: '120', MAX_ATTEMPTS: '5' }, {})).toEqual(
      {
        queuedMinutes: 30,
        runningMinutes: 120,
        maxAttempts: 5,
        perJobType: {},
      },
    );
  });

  it('takes flags over env values', () => {
    const r = stuckRulesFrom(
      { STUCK_QUEUED_MINUTES: '30', STUCK_RUNNING_MINUTES: '120', MAX_ATTEMPTS: '5' },
      { queuedMinutes: '7', runningMinutes: '8', maxAttempts: '9' },
    );
    expect(r).toMatchObject({ queuedMinutes: 7, runningMinutes: 8, maxAttempts: 9 });
  });

  it('accepts an env value that loadConfig accepted, surrounding spaces included', () => {
    // validateEnv trims before checking STUCK_* values; the rules must not then reject the same value.
    const c = loadConfig(
      input({ env: { SUPABASE_URL: url(REF_A), SUPABASE_SERVICE_ROLE_KEY: keyA, STUCK_QUEUED_MINUTES: ' 30 ' } }),
    );
    expect(stuckRulesFrom(c.values, {}).queuedMinutes).toBe(30);
  });

  it('merges repeated --job-type-rule flags, the later one winning per field', () => {
    const r = stuckRulesFrom({}, { jobTypeRules: ['a:queued=5,running=100', 'a:running=200;b:attempts=2'] });
    expect(r.perJobType).toEqual({ a: { queuedMinutes: 5, runningMinutes: 200 }, b: { maxAttempts: 2 } });
  });

  const bad: [name: string, flags: Parameters<typeof stuckRulesFrom>[1], message: RegExp][] = [
    ['zero', { queuedMinutes: '0' }, /^--queued-minutes must be a whole number of at least 1 \(got "0"\)$/],
    ['a fraction', { runningMinutes: '1.5' }, /^--running-minutes must be .*"1.5"/],
    ['a negative', { maxAttempts: '-1' }, /^--max-attempts must be .*"-1"/],
    ['words', { queuedMinutes: 'ten' }, /"ten"/],
    ['a huge number', { queuedMinutes: '1234567' }, /"1234567"/],
    ['a bad job-type rule', { jobTypeRules: ['x:queued=0'] }, /^--job-type-rule: "queued=0" in "x:queued=0"/],
  ];
  it.each(bad)('rejects %s with a RunbookError naming the flag', (_name, flags, message) => {
    const e = thrown(() => stuckRulesFrom({}, flags));
    expect(e.code).toBe(EXIT.couldNotRun);
    expect(e.message).toMatch(message);
    expect(e.fix).toMatch(/^e\.g\. --/);
  });

  it('cuts a very long bad value in its message', () => {
    const e = thrown(() => stuckRulesFrom({}, { queuedMinutes: 'x'.repeat(500) }));
    expect(e.message.length).toBeLessThan(120);
  });
});
