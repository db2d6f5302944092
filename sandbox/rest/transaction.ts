/**
 * One request's transaction on a pool connection, in as few round trips to PostgreSQL as its statements allow.
 *
 * PostgREST sends a request's transaction settings and its statement to PostgreSQL together; node-postgres sends one
 * query at a time and waits for each, so BEGIN, the settings, the statement and COMMIT were four round trips, each
 * a wake-up of the server process (on a machine of two cores, most of the API's time). Here BEGIN, the settings and
 * the request's first statement go as one query string of the simple protocol, their parameters written into it as
 * literals, and a write whose answer cannot turn into an error (nothing decided after the statement rolls it back)
 * carries its COMMIT along: one round trip for such a write, two for the rest.
 *
 * The same statements run in the same order in the same transaction, so the answers are the same:
 * - an untyped literal is resolved from its context exactly as an untyped parameter is (node-postgres sends every
 *   parameter as text of unknown type), and a value is written as node-postgres would send it (its prepareValue);
 * - PostgreSQL (13 and later) times each statement of a query string on its own, with the statement_timeout in
 *   force when it starts: the role's, set by the statement before it;
 * - a statement that fails aborts the transaction and skips the rest of the string (the COMMIT too), and the caller
 *   rolls back as before.
 * Anything that a literal might not say the same way keeps its parameters and is sent on its own after the settings,
 * as before: a NUL (it would end the query string), a Buffer (sent in binary), a statement text the scanner below is
 * not certain of (a `;`, a comment, a backslash in a quoted string, a `$` that is not a parameter).
 */
import pg from 'pg';

/** node-postgres's own conversion of a parameter to the text it sends (exported at run time, not in its types). */
const { prepareValue } = (pg as unknown as { utils: { prepareValue: (v: unknown) => unknown } }).utils;

/** SQL text and its parameters. */
export interface SqlStatement {
  text: string;
  values: readonly unknown[];
}

/**
 * A value as the literal node-postgres's text parameter would carry, or undefined when it cannot be one. Quoted as
 * pg's escapeLiteral quotes (an E'' string when there is a backslash), without its loop over every character.
 */
function literal(value: unknown): string | undefined {
  const v = prepareValue(value);
  if (v === null || v === undefined) return 'NULL';
  if (typeof v !== 'string' || v.includes('\0')) return undefined;
  const quoted = v.replaceAll("'", "''");
  return v.includes('\\') ? ` E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`;
}

/**
 * The tokens of a statement text that matter here: a string, a quoted identifier, a `$` with the digits after it,
 * and what makes the scan give up (`;`, a comment, a quote left open).
 */
const TOKENS = /'[^']*(?:''[^']*)*'|"[^"]*(?:""[^"]*)*"|\$\d*|;|--|\/\*|['"]/g;

const IDENT_CHAR = /[A-Za-z0-9_$]/;

/**
 * `text` with each `$n` replaced by `values[n - 1]` as a literal; undefined unless the text is one statement whose
 * every `$` outside quotes is a parameter, and every value can be a literal.
 */
export function inlineParams(text: string, values: readonly unknown[]): string | undefined {
  const literals: string[] = [];
  for (const v of values) {
    const l = literal(v);
    if (l === undefined) return undefined;
    literals.push(l);
  }
  let certain = true;
  const out = text.replace(TOKENS, (token: string, at: number) => {
    if (token.length > 1 && (token[0] === '"' || (token[0] === "'" && !token.includes('\\')))) return token;
    const n = token[0] === '$' ? Number(token.slice(1)) : 0;
    // A backslash in a string may be an escape (E'…'); a `$` without digits, dollar quoting; after a letter, a name.
    if (n < 1 || n > literals.length || (at > 0 && IDENT_CHAR.test(text[at - 1]))) {
      certain = false;
      return token;
    }
    return literals[n - 1];
  });
  return certain ? out : undefined;
}

/** What a request's transaction offers the code that answers it. */
export interface RequestTransaction {
  /**
   * Runs a statement in the transaction; the first one goes with BEGIN and the settings. `commit`: the answer cannot
   * be an error whatever the statement returns, so COMMIT may go along (then {@link end} has nothing left to do).
   */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: readonly unknown[],
    options?: { commit?: boolean },
  ): Promise<pg.QueryResult<R>>;
  /** Sends BEGIN and the settings if no statement took them: a request answered without one still runs them first. */
  flush(): Promise<void>;
  /** COMMIT or ROLLBACK, unless the transaction already committed. */
  end(commit: boolean): Promise<void>;
}

/**
 * The transaction of one request on `client`: `begin` (BEGIN or BEGIN READ ONLY) and `settings` (the set_config
 * select) go with the first statement.
 */
export function requestTransaction(client: pg.ClientBase, begin: string, settings: SqlStatement): RequestTransaction {
  const inlinedSettings = inlineParams(settings.text, settings.values);
  let started = false;
  let committed = false;
  const start = async (): Promise<void> => {
    started = true;
    if (inlinedSettings === undefined) {
      await client.query(begin);
      await client.query(settings.text, [...settings.values]);
    } else {
      await client.query(`${begin}; ${inlinedSettings}`);
    }
  };
  return {
    async query<R extends pg.QueryResultRow>(
      text: string,
      values: readonly unknown[] = [],
      options: { commit?: boolean } = {},
    ): Promise<pg.QueryResult<R>> {
      const inlined = started || inlinedSettings === undefined ? undefined : inlineParams(text, values);
      if (inlined === undefined) {
        if (!started) await start();
        return client.query<R>(text, [...values]);
      }
      started = true;
      const commit = options.commit === true;
      const results = (await client.query(
        `${begin}; ${inlinedSettings}; ${inlined}${commit ? '; COMMIT' : ''}`,
      )) as unknown as pg.QueryResult<R>[];
      committed = commit;
      return results[results.length - (commit ? 2 : 1)];
    },
    async flush(): Promise<void> {
      if (!started) await start();
    },
    async end(commit: boolean): Promise<void> {
      if (!committed) await client.query(commit ? 'COMMIT' : 'ROLLBACK');
    },
  };
}
