/**
 * Pure translation of a PostgREST request into parameterised SQL, and of the SQL result back into an HTTP answer.
 *
 * Every value from the request travels as a `$n` parameter; identifiers are checked against the schema cache
 * (the table's real columns, the function's real arguments) and quoted. Nothing here touches the network or
 * the database, so the whole grammar is unit-testable.
 *
 * Target: the PostgREST behind a hosted Supabase project (v12/v13), over the subset supabase-js and the
 * worker use. Where PostgREST silently ignores a malformed query parameter, this replica answers 400 instead
 * (see {@link planRequest}).
 */
import { type ApiError, ApiErrorException, apiError, type PgrstApiError } from './errors.ts';
import {
  DEFAULT_POSTGREST_VERSION,
  functionHint,
  type PostgrestVersion,
  tableNotFound as tableNotFoundError,
  unacceptableSchema,
} from './versions.ts';

// ---------------------------------------------------------------------------------------------------------
// Schema cache: what the planner needs to know about the database.

/** One column of an exposed table. `type` is `format_type()` output, e.g. `uuid`, `jsonb`, `text`. */
export interface ColumnInfo {
  name: string;
  type: string;
}

/** An exposed table or view, with its columns in ordinal order. */
export interface TableInfo {
  schema: string;
  name: string;
  columns: ColumnInfo[];
  primaryKey: string[];
}

/** One input argument of a function. */
export interface FunctionArg {
  name: string;
  type: string;
  hasDefault: boolean;
}

/** A function callable through `/rpc/<name>`. */
export interface FunctionInfo {
  schema: string;
  name: string;
  args: FunctionArg[];
  returnsSet: boolean;
  returnsVoid: boolean;
  /** `i`mmutable, `s`table or `v`olatile, as `pg_proc.provolatile`. */
  volatility: 'i' | 's' | 'v';
}

/** The tables and functions of the one exposed schema. */
export interface SchemaCache {
  schema: string;
  tables: Map<string, TableInfo>;
  functions: Map<string, FunctionInfo[]>;
}

// ---------------------------------------------------------------------------------------------------------
// Requests and plans.

/** Header values as Node's `IncomingMessage.headers` holds them (lower-case names). */
export type HeaderBag = Record<string, string | string[] | undefined>;

/** A request, already split: `path` is what follows `/rest/v1`, e.g. `/hd_ingestion_jobs` or `/rpc/claim_job`. */
export interface RestRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: HeaderBag;
  body?: string;
}

/** SQL text plus its parameters, ready for `client.query(text, values)`. */
export interface Statement {
  text: string;
  values: unknown[];
}

/** How the answer is shaped: one object or an array, and whether null-valued keys are dropped. */
export interface Media {
  singular: boolean;
  stripNulls: boolean;
}

/** `Prefer: return=` values. */
export type ReturnMode = 'minimal' | 'representation' | 'headers-only';

interface PlanBase {
  /** Runs as one statement; returns one row with `total`, `n` and `body` (see {@link StatementRow}). */
  statement: Statement;
  media: Media;
  /** GET/HEAD (and calls of non-volatile functions) run in a read-only transaction, as in PostgREST. */
  readOnly: boolean;
  /** Values for the `Preference-Applied` header. */
  preferenceApplied: string[];
  count: boolean;
}

/** GET or HEAD on a table. */
export interface ReadPlan extends PlanBase {
  kind: 'read';
  table: string;
  headOnly: boolean;
  offset: number;
  /** `count=planned|estimated`: the planner's row estimate to ask for, and when to use it ({@link estimateTotal}). */
  estimate?: { mode: 'planned' | 'estimated'; maxRows: number | null; statement: Statement };
}

/** POST, PATCH or DELETE on a table. */
export interface MutatePlan extends PlanBase {
  kind: 'create' | 'update' | 'delete';
  table: string;
  returnMode: ReturnMode;
}

/** A call of `/rpc/<fn>`. */
export interface CallPlan extends PlanBase {
  kind: 'call';
  fn: string;
  headOnly: boolean;
  returnsSet: boolean;
  returnsVoid: boolean;
}

/** `GET /rest/v1/`: the schema description. */
export interface RootPlan {
  kind: 'root';
  headOnly: boolean;
}

/** What the server executes for a request. */
export type Plan = ReadPlan | MutatePlan | CallPlan | RootPlan;

/** What the planner takes from the server's configuration. */
export interface PlanOptions {
  /**
   * PostgREST's `db-max-rows`: reads and RPC results return at most this many rows (the client's `limit` is lowered
   * to it); writes with `return=representation` are not capped (test/spec/Feature/Query/QueryLimitedSpec.hs).
   * Unset or null: no cap.
   */
  maxRows?: number | null;
  /** The PostgREST version whose error shapes to give (default 13). */
  version?: PostgrestVersion;
}

/** Result of {@link planRequest}: a plan or the error answer PostgREST would give. */
export type PlanResult = { ok: true; plan: Plan } | { ok: false; error: PgrstApiError };

/** The single row every planned statement returns. Counts arrive as strings from node-postgres (bigint). */
export interface StatementRow {
  total: string | number | null;
  n: string | number;
  body: string | null;
}

/** The HTTP answer for an executed plan; `rollback` asks the caller to undo the transaction (PGRST116). */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  rollback: boolean;
}

// ---------------------------------------------------------------------------------------------------------
// Grammar: a small cursor-based parser mirroring PostgREST's (Parsec) grammar and its error wording.

class ParseFailure extends Error {
  readonly column: number;
  readonly details: string;
  constructor(column: number, details: string) {
    super(details);
    this.column = column;
    this.details = details;
  }
}

class Cursor {
  readonly s: string;
  pos = 0;
  constructor(s: string) {
    this.s = s;
  }
  get eof(): boolean {
    return this.pos >= this.s.length;
  }
  peek(n = 1): string {
    return this.s.slice(this.pos, this.pos + n);
  }
  startsWith(t: string): boolean {
    return this.s.startsWith(t, this.pos);
  }
  eat(t: string): boolean {
    if (!this.startsWith(t)) return false;
    this.pos += t.length;
    return true;
  }
  skipWs(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos += 1;
  }
  /** Parsec-style failure at the current position (1-based column). */
  fail(expecting: string): never {
    const unexpected = this.eof ? 'end of input' : JSON.stringify(this.peek());
    throw new ParseFailure(this.pos + 1, `unexpected ${unexpected} expecting ${expecting}`);
  }
  failWith(details: string, column = this.pos + 1): never {
    throw new ParseFailure(column, details);
  }
}

/** A column reference with an optional JSON path, e.g. `debug->>source_line`. */
export interface Field {
  name: string;
  path: JsonStep[];
}

/** One `->` / `->>` step of a JSON path: an object key or an array index. */
export interface JsonStep {
  arrow: '->' | '->>';
  key: string | number;
}

const SIMPLE_OPERATORS = {
  eq: '=',
  neq: '<>',
  gt: '>',
  gte: '>=',
  lt: '<',
  lte: '<=',
  like: 'LIKE',
  ilike: 'ILIKE',
  match: '~',
  imatch: '~*',
  isdistinct: 'IS DISTINCT FROM',
} as const;

