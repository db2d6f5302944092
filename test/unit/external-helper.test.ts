/** The HD_TEST_SUPABASE_URL mode's own pieces (test/helpers/external.ts): its variables and the migrations' split. */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { externalSupabase, sqlStatements } from '../helpers/external.ts';
import { ROOT } from '../helpers/sandbox.ts';

describe('externalSupabase', () => {
  it('is off without HD_TEST_SUPABASE_URL, and a partial set is an error naming what is missing', () => {
    expect(externalSupabase({})).toBeUndefined();
    expect(() =>
      externalSupabase({ HD_TEST_SUPABASE_URL: 'http://127.0.0.1:54321', HD_TEST_SUPABASE_ANON_KEY: 'a' }),
    ).toThrow(
      'HD_TEST_SUPABASE_URL is set but HD_TEST_SUPABASE_SERVICE_ROLE_KEY, HD_TEST_SUPABASE_DB_URL is not: set all four',
    );
    expect(
      externalSupabase({
        HD_TEST_SUPABASE_URL: 'http://127.0.0.1:54321/',
        HD_TEST_SUPABASE_SERVICE_ROLE_KEY: 's',
        HD_TEST_SUPABASE_ANON_KEY: 'a',
        HD_TEST_SUPABASE_DB_URL: 'postgresql://postgres:postgres@127.0.0.1:54322/postgres',
      }),
    ).toEqual({
      url: 'http://127.0.0.1:54321',
      serviceRoleKey: 's',
      anonKey: 'a',
      dbUrl: 'postgresql://postgres:postgres@127.0.0.1:54322/postgres',
    });
  });
});

describe('sqlStatements', () => {
  it('splits at semicolons outside comments, strings and dollar-quoted bodies', () => {
    const text = [
      '-- a comment; not a statement',
      "select 'a;b';",
      'do $$ begin perform 1; end $$;',
      'create function f() returns int language sql as $body$ select 1; $body$;',
      '/* x; */ create index concurrently if not exists i on t (c);',
      '-- trailing comment',
    ].join('\n');
    expect(sqlStatements(text)).toEqual([
      "-- a comment; not a statement\nselect 'a;b'",
      'do $$ begin perform 1; end $$',
      'create function f() returns int language sql as $body$ select 1; $body$',
      '/* x; */ create index concurrently if not exists i on t (c)',
    ]);
  });

  it('keeps every migration whole: each statement of each file is one the file holds', () => {
    const dir = path.join(ROOT, 'sandbox', 'migrations');
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.sql'))) {
      const text = readFileSync(path.join(dir, file), 'utf8');
      const statements = sqlStatements(text);
      expect(statements.length, file).toBeGreaterThan(0);
      // Rejoined, the statements are the file less whitespace: nothing lost, nothing cut inside a body.
      const squash = (s: string) => s.replace(/\s+/g, '');
      expect(squash(statements.join(';')), file).toBe(squash(text).replace(/;$/, ''));
    }
  });
});
