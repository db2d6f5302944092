import { describe, expect, it } from 'vitest';
import {
  type EnvIssue,
  findAppSupabaseUrl,
  LAPTOP_ENV_SCHEMA,
  parseEnvText,
  validateEnv,
} from '../../lib/io/env-file.ts';

// The Supabase CLI's public local defaults (`supabase status`), assembled here so the repository's key scanner,
// which cannot tell a documented public constant from a leak, stays quiet.
const CLI_DEFAULT_SECRET = ['sb', 'secret', 'N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz'].join('_');

function fakeJwt(payload: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}.${'s1gNatUre'.repeat(5).slice(0, 43)}`;
}

const REF = 'abcdefghijklmnopqrst';
const OTHER_REF = 'zyxwvutsrqponmlkjihg';
const URL_OK = `https://${REF}.supabase.co`;
/** A database password as the dashboard makes them (random, URL-safe); made here, never a real one. */
const DB_PASSWORD = 'q7Zr2WkLx9Pm4Tv8';
const DB_DIRECT = `postgresql://postgres:${DB_PASSWORD}@db.${REF}.supabase.co:5432/postgres`;
const SERVICE_JWT = fakeJwt({ iss: 'supabase', ref: REF, role: 'service_role', exp: 2_000_000_000 });
const ANON_JWT = fakeJwt({ iss: 'supabase', ref: REF, role: 'anon', exp: 2_000_000_000 });
const OTHER_SERVICE_JWT = fakeJwt({ iss: 'supabase', ref: OTHER_REF, role: 'service_role', exp: 2_000_000_000 });
const SECRET = ['sb', 'secret', 'Zq81vLx0PmR4tYwq2Hn5aB_c9Dk3Xz'].join('_') /* a fake key, assembled at run time */;
const PUBLISHABLE = 'sb_publishable_Kd93mQpX7wLz0aTy5RbN1c_Vf8Hg2Jk4';
const FINGERPRINT = 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s';
const PEM = [
  `-----BEGIN ${'OPENSSH'} PRIVATE KEY-----`,
  'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW',
  'QyNTUxOQAAACDx7Fp0cm9uZ2tleW1hdGVyaWFsaGVyZW5vdHJlYWxseXJlYWw=',
  '-----END OPENSSH PRIVATE KEY-----',
].join('\n');

describe('parseEnvText', () => {
  it('parses dotenv syntax without printing', () => {
    const text = [
      '# comment',
      'SUPABASE_URL=https://x.supabase.co',
      'export SPARK_HOST=100.64.0.7',
      'SPARK_PORT = 2222 # inline comment',
      "SPARK_USER='spark user'",
      `SPARK_SSH_KEY="${PEM.replace(/\n/g, '\\n')}"`,
      'MULTI="line one',
      'line two"',
      'EMPTY=',
      '',
    ].join('\n');
    expect(parseEnvText(text)).toEqual({
      SUPABASE_URL: 'https://x.supabase.co',
      SPARK_HOST: '100.64.0.7',
      SPARK_PORT: '2222',
      SPARK_USER: 'spark user',
      SPARK_SSH_KEY: PEM,
      MULTI: 'line one\nline two',
      EMPTY: '',
    });
  });

  it('handles CRLF files and returns a plain object', () => {
    const parsed = parseEnvText('A=1\r\nB=2\r\n');
    expect(parsed).toEqual({ A: '1', B: '2' });
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
  });
});