type SimpleOperator = keyof typeof SIMPLE_OPERATORS;

/** PostgREST operators this replica knows but does not implement: a clear 400 beats a silent mismatch. */
const UNIMPLEMENTED_OPERATORS = new Set([
  'cs',
  'cd',
  'ov',
  'sl',
  'sr',
  'nxr',
  'nxl',
  'adj',
  'fts',
  'plfts',
  'phfts',
  'wfts',
]);

/** The operation of one filter. */
export type Operation =
  | { op: SimpleOperator; value: string }
  | { op: 'in'; values: string[] }
  | { op: 'is'; value: 'null' | 'true' | 'false' | 'unknown' };

/** A horizontal filter: `<field>=[not.]<op>.<value>`. */
export interface Filter {
  field: Field;
  negate: boolean;
  operation: Operation;
}

/** The value of `or=` / `and=`: filters combined, possibly nested. */
export type LogicTree =
  | { kind: 'filter'; filter: Filter }
  | { kind: 'expr'; negate: boolean; op: 'and' | 'or'; children: LogicTree[] };

/** One item of `select=`. */
export type SelectItem = { kind: 'star' } | { kind: 'field'; field: Field; alias?: string; cast?: string };

/** One term of `order=`. */
export interface OrderTerm {
  field: Field;
  direction?: 'asc' | 'desc';
  nulls?: 'first' | 'last';
}

function notImplemented(details: string): ApiErrorException {
  return new ApiErrorException(apiError(400, 'PGRST127', 'Feature not implemented', details));
}

const IDENT_CHAR = /[\p{L}\p{N}_$ ]/u;

function parseQuoted(c: Cursor): string {
  // Caller checked the opening quote.
  c.pos += 1;
  let out = '';
  while (!c.eof) {
    const ch = c.peek();
    if (ch === '\\') {
      c.pos += 1;
      if (c.eof) break;
      out += c.peek();
      c.pos += 1;
    } else if (ch === '"') {
      c.pos += 1;
      return out;
    } else {
      out += ch;
      c.pos += 1;
    }
  }
  return c.fail('"\\"" or any character');
}

function parseFieldName(c: Cursor): string {
  if (c.peek() === '"') return parseQuoted(c);
  const start = c.pos;
  let out = '';
  for (;;) {
    let part = '';
    while (!c.eof && IDENT_CHAR.test(c.peek())) {
      part += c.peek();
      c.pos += 1;
    }
    if (part === '') {
      if (out === '') {
        c.pos = start;
        return c.fail('field name (* or [a..z0..9_$])');
      }
      // A dash must be followed by more identifier: back off to before it.
      c.pos -= 1;
      out = out.slice(0, -1);
      break;
    }
    out += part;
    if (c.peek() === '-' && c.peek(2) !== '->') {
      c.pos += 1;
      out += '-';
      continue;
    }
    break;
  }
  return out.trim();
}

function parseJsonPath(c: Cursor): JsonStep[] {
  const steps: JsonStep[] = [];
  while (c.startsWith('->')) {
    const arrow = c.startsWith('->>') ? '->>' : '->';
    c.pos += arrow.length;
    const m = /^-?\d+/.exec(c.s.slice(c.pos));
    const after = m ? c.s.slice(c.pos + m[0].length) : '';
    if (m && (after === '' || /^(->|::|\.|,|\)|\()/.test(after))) {
      c.pos += m[0].length;
      steps.push({ arrow, key: Number(m[0]) });
    } else {
      steps.push({ arrow, key: parseFieldName(c) });
    }
  }
  return steps;
}

function parseField(c: Cursor): Field {
  c.skipWs();
  const name = parseFieldName(c);
  const path = parseJsonPath(c);
  c.skipWs();
  return { name, path };
}

type ValueParser = (c: Cursor) => string;

/** Top-level filter values run to the end of the parameter: commas, dots and parens included. */
const restOfInput: ValueParser = (c) => {
  const v = c.s.slice(c.pos);
  c.pos = c.s.length;
  return v;
};

function peekQuotedEnd(c: Cursor): boolean {
  // A quoted element counts only when followed by `,` or `)` (PostgREST's notFollowedBy rule).
  const save = c.pos;
  try {
    parseQuoted(c);
    const next = c.peek();
    return c.eof || next === ',' || next === ')';
  } catch {
    return false;
  } finally {
    c.pos = save;
  }
}

function readUntil(c: Cursor, stops: string): string {
  let out = '';
  while (!c.eof && !stops.includes(c.peek())) {
    out += c.peek();
    c.pos += 1;
  }
  return out;
}

/** Values inside `or=(...)` stop at `,` or `)` unless quoted or a `{...}` array literal. */
const logicValue: ValueParser = (c) => {
  if (c.peek() === '"' && peekQuotedEnd(c)) return parseQuoted(c);
  if (c.peek() === '{') {
    const close = c.s.indexOf('}', c.pos);
    const inner = close === -1 ? '' : c.s.slice(c.pos + 1, close);
    if (close !== -1 && !inner.includes('{')) {
      const v = c.s.slice(c.pos, close + 1);
      c.pos = close + 1;
      return v;
    }
  }
  return readUntil(c, ',)');
};

function parseListVal(c: Cursor): string[] {
  c.skipWs();
  if (!c.eat('(')) c.fail('"("');
  c.skipWs();
  const values: string[] = [];
  for (;;) {
    if (c.peek() === '"' && peekQuotedEnd(c)) values.push(parseQuoted(c));
    else values.push(readUntil(c, ',)'));
    if (c.eat(',')) continue;
    if (c.eat(')')) break;
    c.fail('"," or ")"');
  }
  c.skipWs();
  // `in.()` is an empty list, not one empty string.
  return values.length === 1 && values[0] === '' ? [] : values;
}

