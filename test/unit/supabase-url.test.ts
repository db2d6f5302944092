import { describe, expect, it } from 'vitest';
import { classifySupabaseUrl, sameProject } from '../../lib/io/supabase-url.ts';

const REF = 'abcdefghijklmnopqrst';

describe('classifySupabaseUrl: accepted', () => {
  const cases: {
    value: string;
    kind: 'cloud' | 'local' | 'custom';
    origin: string;
    projectRef?: string;
    localReason?: RegExp;
  }[] = [
    { value: `https://${REF}.supabase.co`, kind: 'cloud', origin: `https://${REF}.supabase.co`, projectRef: REF },
    { value: `https://${REF}.supabase.co/`, kind: 'cloud', origin: `https://${REF}.supabase.co`, projectRef: REF },
    {
      value: `https://${REF.toUpperCase()}.SUPABASE.CO`,
      kind: 'cloud',
      origin: `https://${REF}.supabase.co`,
      projectRef: REF,
    },
    { value: `https://${REF}.supabase.co:443`, kind: 'cloud', origin: `https://${REF}.supabase.co`, projectRef: REF },
    { value: `https://${REF}.supabase.in`, kind: 'cloud', origin: `https://${REF}.supabase.in`, projectRef: REF },
    {
      value: 'http://127.0.0.1:54321',
      kind: 'local',
      origin: 'http://127.0.0.1:54321',
      localReason: /127\.0\.0\.1 is a loopback address.*port 54321 is the Supabase CLI's API port/,
    },
    {
      value: 'http://localhost:54321',
      kind: 'local',
      origin: 'http://localhost:54321',
      localReason: /localhost is this machine/,
    },
    {
      value: 'http://api.localhost:8000',
      kind: 'local',
      origin: 'http://api.localhost:8000',
      localReason: /api\.localhost/,
    },
    { value: 'http://127.10.0.3:3000', kind: 'local', origin: 'http://127.10.0.3:3000', localReason: /loopback/ },
    { value: 'http://[::1]:54321/', kind: 'local', origin: 'http://[::1]:54321', localReason: /IPv6 loopback/ },
    { value: 'http://0.0.0.0:8000', kind: 'local', origin: 'http://0.0.0.0:8000', localReason: /0\.0\.0\.0/ },
    {
      value: 'http://host.docker.internal:54321',
      kind: 'local',
      origin: 'http://host.docker.internal:54321',
      localReason: /Docker host/,
    },
    { value: 'http://100.64.1.2:54321', kind: 'local', origin: 'http://100.64.1.2:54321', localReason: /^port 54321/ },
    { value: 'https://supabase.example.com', kind: 'custom', origin: 'https://supabase.example.com' },
    { value: 'http://10.0.0.5:8000', kind: 'custom', origin: 'http://10.0.0.5:8000' },
  ];
  for (const c of cases) {
    it(`${c.value} → ${c.kind}`, () => {
      const r = classifySupabaseUrl(c.value);
      if (!r.ok) throw new Error(`expected ok, got: ${r.problem}`);
      expect(r.kind).toBe(c.kind);
      expect(r.origin).toBe(c.origin);
      expect(r.url).toBeInstanceOf(URL);
      expect(r.projectRef).toBe(c.projectRef);
      if (c.localReason) expect(r.localReason).toMatch(c.localReason);
      else expect(r.localReason).toBeUndefined();
    });
  }
});

