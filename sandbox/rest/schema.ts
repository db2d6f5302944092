/**
 * Reads the exposed schema's tables and functions from the catalog: the replica's "schema cache".
 * Hosted Supabase reloads PostgREST's cache on every DDL (event trigger), so the server reads it per request
 * instead of caching: a function created by a test is callable at once, as on Supabase.
 */
import type { ColumnInfo, FunctionInfo, SchemaCache, TableInfo } from './query.ts';

/** The minimal query surface needed (a `pg.Client` or `pg.PoolClient`). */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

const CATALOG_SQL = `
SELECT
  coalesce((
    SELECT json_agg(json_build_object(
      'name', c.relname,
      'columns', (
        SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
        FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
      'primaryKey', coalesce((
        SELECT json_agg(a.attname ORDER BY array_position(i.indkey::int2[], a.attnum))
        FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE i.indrelid = c.oid AND i.indisprimary), '[]'::json)))
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'f', 'p')), '[]'::json) AS tables,
  coalesce((
    SELECT json_agg(json_build_object(
      'name', p.proname,
      'returnsSet', p.proretset,
      'returnsVoid', p.prorettype = 'void'::regtype,
      'volatility', p.provolatile,
      'nargDefaults', p.pronargdefaults,
      'argNames', p.proargnames,
      'argModes', p.proargmodes::text[],
      'argTypes', coalesce(p.proallargtypes, p.proargtypes::oid[])::regtype[]::text[]))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = $1 AND p.prokind = 'f'), '[]'::json) AS functions`;

interface RawFunction {
  name: string;
  returnsSet: boolean;
  returnsVoid: boolean;
  volatility: 'i' | 's' | 'v';
  nargDefaults: number;
  argNames: string[] | null;
  argModes: string[] | null;
  argTypes: string[];
}

/** Loads the schema cache of `schema` (default `public`). */
export async function loadSchemaCache(db: Queryable, schema = 'public'): Promise<SchemaCache> {
  const { rows } = await db.query(CATALOG_SQL, [schema]);
  const raw = rows[0] as {
    tables: { name: string; columns: ColumnInfo[] | null; primaryKey: string[] }[];
    functions: RawFunction[];
  };
  const tables = new Map<string, TableInfo>();
  for (const t of raw.tables) {
    tables.set(t.name, { schema, name: t.name, columns: t.columns ?? [], primaryKey: t.primaryKey });
  }
  const functions = new Map<string, FunctionInfo[]>();
  for (const f of raw.functions) {
    const inputs: { name: string; type: string }[] = [];
    f.argTypes.forEach((type, i) => {
      const mode = f.argModes?.[i] ?? 'i';
      if (mode === 'i' || mode === 'b' || mode === 'v') inputs.push({ name: f.argNames?.[i] ?? '', type });
    });
    const firstDefault = inputs.length - f.nargDefaults;
    const info: FunctionInfo = {
      schema,
      name: f.name,
      args: inputs.map((a, i) => ({ name: a.name, type: a.type, hasDefault: i >= firstDefault })),
      returnsSet: f.returnsSet,
      returnsVoid: f.returnsVoid,
      volatility: f.volatility,
    };
    const list = functions.get(f.name) ?? [];
    list.push(info);
    functions.set(f.name, list);
  }
  return { schema, tables, functions };
}