function parseOpExpr(c: Cursor, value: ValueParser): { negate: boolean; operation: Operation } {
  const negate = c.eat('not.');
  if (c.eat('in.')) return { negate, operation: { op: 'in', values: parseListVal(c) } };
  if (c.eat('is.')) {
    const word = /^(null|unknown|true|false)/i.exec(c.s.slice(c.pos));
    if (!word) c.fail('null or trilean value (unknown, true, false)');
    c.pos += word[0].length;
    return { negate, operation: { op: 'is', value: word[0].toLowerCase() as 'null' | 'true' | 'false' | 'unknown' } };
  }
  const start = c.pos;
  const dot = c.s.indexOf('.', c.pos);
  if (dot === -1) {
    c.pos = c.s.length;
    c.fail('delimiter (.)');
  }
  const opStr = c.s.slice(start, dot);
  c.pos = dot + 1;
  const base = opStr.replace(/\(.*$/, '');
  if (opStr in SIMPLE_OPERATORS) {
    let v = value(c);
    if (opStr === 'like' || opStr === 'ilike') v = v.replaceAll('*', '%');
    return { negate, operation: { op: opStr as SimpleOperator, value: v } };
  }
  if (UNIMPLEMENTED_OPERATORS.has(base) || (opStr !== base && base in SIMPLE_OPERATORS)) {
    throw notImplemented(`The operator '${opStr}' is not implemented by the sandbox REST API.`);
  }
  return c.failWith(`unknown single value operator ${opStr}`, dot + 2);
}

/**
 * Wraps a parse into PostgREST's PGRST100 answer: message `"failed to parse X (input)" (line 1, column N)`.
 * `text` is what is parsed when it differs from what the message shows (logic trees parse `or(...)`).
 */
function withParseError<T>(what: string, input: string, run: (c: Cursor) => T, text = input): T {
  const c = new Cursor(text);
  try {
    return run(c);
  } catch (e) {
    if (e instanceof ParseFailure) {
      throw new ApiErrorException(
        apiError(400, 'PGRST100', `"failed to parse ${what} (${input})" (line 1, column ${e.column})`, e.details),
      );
    }
    throw e;
  }
}

function expectEnd(c: Cursor, expecting: string): void {
  if (!c.eof) c.fail(expecting);
}

/** Parses a filter value such as `not.in.(1,2)` or `eq.done`. */
export function parseFilterValue(value: string): { negate: boolean; operation: Operation } {
  return withParseError('filter', value, (c) => {
    const r = parseOpExpr(c, restOfInput);
    expectEnd(c, 'end of input');
    return r;
  });
}

function parseLogicNode(c: Cursor): LogicTree {
  c.skipWs();
  const m = /^(not\.)?(and|or)\(/.exec(c.s.slice(c.pos));
  if (m) {
    c.pos += m[0].length;
    const children: LogicTree[] = [];
    for (;;) {
      children.push(parseLogicNode(c));
      c.skipWs();
      if (c.eat(',')) continue;
      if (c.eat(')')) break;
      c.fail('"," or ")"');
    }
    c.skipWs();
    return { kind: 'expr', negate: m[1] !== undefined, op: m[2] as 'and' | 'or', children };
  }
  if (c.peek() === ')' || c.eof)
    c.fail('field name (* or [a..z0..9_$]), negation operator (not) or logic operator (and, or)');
  const field = parseField(c);
  if (!c.eat('.')) c.fail('delimiter (.)');
  const { negate, operation } = parseOpExpr(c, logicValue);
  return { kind: 'filter', filter: { field, negate, operation } };
}

/** Parses `or=(...)` / `and=(...)` (key `op`, possibly `not.or`) into a logic tree. */
export function parseLogicTree(op: string, value: string): LogicTree {
  return withParseError(
    'logic tree',
    value,
    (c) => {
      if (!/^(not\.)?(and|or)\(/.test(c.s)) {
        c.pos = op.length;
        c.fail('"("');
      }
      const tree = parseLogicNode(c);
      expectEnd(c, 'end of input');
      return tree;
    },
    `${op}${value}`,
  );
}

/** Parses `select=`. An empty value means `*`. */
export function parseSelect(value: string): SelectItem[] {
  if (value.trim() === '') return [{ kind: 'star' }];
  return withParseError('select parameter', value, (c) => {
    const items: SelectItem[] = [];
    for (;;) {
      c.skipWs();
      if (c.eat('*')) {
        items.push({ kind: 'star' });
      } else {
        if (c.startsWith('..'))
          throw notImplemented('Spread embedding (..relation) is not implemented by the sandbox.');
        let name = parseFieldName(c);
        let alias: string | undefined;
        if (c.peek() === ':' && c.peek(2) !== '::') {
          c.pos += 1;
          alias = name;
          name = parseFieldName(c);
        }
        if (c.peek() === '(' || c.peek() === '!') {
          throw notImplemented(`Resource embedding ('${name}(...)') is not implemented by the sandbox REST API.`);
        }
        const path = parseJsonPath(c);
        let cast: string | undefined;
        if (c.eat('::')) {
          const m = /^[A-Za-z0-9_ ]+/.exec(c.s.slice(c.pos));
          if (!m) return c.fail('letter or digit');
          c.pos += m[0].length;
          cast = m[0].trim();
        }
        items.push(
          alias === undefined
            ? cast === undefined
              ? { kind: 'field', field: { name, path } }
              : { kind: 'field', field: { name, path }, cast }
            : cast === undefined
              ? { kind: 'field', field: { name, path }, alias }
              : { kind: 'field', field: { name, path }, alias, cast },
        );
      }
      c.skipWs();
      if (c.eat(',')) continue;
      expectEnd(c, '"," or end of input');
      return items;
    }
  });
}

/** Parses `order=`. */
export function parseOrder(value: string): OrderTerm[] {
  return withParseError('order', value, (c) => {
    const terms: OrderTerm[] = [];
    for (;;) {
      const field = parseField(c);
      if (c.peek() === '(') throw notImplemented('Ordering by a related table is not implemented by the sandbox.');
      const term: OrderTerm = { field };
      if (c.eat('.')) {
        if (c.eat('asc')) term.direction = 'asc';
        else if (c.eat('desc')) term.direction = 'desc';
        else if (c.eat('nullsfirst')) term.nulls = 'first';
        else if (c.eat('nullslast')) term.nulls = 'last';
        else c.fail('"asc", "desc", "nullsfirst" or "nullslast"');
        if (term.direction && c.eat('.')) {
          if (c.eat('nullsfirst')) term.nulls = 'first';
          else if (c.eat('nullslast')) term.nulls = 'last';
          else c.fail('"nullsfirst" or "nullslast"');
        }
      }
      c.skipWs();
      terms.push(term);
      if (c.eat(',')) continue;
      expectEnd(c, '"," or end of input');
      return terms;
    }
  });
}

/** Parses `columns=` (as supabase-js sends for array inserts: `"a","b"`). */
export function parseColumns(value: string): string[] {
  return withParseError('columns parameter', value, (c) => {
    const cols: string[] = [];
    for (;;) {
      c.skipWs();
      cols.push(parseFieldName(c));
      c.skipWs();
      if (c.eat(',')) continue;
      expectEnd(c, '"," or end of input');
      return cols;
    }
  });
}

function parseNonNegativeInt(name: 'limit' | 'offset', value: string): number {
  const trimmed = value.trim();
  if (/^-\d+$/.test(trimmed)) {
    if (name === 'limit') {
      throw new ApiErrorException(
        apiError(416, 'PGRST103', 'Requested range not satisfiable', 'Limit should be greater than or equal to zero.'),
      );
    }
    // PostgREST hands a negative offset to PostgreSQL, which refuses it with this error.
    throw new ApiErrorException(apiError(400, '2201X', 'OFFSET must not be negative'));
  }
  if (!/^\d+$/.test(trimmed) || !Number.isSafeInteger(Number(trimmed))) {
    const bad = trimmed.search(/[^0-9]/);
    const col = bad === -1 ? trimmed.length + 1 : bad + 1;
    const unexpected = bad === -1 ? 'end of input' : JSON.stringify(trimmed[bad]);
    throw new ApiErrorException(
      apiError(
        400,
        'PGRST100',
        `"failed to parse ${name} parameter (${value})" (line 1, column ${col})`,
        `unexpected ${unexpected} expecting digit`,
      ),
    );
  }
  return Number(trimmed);
}

// ---------------------------------------------------------------------------------------------------------
// Headers.

function header(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(', ') : v;
}

/** Parsed `Prefer` header. */
export interface Preferences {
  return?: ReturnMode;
  count?: 'exact' | 'planned' | 'estimated';
  missingDefault: boolean;
  resolution?: 'merge-duplicates' | 'ignore-duplicates';
  strict: boolean;
  invalid: string[];
}

/** Parses `Prefer` (comma-separated; repeated headers arrive joined). Unknown tokens are kept for handling=strict. */
export function parsePrefer(value: string | undefined): Preferences {
  const prefs: Preferences = { missingDefault: false, strict: false, invalid: [] };
  for (const raw of (value ?? '').split(',')) {
    const token = raw.trim();
    if (token === '') continue;
    const [k, v] = token.split('=').map((s) => s.trim());
    if (k === 'return' && (v === 'minimal' || v === 'representation' || v === 'headers-only')) prefs.return = v;
    else if (k === 'count' && (v === 'exact' || v === 'planned' || v === 'estimated')) prefs.count = v;
    else if (k === 'missing' && (v === 'default' || v === 'null')) prefs.missingDefault = v === 'default';
    else if (k === 'resolution' && (v === 'merge-duplicates' || v === 'ignore-duplicates')) prefs.resolution = v;
    else if (k === 'handling' && (v === 'strict' || v === 'lenient')) prefs.strict = v === 'strict';
    else if (k === 'tx' || k === 'timezone' || k === 'max-affected' || k === 'params') {
      // Known to PostgREST; Supabase ignores tx overrides, the rest do not matter to the sandbox.
    } else prefs.invalid.push(token);
  }
  return prefs;
}

/** Content negotiation on `Accept`; PGRST107 (406) when nothing offered is producible. */
export function negotiateMedia(accept: string | undefined): Media {
  if (accept === undefined || accept.trim() === '') return { singular: false, stripNulls: false };
  const offered = accept.split(',').map((s) => s.trim());
  for (const entry of offered) {
    const [type, ...params] = entry.split(';').map((s) => s.trim().toLowerCase());
    const stripNulls = params.includes('nulls=stripped');
    if (['*/*', 'application/*', 'application/json', 'application/vnd.pgrst.array+json'].includes(type)) {
      return { singular: false, stripNulls: stripNulls && type === 'application/vnd.pgrst.array+json' };
    }
    if (type === 'application/vnd.pgrst.object+json' || type === 'application/vnd.pgrst.object') {
      return { singular: true, stripNulls };
    }
  }
  throw new ApiErrorException(
    apiError(406, 'PGRST107', `None of these media types are available: ${offered.join(', ')}`),
  );
}

// ---------------------------------------------------------------------------------------------------------
// SQL building.

/** Quotes an identifier for PostgreSQL. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

class Params {
  readonly values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

/** 42703 as PostgreSQL words it for `table.column`, with its "Perhaps you meant" hint when a column is close. */
function undefinedColumn(table: TableInfo, name: string): ApiErrorException {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const col of table.columns) {
    const d = levenshtein(col.name, name);
    if (d < bestDistance) {
      bestDistance = d;
      best = col.name;
    }
  }
  const hint =
    best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 3))
      ? `Perhaps you meant to reference the column "${table.name}.${best}".`
      : null;
  return new ApiErrorException(apiError(400, '42703', `column ${table.name}.${name} does not exist`, null, hint));
}