describe('classifySupabaseUrl: rejected', () => {
  const cases: { name: string; value: string | undefined; problem: RegExp; fix: RegExp }[] = [
    { name: 'unset', value: undefined, problem: /not set|no Supabase URL/, fix: /supabase\.co/ },
    { name: 'empty', value: '', problem: /no Supabase URL/, fix: /supabase\.co/ },
    { name: 'trailing newline', value: `https://${REF}.supabase.co\n`, problem: /whitespace/, fix: /remove/ },
    { name: 'leading space', value: ` https://${REF}.supabase.co`, problem: /whitespace/, fix: /remove/ },
    { name: 'quoted', value: `"https://${REF}.supabase.co"`, problem: /quote/, fix: /remove the quotes/ },
    { name: 'one quote', value: `https://${REF}.supabase.co'`, problem: /quote/, fix: /remove the quotes/ },
    { name: 'no scheme, cloud', value: `${REF}.supabase.co`, problem: /no scheme/, fix: /^start it with https:\/\/$/ },
    { name: 'no scheme, other', value: 'localhost:54321', problem: /no scheme/, fix: /http:\/\/ or https:\/\// },
    { name: 'ftp', value: 'ftp://example.com', problem: /uses ftp:/, fix: /https/ },
    {
      name: 'database URL',
      value: `postgresql://postgres:pw@db.${REF}.supabase.co:5432/postgres`,
      problem: /database connection string/,
      fix: /supabase\.co/,
    },
    {
      name: 'credentials',
      value: `https://admin:s3cretpassw0rd@${REF}.supabase.co`,
      problem: /user name or password/,
      fix: new RegExp(`use https://${REF}\\.supabase\\.co$`),
    },
    {
      name: '/rest/v1 pasted',
      value: `https://${REF}.supabase.co/rest/v1`,
      problem: /path \(\/rest\/v1\)/,
      fix: new RegExp(`drop the path: use https://${REF}\\.supabase\\.co$`),
    },
    {
      name: '/rest/v1/ pasted',
      value: 'http://127.0.0.1:54321/rest/v1/',
      problem: /path/,
      fix: /use http:\/\/127\.0\.0\.1:54321$/,
    },
    { name: 'query string', value: `https://${REF}.supabase.co/?apikey=x`, problem: /query string/, fix: /drop it/ },
    {
      name: 'dashboard URL',
      value: `https://supabase.com/dashboard/project/${REF}/settings/api`,
      problem: /dashboard/,
      fix: new RegExp(`https://${REF}\\.supabase\\.co`),
    },
    {
      name: 'database host',
      value: `https://db.${REF}.supabase.co`,
      problem: /database host/,
      fix: new RegExp(`https://${REF}\\.supabase\\.co$`),
    },
    { name: 'http for cloud', value: `http://${REF}.supabase.co`, problem: /clear text/, fix: /^use https:/ },
    { name: 'unparsable', value: 'http://exa mple.com', problem: /not a valid URL/, fix: /supabase\.co/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = classifySupabaseUrl(c.value);
      if (r.ok) throw new Error(`expected a rejection, got ${r.kind}`);
      expect(r.problem).toMatch(c.problem);
      expect(r.fix).toMatch(c.fix);
    });
  }

  it('never repeats the credentials of a URL', () => {
    const r = classifySupabaseUrl(`https://admin:s3cretpassw0rd@${REF}.supabase.co/rest/v1`);
    expect(r.ok).toBe(false);
    expect(JSON.stringify(r)).not.toMatch(/s3cretpassw0rd|admin/);
  });
});

describe('sameProject', () => {
  const cases: [string | undefined, string | undefined, boolean][] = [
    [`https://${REF}.supabase.co`, `https://${REF}.supabase.co/`, true],
    [`https://${REF}.supabase.co:443`, `https://${REF}.supabase.co`, true],
    [`https://${REF}.supabase.co/rest/v1`, `https://${REF}.SUPABASE.co`, true],
    [`"https://${REF}.supabase.co" `, `https://${REF}.supabase.co`, true],
    ['http://localhost:80', 'http://localhost', true],
    ['http://127.0.0.1:54321', 'http://127.0.0.1:54321/', true],
    [`https://${REF}.supabase.co`, 'https://zyxwvutsrqponmlkjihg.supabase.co', false],
    [`https://${REF}.supabase.co`, `http://${REF}.supabase.co`, false],
    ['http://localhost:54321', 'http://127.0.0.1:54321', false],
    ['http://127.0.0.1:54321', 'http://127.0.0.1:54322', false],
    ['not a url', 'not a url', false],
    [undefined, `https://${REF}.supabase.co`, false],
    ['ftp://x.example', 'ftp://x.example', false],
  ];
  for (const [a, b, same] of cases) {
    it(`${a} vs ${b} → ${same}`, () => {
      expect(sameProject(a, b)).toBe(same);
      expect(sameProject(b, a)).toBe(same);
    });
  }
});
