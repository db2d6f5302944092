import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { inlineParams, requestTransaction } from '../../sandbox/rest/transaction.ts';

describe('inlineParams: parameters written as the literals node-postgres would send', () => {
  it('replaces each $n with its value quoted, as untyped text (numbers and booleans too), null as NULL', () => {
    expect(
      inlineParams('SELECT * FROM t WHERE a = $1 AND b = $2 AND c IS NOT DISTINCT FROM $3 LIMIT $4', [
        'x',
        true,
        null,
        10,
      ]),
    ).toBe("SELECT * FROM t WHERE a = 'x' AND b = 'true' AND c IS NOT DISTINCT FROM NULL LIMIT '10'");
  });

  it('reuses a parameter named twice, and tells $1 from $10', () => {
    const values = Array.from({ length: 10 }, (_, i) => `v${i + 1}`);
    expect(inlineParams('$1 $10 $1', values)).toBe("'v1' 'v10' 'v1'");
  });

  it("doubles quotes, and writes a backslash in an E'' string", () => {
    expect(inlineParams('SELECT $1::json', [`{"a":"it's"}`])).toBe(`SELECT '{"a":"it''s"}'::json`);
    expect(inlineParams('SELECT $1', ['a\\b'])).toBe("SELECT  E'a\\\\b'");
  });

  it("quotes as pg's escapeLiteral does", () => {
    for (const v of ['plain', "it's", 'a\\b', "a\\'b''", '{"k":"v\\"q"}', '']) {
      expect(inlineParams('$1', [v])).toBe(pg.escapeLiteral(v));
    }
  });

  it('converts values as node-postgres does: arrays as array literals, objects as JSON', () => {
    expect(inlineParams('SELECT $1, $2', [['a', 'b'], { k: 1 }])).toBe(`SELECT '{"a","b"}', '{"k":1}'`);
  });

  it('leaves a $ inside a quoted identifier or string alone', () => {
    expect(inlineParams(`SELECT "a$1" AS "x""$2", '$1' FROM t WHERE a = $1`, ['v'])).toBe(
      `SELECT "a$1" AS "x""$2", '$1' FROM t WHERE a = 'v'`,
    );
  });

  it('declines (undefined) what a literal might not say the same way', () => {
    expect(inlineParams('SELECT $1', ['a\u0000b'])).toBeUndefined(); // NUL ends a query string
    expect(inlineParams('SELECT $1', [Buffer.from('x')])).toBeUndefined(); // sent in binary
    expect(inlineParams('SELECT $1; SELECT 2', ['a'])).toBeUndefined(); // two statements
    expect(inlineParams('SELECT $1 -- note', ['a'])).toBeUndefined();
    expect(inlineParams('SELECT $1 /* note */', ['a'])).toBeUndefined();
    expect(inlineParams("SELECT E'\\'' || $1", ['a'])).toBeUndefined(); // an escape the scanner does not follow
    expect(inlineParams('SELECT $$x$$', [])).toBeUndefined(); // dollar quoting
    expect(inlineParams('SELECT a$1', ['a'])).toBeUndefined(); // part of an identifier
    expect(inlineParams('SELECT $2', ['a'])).toBeUndefined(); // no such parameter
    expect(inlineParams("SELECT 'open", [])).toBeUndefined();
  });
});

/** A client that records what it is sent and answers each statement of a query string with one result. */
function recordingClient(fail?: RegExp) {
  const sent: { text: string; values?: unknown[] }[] = [];
  const client = {
    async query(text: string, values?: unknown[]) {
      sent.push(values === undefined ? { text } : { text, values });
      if (fail?.test(text)) throw new Error('failed');
      const statements = values === undefined ? text.split('; ') : [text];
      const results = statements.map((s) => ({ rows: [{ statement: s }], command: s.split(' ')[0] }));
      return results.length === 1 ? results[0] : results;
    },
  } as unknown as pg.ClientBase;
  return { client, sent };
}

const SETTINGS = { text: "SELECT set_config('role', $1, true)", values: ['service_role'] };

describe('requestTransaction: BEGIN, the settings and the first statement in one round trip', () => {
  it('sends BEGIN, the settings and the statement as one query string, and COMMIT or ROLLBACK after', async () => {
    const { client, sent } = recordingClient();
    const tx = requestTransaction(client, 'BEGIN READ ONLY', SETTINGS);
    const r = await tx.query('SELECT * FROM t WHERE id = $1', ['7']);
    expect(r.rows).toEqual([{ statement: "SELECT * FROM t WHERE id = '7'" }]);
    await tx.query('SELECT 2', []);
    await tx.flush();
    await tx.end(false);
    expect(sent).toEqual([
      { text: "BEGIN READ ONLY; SELECT set_config('role', 'service_role', true); SELECT * FROM t WHERE id = '7'" },
      { text: 'SELECT 2', values: [] },
      { text: 'ROLLBACK' },
    ]);
  });

  it('carries COMMIT along when asked, and then ends with nothing more', async () => {
    const { client, sent } = recordingClient();
    const tx = requestTransaction(client, 'BEGIN', SETTINGS);
    const r = await tx.query('UPDATE t SET a = $1', ['x'], { commit: true });
    expect(r.rows).toEqual([{ statement: "UPDATE t SET a = 'x'" }]);
    await tx.flush();
    await tx.end(true);
    expect(sent.map((s) => s.text)).toEqual([
      "BEGIN; SELECT set_config('role', 'service_role', true); UPDATE t SET a = 'x'; COMMIT",
    ]);
  });

  it('keeps the parameters of a statement that cannot be inlined: settings first, then the statement, COMMIT last', async () => {
    const { client, sent } = recordingClient();
    const tx = requestTransaction(client, 'BEGIN', SETTINGS);
    await tx.query('UPDATE t SET a = $1', ['x\u0000'], { commit: true });
    await tx.end(true);
    expect(sent).toEqual([
      { text: "BEGIN; SELECT set_config('role', 'service_role', true)" },
      { text: 'UPDATE t SET a = $1', values: ['x\u0000'] },
      { text: 'COMMIT' },
    ]);
  });

  it('sends settings that cannot be inlined as before: BEGIN, then the settings with their parameters', async () => {
    const { client, sent } = recordingClient();
    const tx = requestTransaction(client, 'BEGIN', { text: SETTINGS.text, values: ['role\u0000'] });
    await tx.query('SELECT 1');
    expect(sent).toEqual([
      { text: 'BEGIN' },
      { text: SETTINGS.text, values: ['role\u0000'] },
      { text: 'SELECT 1', values: [] },
    ]);
  });

  it('runs the settings of a request answered without a statement (their error comes first, as before)', async () => {
    const { client, sent } = recordingClient(/set_config/);
    const tx = requestTransaction(client, 'BEGIN', SETTINGS);
    await expect(tx.flush()).rejects.toThrow('failed');
    expect(sent.map((s) => s.text)).toEqual(["BEGIN; SELECT set_config('role', 'service_role', true)"]);
  });

  it('a failed statement leaves the transaction to the caller to roll back (no COMMIT counted as done)', async () => {
    const { client, sent } = recordingClient(/UPDATE/);
    const tx = requestTransaction(client, 'BEGIN', SETTINGS);
    await expect(tx.query('UPDATE t SET a = $1', ['x'], { commit: true })).rejects.toThrow('failed');
    await tx.end(false);
    expect(sent.at(-1)).toEqual({ text: 'ROLLBACK' });
  });
});