function columnNotFound(table: TableInfo, name: string): ApiErrorException {
  return new ApiErrorException(
    apiError(400, 'PGRST204', `Could not find the '${name}' column of '${table.name}' in the schema cache`),
  );
}

function hasColumn(table: TableInfo, name: string): boolean {
  return table.columns.some((c) => c.name === name);
}

class SqlBuilder {
  readonly table: TableInfo;
  readonly params: Params;
  readonly qualifier: string;
  readonly from: string;
  constructor(table: TableInfo, params: Params) {
    this.table = table;
    this.params = params;
    this.qualifier = quoteIdent(table.name);
    this.from = `${quoteIdent(table.schema)}.${quoteIdent(table.name)}`;
  }

  field(f: Field): string {
    if (!hasColumn(this.table, f.name)) throw undefinedColumn(this.table, f.name);
    let sql = `${this.qualifier}.${quoteIdent(f.name)}`;
    for (const step of f.path) {
      const p = this.params.add(step.key);
      sql += typeof step.key === 'number' ? `${step.arrow}${p}::int` : `${step.arrow}${p}::text`;
    }
    return sql;
  }

  filter(f: Filter): string {
    const lhs = this.field(f.field);
    const op = f.operation;
    let sql: string;
    if (op.op === 'in') {
      sql = op.values.length === 0 ? 'false' : `${lhs} IN (${op.values.map((v) => this.params.add(v)).join(', ')})`;
    } else if (op.op === 'is') {
      sql = `${lhs} IS ${op.value.toUpperCase()}`;
    } else {
      sql = `${lhs} ${SIMPLE_OPERATORS[op.op]} ${this.params.add(op.value)}`;
    }
    return f.negate ? `NOT (${sql})` : sql;
  }

  logic(t: LogicTree): string {
    if (t.kind === 'filter') return this.filter(t.filter);
    const inner = `(${t.children.map((c) => this.logic(c)).join(t.op === 'and' ? ' AND ' : ' OR ')})`;
    return t.negate ? `NOT ${inner}` : inner;
  }

  selectList(items: SelectItem[]): string {
    return items
      .map((item) => {
        if (item.kind === 'star') return `${this.qualifier}.*`;
        let sql = this.field(item.field);
        if (item.cast !== undefined) sql = `CAST(${sql} AS ${castType(item.cast)})`;
        const lastKey = item.field.path.at(-1)?.key;
        const name = item.alias ?? (typeof lastKey === 'string' ? lastKey : item.field.name);
        return item.alias !== undefined || item.field.path.length > 0 || item.cast !== undefined
          ? `${sql} AS ${quoteIdent(name)}`
          : sql;
      })
      .join(', ');
  }

  orderBy(terms: OrderTerm[]): string {
    return terms
      .map((t) => {
        let sql = this.field(t.field);
        if (t.direction) sql += t.direction === 'asc' ? ' ASC' : ' DESC';
        if (t.nulls) sql += t.nulls === 'first' ? ' NULLS FIRST' : ' NULLS LAST';
        return sql;
      })
      .join(', ');
  }
}

const CASTS = new Set([
  'text',
  'varchar',
  'int',
  'int2',
  'int4',
  'int8',
  'integer',
  'bigint',
  'smallint',
  'numeric',
  'float4',
  'float8',
  'real',
  'bool',
  'boolean',
  'uuid',
  'json',
  'jsonb',
  'date',
  'time',
  'timestamp',
  'timestamptz',
  'interval',
]);

function castType(name: string): string {
  const t = name.toLowerCase();
  // Type names cannot be parameters; only a fixed set of plain type names reaches the SQL text.
  if (!CASTS.has(t)) {
    throw new ApiErrorException(apiError(400, '42704', `type "${name}" does not exist`));
  }
  return t;
}

function bodyExpr(source: string, media: Media): string {
  const agg = media.stripNulls ? `json_agg(json_strip_nulls(to_json(${source})))` : `json_agg(${source})`;
  return `coalesce(${agg}, '[]')::text`;
}