describe('LAPTOP_ENV_SCHEMA', () => {
  it('covers the Configuration table and the tuning knobs', () => {
    expect(Object.keys(LAPTOP_ENV_SCHEMA).sort()).toEqual(
      [
        'SUPABASE_URL',
        'SUPABASE_SERVICE_ROLE_KEY',
        'SUPABASE_SECRET_KEY',
        'SUPABASE_PROJECT_REF',
        'SUPABASE_DB_URL',
        'SPARK_HOST',
        'SPARK_PORT',
        'SPARK_USER',
        'SPARK_SSH_KEY_PATH',
        'SPARK_SSH_KEY',
        'SPARK_KNOWN_HOSTS',
        'SPARK_HOST_KEY_SHA256',
        'SPARK_WORKER_DIR',
        'APP_ENV_FILE',
        'APP_SUPABASE_URL',
        'STUCK_QUEUED_MINUTES',
        'STUCK_RUNNING_MINUTES',
        'MAX_ATTEMPTS',
        'RUNBOOK_OPERATOR',
        'REQUEUE_AUDIT_FILE',
        'HD_RUNBOOKS_PATTERNS_FILE',
        'WORKER_RESTART_CMD',
      ].sort(),
    );
    for (const [name, spec] of Object.entries(LAPTOP_ENV_SCHEMA)) {
      expect(spec.name).toBe(name);
      expect(spec.description).not.toBe('');
    }
  });

  it('marks exactly the key variables secret', () => {
    const secret = Object.values(LAPTOP_ENV_SCHEMA)
      .filter((s) => s.secret)
      .map((s) => s.name)
      .sort();
    expect(secret).toEqual(['SPARK_SSH_KEY', 'SUPABASE_DB_URL', 'SUPABASE_SECRET_KEY', 'SUPABASE_SERVICE_ROLE_KEY']);
  });
});

