/**
 * diagnose-env's optional look into the project's Postgres catalog, over SUPABASE_DB_URL: the indexes of
 * hd_ingestion_jobs against those the shipped migrations create, the statement timeouts of the API's roles, and
 * the functions the migrations install. Without SUPABASE_DB_URL the step says nothing and reads nothing.
 */
import type { CatalogFacts, CatalogFailure } from '../io/catalog-db.ts';
import {
  columnsOfDefinition,
  type ExpectedIndex,
  type ExpectedSchema,
  expectedSchema,
  type MigrationFile,
  readMigrations,
} from '../io/migrations.ts';
import { check, type Step } from '../io/steps.ts';
import type { GatherState } from './gather-state.ts';

/** What the catalog showed, beside what the migrations expect; the rules of lib/findings/rules/catalog.ts judge it. */
export type CatalogEvidence = { expected: ExpectedSchema } & (
  | {
      ok: true;
      facts: CatalogFacts;
      ms: number;
      /** Expected indexes with neither their name nor their columns on the table. */
      missingIndexes: ExpectedIndex[];
      /** Expected functions that are not in public. */
      missingFunctions: ExpectedSchema['functions'];
      /** The statement_timeout the runbooks' reads (service_role) run under, and where it is set. */
      readTimeout: { value: string; from: 'service_role' | 'authenticator' } | undefined;
    }
  | { ok: false; failure: CatalogFailure }
);

// The step's field of the evidence is declared beside the step that fills it.
declare module './evidence.ts' {
  interface Evidence {
    /** The catalog over SUPABASE_DB_URL; undefined when the variable is not set. */
    catalog?: CatalogEvidence;
  }
}

/** Which expected indexes the table lacks: by name, or failing that by the same columns under another name. */
export function missingIndexes(expected: readonly ExpectedIndex[], facts: CatalogFacts): ExpectedIndex[] {
  const names = new Set(facts.indexes.map((i) => i.name.toLowerCase()));
  const columns = new Set(facts.indexes.map((i) => columnsOfDefinition(i.definition)));
  return expected.filter((i) => !names.has(i.name) && !columns.has(i.columns));
}

/** The catalog as read and compared. */
export type CatalogSeen = Extract<CatalogEvidence, { ok: true }>;

/** Compares the catalog with the migrations. Pure. */
export function catalogEvidence(expected: ExpectedSchema, facts: CatalogFacts, ms: number): CatalogSeen {
  const present = new Set(facts.functions.map((f) => f.name));
  const own = facts.roleTimeouts.service_role;
  const viaAuthenticator = facts.roleTimeouts.authenticator;
  return {
    ok: true,
    expected,
    facts,
    ms,
    missingIndexes: facts.table ? missingIndexes(expected.indexes, facts) : [],
    missingFunctions: expected.functions.filter((f) => !present.has(f.name)),
    readTimeout: own
      ? { value: own, from: 'service_role' }
      : viaAuthenticator
        ? { value: viaAuthenticator, from: 'authenticator' }
        : undefined,
  };
}

function timeoutsLine(facts: CatalogFacts): string {
  const roles = ['service_role', 'authenticator', 'authenticated', 'anon'];
  return `statement_timeout: ${roles.map((r) => `${r} ${facts.roleTimeouts[r] ?? 'unset'}`).join(', ')}`;
}

/** The step, with the migrations it compares against (the shipped files unless a test passes others). */
export function catalogStepWith(migrations: () => MigrationFile[]): Step<GatherState> {
  return {
    id: 'catalog',
    title: 'Read the database catalog',
    async run(state) {
      const dbUrl = state.config.values.SUPABASE_DB_URL;
      // Optional: without it there is nothing to say (README: SUPABASE_DB_URL).
      if (!dbUrl) return [];
      const expected = expectedSchema(migrations());
      const r = await state.ports.openCatalog(dbUrl).read(expected.functions.map((f) => f.name));
      if (!r.ok) {
        state.evidence.catalog = { ok: false, expected, failure: r.failure };
        return check('catalog', this.title, 'failed', r.failure.message, { fix: r.failure.fix });
      }
      const ev = catalogEvidence(expected, r.value, r.ms);
      state.evidence.catalog = ev;
      const { facts } = ev;
      if (!facts.table) {
        return check('catalog', this.title, 'warning', `PostgreSQL ${facts.serverVersion}: no table hd_ingestion_jobs`);
      }
      if (!ev.expected.indexes.length && !ev.expected.functions.length) {
        return check('catalog', this.title, 'warning', `PostgreSQL ${facts.serverVersion}; ${timeoutsLine(facts)}`, {
          fix: 'sandbox/migrations/*.sql is not beside the runbooks: nothing to compare the indexes with (reinstall them whole)',
        });
      }
      const found = ev.expected.indexes.length - ev.missingIndexes.length;
      const fns = ev.expected.functions.map(
        (f) => `${f.name} ${ev.missingFunctions.some((m) => m.name === f.name) ? 'missing' : 'installed'}`,
      );
      const gaps = ev.missingIndexes.length + ev.missingFunctions.length;
      return check(
        'catalog',
        this.title,
        gaps ? 'warning' : 'ok',
        `PostgreSQL ${facts.serverVersion}; ${found} of ${ev.expected.indexes.length} indexes of the migrations on hd_ingestion_jobs; ${fns.join(', ')} (${Math.round(r.ms)} ms)`,
        {
          details: [
            ...ev.missingIndexes.map((i) => `missing index ${i.name} (${i.columns}) of ${i.file}`),
            timeoutsLine(facts),
          ],
        },
      );
    },
  };
}

/** Reads the catalog when SUPABASE_DB_URL is set; compares with sandbox/migrations/*.sql. */
export const catalogStep: Step<GatherState> = catalogStepWith(() => readMigrations());
