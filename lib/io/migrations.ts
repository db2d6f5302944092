/**
 * What the schema should hold, read from the migrations the runbooks ship (sandbox/migrations/*.sql, the files an
 * operator applies to the project): the indexes on hd_ingestion_jobs and the functions. Read from the files, not
 * written down twice, so a new migration's index is expected as soon as it is added.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MIGRATIONS = path.join('sandbox', 'migrations');

/**
 * Where the shipped migrations live: the nearest `sandbox/migrations` above this module. Searched, not fixed, so the
 * same code finds them from lib/io/ and from a bundle of the runbooks (test/setup/bundle.ts builds one under
 * node_modules/.cache); undefined when the runbooks were installed without them.
 */
export function findMigrationsDir(from: string = path.dirname(fileURLToPath(import.meta.url))): string | undefined {
  for (let dir = from, i = 0; i < 8; i++) {
    const candidate = path.join(dir, MIGRATIONS);
    if (existsSync(candidate)) return candidate;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

export interface MigrationFile {
  /** The file name, e.g. `001_hd_ingestion_jobs.sql`. */
  name: string;
  text: string;
}

export interface ExpectedIndex {
  name: string;
  /** The indexed columns as written, normalised: `status, finished_at desc`. */
  columns: string;
  /** The migration that creates it. */
  file: string;
}

export interface ExpectedSchema {
  indexes: ExpectedIndex[];
  /** Each function, with every migration that creates or replaces it (apply them in this order). */
  functions: Array<{ name: string; files: string[] }>;
}

/** The migration files, in the order they are applied (by name); none when the folder is not there. */
export function readMigrations(dir: string | undefined = findMigrationsDir()): MigrationFile[] {
  if (!dir) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((name) => ({ name, text: readFileSync(path.join(dir, name), 'utf8') }));
}

/** Lower case, single spaces, no quotes, no `asc` (the default): comparable with pg_indexes' definitions. */
export function normaliseColumns(text: string): string {
  return text
    .replace(/"/g, '')
    .replace(/\s+/g, ' ')
    .replace(/\s*,\s*/g, ', ')
    .replace(/ asc\b/gi, '')
    .trim()
    .toLowerCase();
}

const NAME = `"?([A-Za-z_][A-Za-z0-9_]*)"?`;
const CREATE_INDEX = new RegExp(
  String.raw`create\s+(?:unique\s+)?index\s+(?:concurrently\s+)?(?:if\s+not\s+exists\s+)?${NAME}\s+on\s+(?:only\s+)?(?:"?public"?\.)?"?hd_ingestion_jobs"?\s*(?:using\s+\w+\s*)?\(((?:[^()]|\([^()]*\))*)\)`,
  'gi',
);
const DROP_INDEX = new RegExp(
  String.raw`drop\s+index\s+(?:concurrently\s+)?(?:if\s+exists\s+)?(?:"?public"?\.)?${NAME}`,
  'gi',
);
const CREATE_FUNCTION = new RegExp(
  String.raw`create\s+(?:or\s+replace\s+)?function\s+(?:"?public"?\.)?${NAME}\s*\(`,
  'gi',
);
const DROP_FUNCTION = new RegExp(String.raw`drop\s+function\s+(?:if\s+exists\s+)?(?:"?public"?\.)?${NAME}`, 'gi');

/** The indexes and functions the migrations leave in place, in file order (a later drop removes one). Pure. */
export function expectedSchema(files: readonly MigrationFile[]): ExpectedSchema {
  const indexes = new Map<string, ExpectedIndex>();
  const functions = new Map<string, { name: string; files: string[] }>();
  for (const { name: file, text } of files) {
    // Comments may mention an index or a function without making one.
    const sql = text.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
    const events: Array<{ at: number; apply: () => void }> = [];
    for (const m of sql.matchAll(CREATE_INDEX)) {
      const name = m[1]!.toLowerCase();
      events.push({ at: m.index, apply: () => indexes.set(name, { name, columns: normaliseColumns(m[2]!), file }) });
    }
    for (const m of sql.matchAll(DROP_INDEX))
      events.push({ at: m.index, apply: () => indexes.delete(m[1]!.toLowerCase()) });
    for (const m of sql.matchAll(CREATE_FUNCTION)) {
      const name = m[1]!.toLowerCase();
      const files = (name: string) => [...new Set([...(functions.get(name)?.files ?? []), file])];
      events.push({ at: m.index, apply: () => functions.set(name, { name, files: files(name) }) });
    }
    for (const m of sql.matchAll(DROP_FUNCTION))
      events.push({ at: m.index, apply: () => functions.delete(m[1]!.toLowerCase()) });
    for (const e of events.sort((a, b) => a.at - b.at)) e.apply();
  }
  return { indexes: [...indexes.values()], functions: [...functions.values()] };
}

/** The columns of a `CREATE INDEX … ON … (cols)` definition as pg_indexes prints it, normalised. */
export function columnsOfDefinition(definition: string): string {
  const m = /\bON\s+(?:ONLY\s+)?\S+\s+(?:USING\s+\w+\s+)?\(((?:[^()]|\([^()]*\))*)\)/i.exec(definition);
  return m ? normaliseColumns(m[1]!) : '';
}