describe('validateEnv: values', () => {
  const cases: {
    name: string;
    vars: Record<string, string>;
    ok?: boolean;
    issue?: RegExp;
    fix?: RegExp;
    severity?: 'error' | 'warning';
  }[] = [
    { name: 'cloud URL', vars: { SUPABASE_URL: URL_OK }, ok: true },
    // The two shapes of Dashboard > Connect: the direct host, and the pooler whose user carries the ref.
    { name: 'direct DB URL', vars: { SUPABASE_URL: URL_OK, SUPABASE_DB_URL: DB_DIRECT }, ok: true },
    {
      name: 'pooler DB URL',
      vars: {
        SUPABASE_URL: URL_OK,
        SUPABASE_DB_URL: `postgresql://postgres.${REF}:${DB_PASSWORD}@aws-0-eu-central-1.pooler.supabase.com:5432/postgres`,
      },
      ok: true,
    },
    {
      name: 'DB URL with the placeholder',
      vars: { SUPABASE_DB_URL: `postgresql://postgres:[YOUR-PASSWORD]@db.${REF}.supabase.co:5432/postgres` },
      issue: /still holds the \[YOUR-PASSWORD\] placeholder/,
      // An optional check's variable never stops a runbook: every SUPABASE_DB_URL problem is a warning.
      severity: 'warning',
    },
    {
      name: 'DB URL that is the API URL',
      vars: { SUPABASE_DB_URL: URL_OK },
      issue: /not a postgresql:\/\//,
      severity: 'warning',
    },
    {
      name: 'DB URL that is no URL',
      vars: { SUPABASE_DB_URL: `${DB_PASSWORD}@db` },
      issue: /is not a URL/,
      severity: 'warning',
    },
    {
      name: 'DB URL of another project',
      vars: { SUPABASE_URL: URL_OK, SUPABASE_DB_URL: DB_DIRECT.replace(REF, 'zyxwvutsrqponmlkjihg') },
      issue: /SUPABASE_DB_URL is project zyxwvutsrqponmlkjihg, but SUPABASE_URL is project/,
      severity: 'warning',
    },
    {
      name: 'URL with /rest/v1',
      vars: { SUPABASE_URL: `${URL_OK}/rest/v1` },
      issue: /SUPABASE_URL has a path/,
      fix: /drop the path/,
    },
    { name: 'URL without scheme', vars: { SUPABASE_URL: `${REF}.supabase.co` }, issue: /no scheme/ },
    { name: 'service_role JWT', vars: { SUPABASE_URL: URL_OK, SUPABASE_SERVICE_ROLE_KEY: SERVICE_JWT }, ok: true },
    { name: 'secret key', vars: { SUPABASE_SECRET_KEY: SECRET }, ok: true },
    { name: 'service_role JWT in SUPABASE_SECRET_KEY', vars: { SUPABASE_SECRET_KEY: SERVICE_JWT }, ok: true },
    {
      name: 'anon JWT as service key',
      vars: { SUPABASE_SERVICE_ROLE_KEY: ANON_JWT },
      issue: /is a anon JWT; the runbooks need a key that bypasses RLS/,
      severity: 'warning',
    },
    {
      name: 'publishable as secret',
      vars: { SUPABASE_SECRET_KEY: PUBLISHABLE },
      issue: /publishable key/,
      fix: /sb_secret_/,
      severity: 'warning',
    },
    {
      name: 'key of another project',
      vars: { SUPABASE_URL: URL_OK, SUPABASE_SERVICE_ROLE_KEY: OTHER_SERVICE_JWT },
      issue: new RegExp(`belongs to project ${OTHER_REF}, but SUPABASE_URL is project ${REF}`),
      severity: 'warning',
    },
    {
      name: 'key vs SUPABASE_PROJECT_REF for a custom URL',
      vars: {
        SUPABASE_URL: 'http://10.0.0.5:8000',
        SUPABASE_PROJECT_REF: REF,
        SUPABASE_SERVICE_ROLE_KEY: OTHER_SERVICE_JWT,
      },
      issue: /belongs to project/,
      severity: 'warning',
    },
    { name: 'quoted key', vars: { SUPABASE_SERVICE_ROLE_KEY: `'${SERVICE_JWT}'` }, issue: /quotes/, fix: /now eyJ…/ },
    { name: 'truncated key', vars: { SUPABASE_SERVICE_ROLE_KEY: SERVICE_JWT.slice(0, -5) }, issue: /cut short/ },
    {
      name: 'CLI local key against a hosted project',
      vars: { SUPABASE_URL: URL_OK, SUPABASE_SECRET_KEY: CLI_DEFAULT_SECRET },
      issue: /local default key, but SUPABASE_URL is a hosted project/,
    },
    { name: 'project ref', vars: { SUPABASE_PROJECT_REF: REF }, ok: true },
    { name: 'project ref as URL', vars: { SUPABASE_PROJECT_REF: URL_OK }, issue: /looks like a URL/ },
    {
      name: 'project ref mismatch',
      vars: { SUPABASE_URL: URL_OK, SUPABASE_PROJECT_REF: OTHER_REF },
      issue: /SUPABASE_PROJECT_REF is zyx/,
    },
    { name: 'project ref upper case', vars: { SUPABASE_PROJECT_REF: 'ABC' }, issue: /not a project ref/ },
    { name: 'host IP', vars: { SPARK_HOST: '100.64.0.7' }, ok: true },
    { name: 'host alias', vars: { SPARK_HOST: 'spark' }, ok: true },
    { name: 'host IPv6', vars: { SPARK_HOST: 'fd7a:115c:a1e0::1' }, ok: true },
    { name: 'host with user', vars: { SPARK_HOST: 'sparkuser@spark' }, issue: /user name/, fix: /SPARK_USER/ },
    { name: 'host with port', vars: { SPARK_HOST: 'spark:2222' }, issue: /port/, fix: /SPARK_PORT/ },
    { name: 'host as URL', vars: { SPARK_HOST: 'ssh://spark' }, issue: /is a URL/ },
    { name: 'port', vars: { SPARK_PORT: '2222' }, ok: true },
    {
      name: 'port not a number',
      vars: { SPARK_PORT: '22a' },
      issue: /SPARK_PORT must be a whole number from 1 to 65535/,
    },
    { name: 'port zero', vars: { SPARK_PORT: '0' }, issue: /from 1 to 65535/ },
    { name: 'port too big', vars: { SPARK_PORT: '70000' }, issue: /from 1 to 65535/ },
    { name: 'user', vars: { SPARK_USER: 'sparkuser' }, ok: true },
    { name: 'user with host', vars: { SPARK_USER: 'sparkuser@spark' }, issue: /contains @/ },
    { name: 'key path', vars: { SPARK_SSH_KEY_PATH: '~/.ssh/id_ed25519' }, ok: true },
    {
      name: 'key path to .pub',
      vars: { SPARK_SSH_KEY_PATH: '~/.ssh/id_ed25519.pub' },
      issue: /public key/,
      fix: /without \.pub/,
    },
    {
      name: 'key material as path',
      vars: { SPARK_SSH_KEY_PATH: PEM },
      issue: /holds key material/,
      fix: /SPARK_SSH_KEY/,
    },
    {
      name: 'key path and key',
      vars: { SPARK_SSH_KEY_PATH: '~/.ssh/id', SPARK_SSH_KEY: PEM },
      issue: /both/,
      severity: 'warning',
    },
    { name: 'private key', vars: { SPARK_SSH_KEY: PEM }, ok: true },
    {
      name: 'private key, base64-encoded (CI secret)',
      vars: { SPARK_SSH_KEY: Buffer.from(PEM).toString('base64') },
      ok: true,
    },
    {
      name: 'private key with literal \\n',
      vars: { SPARK_SSH_KEY: PEM.replace(/\n/g, '\\n') },
      issue: /literal \\n/,
      severity: 'warning',
    },
    {
      name: 'public key as key',
      vars: { SPARK_SSH_KEY: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH me@laptop' },
      issue: /public key/,
    },
    { name: 'key without END', vars: { SPARK_SSH_KEY: PEM.split('\n').slice(0, 2).join('\n') }, issue: /no -----END/ },
    { name: 'not a key', vars: { SPARK_SSH_KEY: 'hunter2hunter2' }, issue: /does not start with/ },
    { name: 'fingerprint', vars: { SPARK_HOST_KEY_SHA256: FINGERPRINT }, ok: true },
    {
      name: 'fingerprint without prefix',
      vars: { SPARK_HOST_KEY_SHA256: FINGERPRINT.slice(7) },
      issue: /lacks the SHA256: prefix/,
    },
    {
      name: 'MD5 fingerprint',
      vars: { SPARK_HOST_KEY_SHA256: '16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48' },
      issue: /MD5/,
    },
    { name: 'short fingerprint', vars: { SPARK_HOST_KEY_SHA256: 'SHA256:abc' }, issue: /not a SHA256/ },
    {
      name: 'fingerprint with trailing space',
      vars: { SPARK_HOST_KEY_SHA256: `${FINGERPRINT} ` },
      issue: /whitespace/,
    },
    { name: 'known hosts', vars: { SPARK_KNOWN_HOSTS: '~/.ssh/known_hosts' }, ok: true },
    { name: 'path with trailing space', vars: { SPARK_WORKER_DIR: '~/srv/hd-worker ' }, issue: /whitespace/ },
    { name: 'path only spaces', vars: { REQUEUE_AUDIT_FILE: '   ' }, issue: /only whitespace/ },
    { name: 'app env file', vars: { APP_ENV_FILE: '../app/.env.local' }, ok: true },
    { name: 'app URL', vars: { APP_SUPABASE_URL: 'http://127.0.0.1:54321' }, ok: true },
    { name: 'app URL bad', vars: { APP_SUPABASE_URL: 'ftp://x' }, issue: /APP_SUPABASE_URL uses ftp/ },
    { name: 'stuck minutes', vars: { STUCK_QUEUED_MINUTES: '30', STUCK_RUNNING_MINUTES: '120' }, ok: true },
    { name: 'stuck minutes negative', vars: { STUCK_RUNNING_MINUTES: '-5' }, issue: /whole number/ },
    { name: 'stuck minutes decimal', vars: { STUCK_QUEUED_MINUTES: '1.5' }, issue: /whole number/ },
    { name: 'max attempts', vars: { MAX_ATTEMPTS: '5' }, ok: true },
    { name: 'max attempts zero', vars: { MAX_ATTEMPTS: '0' }, issue: /from 1 to 100/ },
    { name: 'operator', vars: { RUNBOOK_OPERATOR: 'Ana P.' }, ok: true },
    { name: 'operator with newline', vars: { RUNBOOK_OPERATOR: 'ana\nbob' }, issue: /control characters/ },
    { name: 'patterns file', vars: { HD_RUNBOOKS_PATTERNS_FILE: './patterns.json' }, ok: true },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const { issues, values } = validateEnv(c.vars, LAPTOP_ENV_SCHEMA);
      if (c.ok) {
        expect(issues).toEqual([]);
        for (const [k, v] of Object.entries(c.vars)) expect(values[k]).toBe(v);
        return;
      }
      const hit = issues.find((i) => c.issue?.test(i.message));
      expect(hit, `issues: ${JSON.stringify(issues)}`).toBeDefined();
      expect(hit?.severity).toBe(c.severity ?? 'error');
      if (c.fix) expect(hit?.fix).toMatch(c.fix);
      // An erroneous value is not handed on; a warned one is.
      if (hit && hit.severity === 'error') expect(values[hit.name]).toBeUndefined();
      if (hit && hit.severity === 'warning') expect(values[hit.name]).toBe(c.vars[hit.name]);
    });
  }

  it('never puts a secret value in a message or fix', () => {
    const secrets = [SERVICE_JWT, ANON_JWT, OTHER_SERVICE_JWT, SECRET, PUBLISHABLE, PEM, DB_PASSWORD];
    const all: EnvIssue[] = [];
    for (const c of cases) all.push(...validateEnv(c.vars, LAPTOP_ENV_SCHEMA).issues);
    // Misspelled names holding secrets too.
    all.push(...validateEnv({ SUPABSE_SERVICE_ROLE_KEY: SERVICE_JWT, SPARK_SSH_KY: PEM }, LAPTOP_ENV_SCHEMA).issues);
    const text = all.map((i) => `${i.message}\n${i.fix}`).join('\n');
    for (const s of secrets) {
      // The armour lines of a PEM key are public; its body lines are not.
      const parts = s === PEM ? PEM.split('\n').slice(1, -1) : [s, s.split('.')[2] ?? s, s.slice(12, 30), s.slice(-12)];
      for (const part of parts) expect(text).not.toContain(part);
    }
  });

  it('fills documented defaults and treats empty values as unset', () => {
    const { values, issues } = validateEnv({ SPARK_PORT: '', SPARK_HOST: 'spark' }, LAPTOP_ENV_SCHEMA);
    expect(issues).toEqual([]);
    expect(values).toEqual({
      SPARK_HOST: 'spark',
      SPARK_PORT: '2222',
      SPARK_USER: 'sparkuser',
      SPARK_KNOWN_HOSTS: '~/.ssh/known_hosts',
      SPARK_WORKER_DIR: '~/srv/hd-worker',
    });
  });
});