// ---------------------------------------------------------------------------------------------------------
// Planning.

const RESERVED = new Set(['select', 'columns', 'on_conflict', 'order', 'limit', 'offset', 'apikey']);
const LOGIC_KEYS = new Set(['or', 'and', 'not.or', 'not.and']);

interface QueryParts {
  select: SelectItem[];
  order: OrderTerm[];
  limit?: number;
  offset?: number;
  conditions: LogicTree[];
  columns?: string[];
  onConflict?: string[];
}

function parseQueryParts(query: URLSearchParams): QueryParts {
  const parts: QueryParts = { select: [{ kind: 'star' }], order: [], conditions: [] };
  const seen = new Set<string>();
  for (const [key, value] of query) {
    const first = !seen.has(key);
    seen.add(key);
    if (key === 'select') {
      if (first) parts.select = parseSelect(value);
    } else if (key === 'order') {
      parts.order.push(...parseOrder(value));
    } else if (key === 'limit') {
      if (first) parts.limit = parseNonNegativeInt('limit', value);
    } else if (key === 'offset') {
      if (first) parts.offset = parseNonNegativeInt('offset', value);
    } else if (key === 'columns') {
      if (first) parts.columns = parseColumns(value);
    } else if (key === 'on_conflict') {
      if (first) parts.onConflict = parseColumns(value);
    } else if (key === 'apikey') {
      // Supabase's gateway accepts the key as a URL parameter; it is not a filter.
    } else if (LOGIC_KEYS.has(key)) {
      parts.conditions.push(parseLogicTree(key, value));
    } else {
      const field = withParseError('tree path', key, (c) => {
        const name = parseFieldName(c);
        if (c.peek() === '.') {
          // `rel.col=...` or `rel.order=...` address an embedded resource; there is none without embedding.
          throw new ApiErrorException(
            apiError(
              400,
              'PGRST108',
              `'${name}' is not an embedded resource in this request`,
              null,
              `Verify that '${name}' is included in the 'select' query parameter.`,
            ),
          );
        }
        const path = parseJsonPath(c);
        expectEnd(c, 'delimiter (.) or end of input');
        return { name, path };
      });
      const { negate, operation } = parseFilterValue(value);
      parts.conditions.push({ kind: 'filter', filter: { field, negate, operation } });
    }
  }
  return parts;
}

function jsonBody(raw: string | undefined): unknown {
  if (raw === undefined || raw.trim() === '') throw invalidBody('Empty or invalid json');
  try {
    return JSON.parse(raw);
  } catch {
    throw invalidBody('Empty or invalid json');
  }
}