describe('validateEnv: unknown names', () => {
  const cases: [string, string | undefined][] = [
    ['SUPABSE_URL', 'did you mean SUPABASE_URL?'],
    ['SPARK_PROT', 'did you mean SPARK_PORT?'],
    ['SUPABASE_SERVICE_KEY', 'did you mean SUPABASE_SERVICE_ROLE_KEY?'],
    ['SPARK_KEY', 'did you mean SPARK_SSH_KEY?'],
    ['SPARK_SSH_KEYPATH', 'did you mean SPARK_SSH_KEY_PATH?'],
    ['MAX_ATTEMTPS', 'did you mean MAX_ATTEMPTS?'],
    ['RUNBOOK_OPERATER', 'did you mean RUNBOOK_OPERATOR?'],
    ['supabase_url', 'did you mean SUPABASE_URL?'],
    ['Spark_Host', 'did you mean SPARK_HOST?'],
    ['STUCK_MINUTES', 'did you mean STUCK_QUEUED_MINUTES?'],
    ['HD_RUNBOOKS_PATTERN', 'did you mean HD_RUNBOOKS_PATTERNS_FILE?'],
    ['REQUEUE_LOG', 'did you mean REQUEUE_AUDIT_FILE?'],
    ['SPARK_GPU', 'did you mean'],
    // Someone else's variables in the shared .env.
    ['NEXT_PUBLIC_SUPABASE_URL', undefined],
    ['NEXT_PUBLIC_SUPABASE_ANON_KEY', undefined],
    ['SUPABASE_ANON_KEY', undefined],
    ['SUPABASE_JWT_SECRET', undefined],
    ['SPARK_HOME', undefined],
    ['DATABASE_URL', undefined],
    ['WORKER_POLL_MS', undefined],
    ['NODE_ENV', undefined],
    ['PATH', undefined],
  ];
  for (const [name, fix] of cases) {
    it(`${name} → ${fix ?? 'ignored'}`, () => {
      const { issues, values } = validateEnv({ [name]: 'whatever-value-123' }, LAPTOP_ENV_SCHEMA);
      if (fix === undefined) {
        expect(issues).toEqual([]);
      } else {
        expect(issues).toHaveLength(1);
        expect(issues[0]).toMatchObject({ name, severity: 'warning' });
        expect(issues[0].fix.startsWith(fix)).toBe(true);
        expect(issues[0].message).not.toContain('whatever-value-123');
      }
      expect(values[name]).toBeUndefined();
    });
  }
});

describe('validateEnv: required variables', () => {
  it('reports a missing variable and a missing one-of group', () => {
    const { issues } = validateEnv({ SPARK_HOST: 'spark' }, LAPTOP_ENV_SCHEMA, {
      require: ['SUPABASE_URL', ['SUPABASE_SERVICE_ROLE_KEY', 'SUPABASE_SECRET_KEY'], 'SPARK_HOST'],
    });
    expect(issues.map((i) => [i.name, i.severity, i.message])).toEqual([
      ['SUPABASE_URL', 'error', 'SUPABASE_URL is not set'],
      ['SUPABASE_SERVICE_ROLE_KEY', 'error', 'neither SUPABASE_SERVICE_ROLE_KEY nor SUPABASE_SECRET_KEY is set'],
    ]);
    expect(issues[0].fix).toMatch(/^set SUPABASE_URL in \.env or the environment: project base URL/);
  });

  it('is satisfied by either member of a group; an empty value does not count', () => {
    const require = [['SUPABASE_SERVICE_ROLE_KEY', 'SUPABASE_SECRET_KEY']] as const;
    expect(validateEnv({ SUPABASE_SECRET_KEY: SECRET }, LAPTOP_ENV_SCHEMA, { require }).issues).toEqual([]);
    expect(validateEnv({ SUPABASE_SECRET_KEY: '' }, LAPTOP_ENV_SCHEMA, { require }).issues).toHaveLength(1);
  });

  it('accepts process.env-shaped input with undefined values', () => {
    const env: Record<string, string | undefined> = { SUPABASE_URL: URL_OK, SPARK_HOST: undefined };
    expect(validateEnv(env, LAPTOP_ENV_SCHEMA).values.SUPABASE_URL).toBe(URL_OK);
  });
});