function invalidBody(message: string): ApiErrorException {
  return new ApiErrorException(apiError(400, 'PGRST102', message));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkContentType(headers: HeaderBag): void {
  const ct = header(headers, 'content-type');
  if (ct === undefined) return;
  const type = ct.split(';')[0].trim().toLowerCase();
  if (type !== 'application/json' && type !== '') {
    throw new ApiErrorException(apiError(415, 'PGRST107', `None of these media types are available: ${type}`));
  }
}

function checkProfile(
  headers: HeaderBag,
  schema: string,
  name: 'accept-profile' | 'content-profile',
  version: PostgrestVersion,
): void {
  const profile = header(headers, name);
  if (profile !== undefined && profile !== schema) {
    throw new ApiErrorException(unacceptableSchema(profile, schema, version));
  }
}

/** The client's `limit` lowered to max-rows (PostgREST's `restrictRange`). */
function cappedLimit(limit: number | undefined, maxRows: number | null | undefined): number | undefined {
  if (maxRows === undefined || maxRows === null || maxRows <= 0) return limit;
  return limit === undefined ? maxRows : Math.min(limit, maxRows);
}

function countPreference(prefs: Preferences, applied: string[]): boolean {
  // Reads answer planned/estimated as PostgREST does (planRead); writes and RPC count exactly.
  if (prefs.count === undefined) return false;
  applied.push(`count=${prefs.count}`);
  return true;
}

function planRead(
  req: RestRequest,
  table: TableInfo,
  parts: QueryParts,
  prefs: Preferences,
  media: Media,
  maxRows: number | null | undefined,
): ReadPlan {
  const params = new Params();
  const b = new SqlBuilder(table, params);
  const selectList = b.selectList(parts.select);
  const where = parts.conditions.length ? ` WHERE ${parts.conditions.map((t) => b.logic(t)).join(' AND ')}` : '';
  const orderBy = parts.order.length ? ` ORDER BY ${b.orderBy(parts.order)}` : '';
  const capped = cappedLimit(parts.limit, maxRows);
  const limit = capped !== undefined ? ` LIMIT ${params.add(capped)}` : '';
  const offset = parts.offset !== undefined ? ` OFFSET ${params.add(parts.offset)}` : '';
  const applied: string[] = [];
  const count = countPreference(prefs, applied);
  const headOnly = req.method === 'HEAD';
  const cap = maxRows !== undefined && maxRows !== null && maxRows > 0 ? maxRows : null;
  // PostgREST (src/PostgREST/Query.hs, `resultSetWTotal`): exact counts every row; estimated counts up to max-rows + 1
  // and, past max-rows, takes the planner's estimate when it is larger; planned takes the estimate alone.
  const total =
    prefs.count === 'exact' || (prefs.count === 'estimated' && cap === null)
      ? `(SELECT count(*) FROM ${b.from}${where})`
      : prefs.count === 'estimated'
        ? `(SELECT count(*) FROM (SELECT 1 FROM ${b.from}${where} LIMIT ${cap! + 1}) pgrst_c)`
        : 'NULL';
  const body = headOnly ? `''::text` : bodyExpr('pgrst_source', media);
  const text =
    `WITH pgrst_source AS (SELECT ${selectList} FROM ${b.from}${where}${orderBy}${limit}${offset}) ` +
    `SELECT ${total}::bigint AS total, count(*)::bigint AS n, ${body} AS body FROM pgrst_source`;
  let estimate: ReadPlan['estimate'];
  if (prefs.count === 'planned' || prefs.count === 'estimated') {
    const eb = new SqlBuilder(table, new Params());
    const ewhere = parts.conditions.length ? ` WHERE ${parts.conditions.map((t) => eb.logic(t)).join(' AND ')}` : '';
    estimate = {
      mode: prefs.count,
      maxRows: cap,
      statement: { text: `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${eb.from}${ewhere}`, values: eb.params.values },
    };
  }
  return {
    kind: 'read',
    table: table.name,
    statement: { text, values: params.values },
    media,
    readOnly: true,
    preferenceApplied: applied,
    count,
    headOnly,
    offset: parts.offset ?? 0,
    ...(estimate ? { estimate } : {}),
  };
}

/**
 * The total to answer with once the main statement ran: `undefined` when the counted total stands, else a function
 * of the planner's estimate (`Plan Rows` of the EXPLAIN in `plan.estimate`). Estimated asks the planner only past
 * max-rows (always without max-rows: Haskell's `Just n > Nothing`), and keeps the larger of the two.
 */
export function estimateTotal(plan: ReadPlan, counted: number | null): ((planRows: number) => number) | undefined {
  const e = plan.estimate;
  if (!e) return undefined;
  if (e.mode === 'planned') return (planRows) => planRows;
  if (e.maxRows !== null && (counted ?? 0) <= e.maxRows) return undefined;
  return (planRows) => Math.max(counted ?? 0, planRows);
}

function returning(b: SqlBuilder, mode: ReturnMode, select: SelectItem[]): string {
  if (mode === 'representation') return b.selectList(select);
  if (mode === 'headers-only' && b.table.primaryKey.length > 0) {
    return b.table.primaryKey.map((c) => `${b.qualifier}.${quoteIdent(c)}`).join(', ');
  }
  // RETURNING 1 counts rows without reading columns, so RLS SELECT policies do not apply (as in PostgREST).
  return '1';
}

function mutationTail(mode: ReturnMode, media: Media): string {
  const body = mode === 'minimal' ? `''::text` : bodyExpr('pgrst_source', media);
  return `SELECT NULL::bigint AS total, count(*)::bigint AS n, ${body} AS body FROM pgrst_source`;
}

function planCreate(
  req: RestRequest,
  table: TableInfo,
  parts: QueryParts,
  prefs: Preferences,
  media: Media,
): MutatePlan {
  checkContentType(req.headers);
  const payload = jsonBody(req.body);
  let rows: Record<string, unknown>[];
  if (Array.isArray(payload)) {
    if (!payload.every(isPlainObject)) throw invalidBody('All object keys must match');
    rows = payload;
  } else if (isPlainObject(payload)) {
    rows = [payload];
  } else {
    throw invalidBody('Empty or invalid json');
  }
  let cols: string[];
  if (parts.columns !== undefined) {
    cols = parts.columns;
  } else {
    cols = rows.length > 0 ? Object.keys(rows[0]) : [];
    const signature = [...cols].sort().join('\u0000');
    for (const row of rows) {
      if (Object.keys(row).sort().join('\u0000') !== signature) throw invalidBody('All object keys must match');
    }
  }
  for (const c of cols) if (!hasColumn(table, c)) throw columnNotFound(table, c);

  const params = new Params();
  const b = new SqlBuilder(table, params);
  const mode = prefs.return ?? 'minimal';
  const applied: string[] = [];
  if (prefs.return) applied.push(`return=${prefs.return}`);
  if (prefs.missingDefault) applied.push('missing=default');
  const count = countPreference(prefs, applied);
  const ret = returning(b, mode, parts.select);

  let text: string;
  if (rows.length === 0) {
    text = `WITH pgrst_source AS (SELECT ${ret} FROM ${b.from} WHERE false) ${mutationTail(mode, media)}`;
  } else {
    const rowType = `NULL::${b.from}`;
    let colList: string;
    let values: string;
    if (cols.length === 0) {
      // `{}` rows take every default; DEFAULT needs one named column to stand in.
      colList = quoteIdent(table.columns[0].name);
      values = rows.map(() => '(DEFAULT)').join(', ');
    } else {
      colList = cols.map(quoteIdent).join(', ');
      values = rows
        .map((row) => {
          const p = `${params.add(JSON.stringify(row))}::json`;
          const cells = cols.map((c) =>
            Object.hasOwn(row, c)
              ? `(json_populate_record(${rowType}, ${p})).${quoteIdent(c)}`
              : prefs.missingDefault
                ? 'DEFAULT'
                : 'NULL',
          );
          return `(${cells.join(', ')})`;
        })
        .join(', ');
    }
    let conflict = '';
    if (prefs.resolution !== undefined) {
      const target = parts.onConflict ?? table.primaryKey;
      for (const c of target) if (!hasColumn(table, c)) throw columnNotFound(table, c);
      if (target.length > 0) {
        applied.push(`resolution=${prefs.resolution}`);
        const updatable = cols.filter((c) => !target.includes(c));
        conflict =
          prefs.resolution === 'ignore-duplicates' || updatable.length === 0
            ? ` ON CONFLICT (${target.map(quoteIdent).join(', ')}) DO NOTHING`
            : ` ON CONFLICT (${target.map(quoteIdent).join(', ')}) DO UPDATE SET ${updatable
                .map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`)
                .join(', ')}`;
      }
    }
    text =
      `WITH pgrst_source AS (INSERT INTO ${b.from} (${colList}) VALUES ${values}${conflict} RETURNING ${ret}) ` +
      mutationTail(mode, media);
  }
  return {
    kind: 'create',
    table: table.name,
    statement: { text, values: params.values },
    media,
    readOnly: false,
    preferenceApplied: applied,
    count,
    returnMode: mode,
  };
}

function planUpdateOrDelete(
  req: RestRequest,
  table: TableInfo,
  parts: QueryParts,
  prefs: Preferences,
  media: Media,
): MutatePlan {
  const kind = req.method === 'PATCH' ? 'update' : 'delete';
  if (parts.limit !== undefined || parts.offset !== undefined) {
    throw notImplemented(`limit/offset on ${req.method} is not implemented by the sandbox REST API.`);
  }
  let patch: Record<string, unknown> = {};
  if (kind === 'update') {
    checkContentType(req.headers);
    const payload = jsonBody(req.body);
    // PostgREST takes an array body too: `[]` and `[{}]` are no-ops like `{}` (UpdateSpec.hs "when patching with an
    // empty body"); otherwise the first object's keys are the update.
    const first = Array.isArray(payload) ? (payload[0] ?? {}) : payload;
    if (!isPlainObject(first)) throw invalidBody('Empty or invalid json');
    patch = first;
    const cols = parts.columns ?? Object.keys(patch);
    for (const c of cols) if (!hasColumn(table, c)) throw columnNotFound(table, c);
    if (parts.columns) patch = Object.fromEntries(Object.entries(patch).filter(([k]) => parts.columns?.includes(k)));
  }
  const emptyPatch = kind === 'update' && Object.keys(patch).length === 0;
  if (parts.conditions.length === 0 && !emptyPatch) {
    // Hosted Supabase loads pg-safeupdate for the API: unfiltered UPDATE/DELETE are refused. An empty PATCH runs no
    // UPDATE at all, so there is nothing for pg-safeupdate to refuse.
    throw new ApiErrorException(
      apiError(400, '21000', `${kind === 'update' ? 'UPDATE' : 'DELETE'} requires a WHERE clause`),
    );
  }
  const params = new Params();
  const b = new SqlBuilder(table, params);
  const mode = prefs.return ?? 'minimal';
  const applied: string[] = [];
  if (prefs.return) applied.push(`return=${prefs.return}`);
  const count = countPreference(prefs, applied);
  // An empty PATCH still has its filters checked, but they must not add parameters its statement does not use (an
  // unused `$1` of unknown type is an error in PostgreSQL).
  const whereOf = (builder: SqlBuilder) =>
    parts.conditions.length ? ` WHERE ${parts.conditions.map((t) => builder.logic(t)).join(' AND ')}` : '';
  if (emptyPatch) whereOf(new SqlBuilder(table, new Params()));
  const where = emptyPatch ? '' : whereOf(b);
  const ret = returning(b, mode, parts.select);
  let text: string;
  if (kind === 'update') {
    const cols = Object.keys(patch);
    if (cols.length === 0) {
      // PostgREST treats an empty PATCH body as a no-op.
      text = `WITH pgrst_source AS (SELECT ${ret} FROM ${b.from} WHERE false) ${mutationTail(mode, media)}`;
    } else {
      const p = params.add(JSON.stringify(patch));
      const set = cols.map((c) => `${quoteIdent(c)} = pgrst_body.${quoteIdent(c)}`).join(', ');
      text =
        `WITH pgrst_source AS (UPDATE ${b.from} SET ${set} ` +
        `FROM (SELECT * FROM json_populate_record(NULL::${b.from}, ${p}::json)) pgrst_body` +
        `${where} RETURNING ${ret}) ${mutationTail(mode, media)}`;
    }
  } else {
    text = `WITH pgrst_source AS (DELETE FROM ${b.from}${where} RETURNING ${ret}) ${mutationTail(mode, media)}`;
  }
  return {
    kind,
    table: table.name,
    statement: { text, values: params.values },
    media,
    readOnly: false,
    preferenceApplied: applied,
    count,
    returnMode: mode,
  };
}

function noFunction(schema: string, name: string, keys: string[], hint: string | null = null): ApiErrorException {
  const sorted = [...keys].sort();
  const params = sorted.length === 0 ? ' without parameters' : `(${sorted.join(', ')})`;
  const detailParams =
    sorted.length === 0 ? ' without parameters' : ` with parameter${sorted.length > 1 ? 's' : ''} ${sorted.join(', ')}`;
  return new ApiErrorException(
    apiError(
      404,
      'PGRST202',
      `Could not find the function ${schema}.${name}${params} in the schema cache`,
      `Searched for the function ${schema}.${name}${detailParams} or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.`,
      hint,
    ),
  );
}

function planCall(
  req: RestRequest,
  schema: SchemaCache,
  fnName: string,
  prefs: Preferences,
  media: Media,
  options: PlanOptions,
): CallPlan {
  const method = req.method;
  if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') {
    throw new ApiErrorException(apiError(405, 'PGRST101', `Cannot use the ${method} method on RPC`));
  }
  let args: Record<string, unknown>;
  if (method === 'POST') {
    checkContentType(req.headers);
    const payload = req.body === undefined || req.body.trim() === '' ? {} : jsonBody(req.body);
    if (!isPlainObject(payload)) throw invalidBody('Empty or invalid json');
    args = payload;
  } else {
    args = {};
    for (const [k, v] of req.query) {
      if (RESERVED.has(k) || LOGIC_KEYS.has(k)) {
        if (k === 'apikey') continue;
        throw notImplemented(`'${k}' on RPC results is not implemented by the sandbox REST API.`);
      }
      args[k] = v;
    }
  }
  if (method === 'POST') {
    for (const k of req.query.keys()) {
      if (k !== 'apikey')
        throw notImplemented(`Query parameters on POST /rpc are not implemented by the sandbox REST API.`);
    }
  }
  const keys = Object.keys(args);
  const candidates = schema.functions.get(fnName) ?? [];
  const fn = candidates.find(
    (f) =>
      keys.every((k) => f.args.some((a) => a.name === k)) && f.args.every((a) => a.hasDefault || keys.includes(a.name)),
  );
  if (!fn) {
    const version = options.version ?? DEFAULT_POSTGREST_VERSION;
    const hint = candidates.length ? null : functionHint(schema.schema, fnName, schema.functions.keys(), version);
    throw noFunction(schema.schema, fnName, keys, hint);
  }

  const params = new Params();
  const applied: string[] = [];
  const count = countPreference(prefs, applied);
  const headOnly = method === 'HEAD';
  const call = `${quoteIdent(fn.schema)}.${quoteIdent(fn.name)}(${keys
    .map((k) => `${quoteIdent(k)} := pgrst_args.${quoteIdent(k)}`)
    .join(', ')})`;
  const argsFrom =
    keys.length === 0
      ? ''
      : `json_to_record(${params.add(JSON.stringify(args))}::json) AS pgrst_args(${keys
          .map((k) => `${quoteIdent(k)} ${fn.args.find((a) => a.name === k)?.type}`)
          .join(', ')})`;
  let text: string;
  if (fn.returnsVoid) {
    text =
      `WITH pgrst_source AS MATERIALIZED (SELECT ${call} IS NULL AS v${argsFrom ? ` FROM ${argsFrom}` : ''}) ` +
      `SELECT NULL::bigint AS total, count(*)::bigint AS n, ''::text AS body FROM pgrst_source`;
  } else {
    const from = argsFrom ? `${argsFrom}, LATERAL ${call} pgrst_r` : `${call} pgrst_r`;
    const agg = media.stripNulls
      ? `json_agg(json_strip_nulls(to_json(pgrst_page.pgrst_r)))`
      : `json_agg(pgrst_page.pgrst_r)`;
    const cap = cappedLimit(undefined, options.maxRows);
    const total = count && prefs.count !== 'planned' ? '(SELECT count(*) FROM pgrst_source)' : 'NULL';
    const body = headOnly
      ? `''::text`
      : fn.returnsSet
        ? `coalesce(${agg}, '[]')::text`
        : `coalesce((${agg})->0, 'null')::text`;
    // max-rows caps the function's result as it caps a read (QueryLimitedSpec.hs; Plan.hs `treeRestrictRange`);
    // a count counts the whole result.
    text =
      `WITH pgrst_source AS MATERIALIZED (SELECT pgrst_r FROM ${from}), ` +
      `pgrst_page AS (SELECT pgrst_r FROM pgrst_source${cap === undefined ? '' : ` LIMIT ${cap}`}) ` +
      `SELECT ${total}::bigint AS total, count(*)::bigint AS n, ${body} AS body FROM pgrst_page`;
  }
  return {
    kind: 'call',
    fn: fn.name,
    statement: { text, values: params.values },
    media,
    readOnly: method !== 'POST' || fn.volatility !== 'v',
    preferenceApplied: applied,
    count,
    headOnly,
    returnsSet: fn.returnsSet,
    returnsVoid: fn.returnsVoid,
  };
}

/**
 * Plans one request against the schema cache.
 *
 * Deliberate strictness over PostgREST, which silently ignores what it cannot parse: any query parameter
 * that is not reserved must be a valid filter (else PGRST100), and `limit`/`offset` must be integers.
 * Unfiltered PATCH/DELETE fail with 21000 as on hosted Supabase (pg-safeupdate).
 */
export function planRequest(req: RestRequest, schema: SchemaCache, options: PlanOptions = {}): PlanResult {
  try {
    return { ok: true, plan: plan(req, schema, options) };
  } catch (e) {
    if (e instanceof ApiErrorException) return { ok: false, error: e.apiError };
    throw e;
  }
}

function plan(req: RestRequest, schema: SchemaCache, options: PlanOptions): Plan {
  const version = options.version ?? DEFAULT_POSTGREST_VERSION;
  const method = req.method.toUpperCase();
  const r = { ...req, method };
  const segments = req.path.split('/').filter((s) => s !== '');
  let decoded: string[];
  try {
    decoded = segments.map((s) => decodeURIComponent(s));
  } catch {
    throw invalidPath();
  }
  if (decoded.length === 0) {
    if (method !== 'GET' && method !== 'HEAD') {
      throw new ApiErrorException(apiError(405, 'PGRST117', `Unsupported HTTP method: ${method}`));
    }
    return { kind: 'root', headOnly: method === 'HEAD' };
  }
  const readLike = method === 'GET' || method === 'HEAD';
  checkProfile(req.headers, schema.schema, readLike ? 'accept-profile' : 'content-profile', version);
  const prefs = parsePrefer(header(req.headers, 'prefer'));
  if (prefs.strict && prefs.invalid.length > 0) {
    throw new ApiErrorException(
      apiError(
        400,
        'PGRST122',
        'Invalid preferences given with handling=strict',
        `Invalid preferences: ${prefs.invalid.join(', ')}`,
      ),
    );
  }
  const media = negotiateMedia(header(req.headers, 'accept'));

  if (decoded[0] === 'rpc' && decoded.length === 2) return planCall(r, schema, decoded[1], prefs, media, options);
  if (decoded.length !== 1) throw invalidPath();

  const table = schema.tables.get(decoded[0]);
  if (!table) {
    throw new ApiErrorException(tableNotFoundError(schema.schema, decoded[0], schema.tables.keys(), version));
  }
  if (method !== 'GET' && method !== 'HEAD' && method !== 'POST' && method !== 'PATCH' && method !== 'DELETE') {
    // PUT (single-row upsert) is PostgREST's too, but nothing here uses it.
    throw new ApiErrorException(apiError(405, 'PGRST117', `Unsupported HTTP method: ${method}`));
  }
  const parts = parseQueryParts(req.query);
  if (readLike) return planRead(r, table, parts, prefs, media, options.maxRows);
  if (method === 'POST') return planCreate(r, table, parts, prefs, media);
  return planUpdateOrDelete(r, table, parts, prefs, media);
}

function invalidPath(): ApiErrorException {
  return new ApiErrorException(apiError(404, 'PGRST125', 'Invalid path specified in request URL'));
}

// ---------------------------------------------------------------------------------------------------------
// Answers.

/** `Content-Range` as PostgREST writes it: `lower-upper/total`, `*` for an empty range or an unknown total. */
export function contentRange(lower: number, upper: number, total: number | null): string {
  const range = total !== 0 && lower <= upper ? `${lower}-${upper}` : '*';
  return `${range}/${total === null ? '*' : total}`;
}

function contentType(media: Media): string {
  const base = media.singular ? 'application/vnd.pgrst.object+json' : 'application/json';
  return media.stripNulls ? `${base}; nulls=stripped; charset=utf-8` : `${base}; charset=utf-8`;
}

function singularityError(n: number): HttpAnswer {
  const e = apiError(
    406,
    'PGRST116',
    'Cannot coerce the result to a single JSON object',
    `The result contains ${n} rows`,
  );
  return errorAnswer(e, true);
}

/** Serialises an {@link ApiError} as an answer. */
export function errorAnswer(e: ApiError, rollback = false): HttpAnswer {
  return {
    status: e.status,
    headers: { 'Content-Type': 'application/json; charset=utf-8', ...(e.headers ?? {}) },
    body: JSON.stringify(e.body),
    rollback,
  };
}

function firstElement(arrayJson: string): string {
  // json_agg of exactly one row: strip the brackets rather than re-serialise (keeps PostgreSQL's formatting).
  return arrayJson.slice(1, -1).trim();
}

function locationFor(table: string, bodyJson: string | null, primaryKey: string[]): string | undefined {
  if (!bodyJson || primaryKey.length === 0) return undefined;
  const rows = JSON.parse(bodyJson) as Record<string, unknown>[];
  if (rows.length !== 1) return undefined;
  const q = new URLSearchParams();
  for (const k of primaryKey) q.append(k, `eq.${String(rows[0][k])}`);
  return `/${table}?${q.toString()}`;
}

/**
 * Whether {@link respond} answers a success whatever the statement returns, so that nothing decided after the
 * statement rolls it back: a write or a call not asking for a single object (406 PGRST116 unless one row), and not a
 * POST whose Location header is read from the rows. Reads are not among them (416 past the end).
 */
export function answerCannotFail(plan: Exclude<Plan, RootPlan>): boolean {
  if (plan.kind === 'read' || plan.media.singular) return false;
  return !(plan.kind === 'create' && plan.returnMode === 'headers-only');
}

/**
 * Turns the statement's row into the HTTP answer (status, Content-Range, body), PostgREST-style:
 * GET 200 (206 when a count shows a partial page, 416 past the end), POST 201, PATCH/DELETE 204 or 200 with
 * a representation, singular responses 406 unless exactly one row.
 */
export function respond(plan: Exclude<Plan, RootPlan>, row: StatementRow, primaryKey: string[] = []): HttpAnswer {
  const n = Number(row.n);
  const total = row.total === null ? null : Number(row.total);
  const headers: Record<string, string> = {};
  if (plan.preferenceApplied.length > 0) headers['Preference-Applied'] = plan.preferenceApplied.join(', ');
  const body = row.body ?? '';

  if (plan.kind === 'read' || plan.kind === 'call') {
    const lower = plan.kind === 'read' ? plan.offset : 0;
    const upper = lower + n - 1;
    const knownTotal = total;
    if (plan.kind === 'call' && plan.returnsVoid) {
      return {
        status: 204,
        headers: { ...headers, 'Content-Range': contentRange(lower, upper, knownTotal) },
        body: '',
        rollback: false,
      };
    }
    if (knownTotal !== null && lower > knownTotal) {
      return errorAnswer(
        apiError(
          416,
          'PGRST103',
          'Requested range not satisfiable',
          `An offset of ${lower} was requested, but there are only ${knownTotal} rows.`,
        ),
      );
    }
    const singularApplies = plan.kind === 'read' || plan.returnsSet;
    if (plan.media.singular && singularApplies && n !== 1) return singularityError(n);
    const status = knownTotal !== null && n < knownTotal ? 206 : 200;
    const out = plan.media.singular && singularApplies && !plan.headOnly ? firstElement(body) : body;
    return {
      status,
      headers: {
        ...headers,
        'Content-Range': contentRange(lower, upper, knownTotal),
        'Content-Type': contentType(plan.media),
      },
      body: plan.headOnly ? '' : out,
      rollback: false,
    };
  }

  if (plan.media.singular && n !== 1) return singularityError(n);
  const count = plan.count ? n : null;
  headers['Content-Range'] = plan.kind === 'update' ? contentRange(0, n - 1, count) : contentRange(1, 0, count);
  if (plan.kind === 'create' && plan.returnMode === 'headers-only') {
    const location = locationFor(plan.table, row.body, primaryKey);
    if (location) headers['Location'] = location;
  }
  if (plan.returnMode === 'representation') {
    return {
      status: plan.kind === 'create' ? 201 : 200,
      headers: { ...headers, 'Content-Type': contentType(plan.media) },
      body: plan.media.singular ? firstElement(body) : body,
      rollback: false,
    };
  }
  return { status: plan.kind === 'create' ? 201 : 204, headers, body: '', rollback: false };
}