describe('findAppSupabaseUrl', () => {
  const cases: { name: string; vars: Record<string, string>; expected: ReturnType<typeof findAppSupabaseUrl> }[] = [
    { name: 'nothing', vars: { DATABASE_URL: 'postgres://x' }, expected: undefined },
    {
      name: 'Next.js with anon key',
      vars: { NEXT_PUBLIC_SUPABASE_URL: URL_OK, NEXT_PUBLIC_SUPABASE_ANON_KEY: ANON_JWT },
      expected: {
        urlName: 'NEXT_PUBLIC_SUPABASE_URL',
        url: URL_OK,
        keyName: 'NEXT_PUBLIC_SUPABASE_ANON_KEY',
        key: ANON_JWT,
      },
    },
    {
      name: 'Next.js with publishable default key',
      vars: { NEXT_PUBLIC_SUPABASE_URL: URL_OK, NEXT_PUBLIC_SUPABASE_PUBLISHABLE_DEFAULT_KEY: PUBLISHABLE },
      expected: {
        urlName: 'NEXT_PUBLIC_SUPABASE_URL',
        url: URL_OK,
        keyName: 'NEXT_PUBLIC_SUPABASE_PUBLISHABLE_DEFAULT_KEY',
        key: PUBLISHABLE,
      },
    },
    {
      name: 'Vite with publishable key',
      vars: { VITE_SUPABASE_URL: URL_OK, VITE_SUPABASE_PUBLISHABLE_KEY: PUBLISHABLE },
      expected: {
        urlName: 'VITE_SUPABASE_URL',
        url: URL_OK,
        keyName: 'VITE_SUPABASE_PUBLISHABLE_KEY',
        key: PUBLISHABLE,
      },
    },
    {
      name: 'Expo without a key',
      vars: { EXPO_PUBLIC_SUPABASE_URL: URL_OK },
      expected: { urlName: 'EXPO_PUBLIC_SUPABASE_URL', url: URL_OK },
    },
    {
      name: 'SvelteKit PUBLIC_ wins over bare',
      vars: { SUPABASE_URL: 'http://127.0.0.1:54321', PUBLIC_SUPABASE_URL: URL_OK, SUPABASE_ANON_KEY: ANON_JWT },
      expected: { urlName: 'PUBLIC_SUPABASE_URL', url: URL_OK },
    },
    {
      name: 'NEXT_PUBLIC_ wins over VITE_',
      vars: { VITE_SUPABASE_URL: 'http://127.0.0.1:54321', NEXT_PUBLIC_SUPABASE_URL: URL_OK },
      expected: { urlName: 'NEXT_PUBLIC_SUPABASE_URL', url: URL_OK },
    },
    {
      name: 'empty value skipped',
      vars: { NEXT_PUBLIC_SUPABASE_URL: '', SUPABASE_URL: URL_OK, SUPABASE_ANON_KEY: ANON_JWT },
      expected: { urlName: 'SUPABASE_URL', url: URL_OK, keyName: 'SUPABASE_ANON_KEY', key: ANON_JWT },
    },
    {
      name: 'key from another prefix is not matched',
      vars: { VITE_SUPABASE_URL: URL_OK, NEXT_PUBLIC_SUPABASE_ANON_KEY: ANON_JWT },
      expected: { urlName: 'VITE_SUPABASE_URL', url: URL_OK },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(findAppSupabaseUrl(c.vars)).toEqual(c.expected);
    });
  }
});

describe('a key pasted into a variable that holds no key', () => {
  // Assembled at run time: no key-shaped literal in the repository.
  const key = ['sb', 'secret', 'Zq81vLx0PmR4tYwq2Hn5aB_c9Dk3Xz'].join('_');
  it.each(['SPARK_HOST', 'SPARK_USER', 'APP_ENV_FILE', 'RUNBOOK_OPERATOR', 'SPARK_WORKER_DIR', 'REQUEUE_AUDIT_FILE'])(
    'is refused in %s, naming the variable, never the value',
    (name) => {
      const { issues, values } = validateEnv({ [name]: key }, LAPTOP_ENV_SCHEMA);
      const issue = issues.find((i) => i.name === name);
      expect(issue?.severity).toBe('error');
      expect(`${issue?.message} ${issue?.fix}`).toContain(name);
      expect(`${issue?.message} ${issue?.fix}`).not.toContain(key.slice(10));
      expect(values[name]).toBeUndefined();
    },
  );
});
