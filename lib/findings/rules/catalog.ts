/**
 * The project's Postgres catalog (diagnose-env with SUPABASE_DB_URL): what the shipped migrations create that the
 * project lacks, judged against the statement timeout the runbooks' reads run under. Nothing here without the
 * variable: it is never required.
 */

import type { CatalogSeen } from '../../evidence/catalog-step.ts';
import type { Evidence } from '../../evidence/evidence.ts';
import type { FindingRule } from '../rule.ts';

/** The catalog, read and compared, when the table exists (jobs-table-missing speaks otherwise). */
function seen(ev: Evidence): CatalogSeen | undefined {
  const c = ev.catalog;
  return c?.ok && c.facts.table ? c : undefined;
}

/** How to apply one migration file to the project, naming the variable, never its value. */
const apply = (file: string) => `psql "$SUPABASE_DB_URL" -f sandbox/migrations/${file}`;

function timeoutCause(c: CatalogSeen): string {
  const t = c.readTimeout;
  return t
    ? `past ${t.value} (statement_timeout of ${t.from}${t.from === 'authenticator' ? ', which service_role inherits' : ''}) PostgreSQL cancels such a read and PostgREST answers 500 57014, so the runbooks cannot read the queue exactly when the backlog is biggest`
    : 'neither service_role nor authenticator has a statement_timeout, so such a read holds a database connection until the client gives up';
}

export const CATALOG_RULES: readonly FindingRule[] = [
  {
    id: 'catalog-unreadable',
    severity: 'warning',
    scope: 'env',
    detect: ({ ev }) => {
      const c = ev.catalog;
      if (!c || c.ok) return [];
      return [
        {
          title: 'the database catalog could not be read over SUPABASE_DB_URL',
          evidence: [c.failure.message],
          cause:
            'SUPABASE_DB_URL is set, but the connection or the catalog query failed; the indexes and role timeouts are unknown',
          fix: `${c.failure.fix} (or unset SUPABASE_DB_URL: it is optional)`,
        },
      ];
    },
  },
  {
    id: 'index-missing',
    severity: 'warning',
    scope: 'env',
    detect: ({ ev }) => {
      const c = seen(ev);
      if (!c?.missingIndexes.length) return [];
      const files = [...new Set(c.missingIndexes.map((i) => i.file))];
      const n = c.missingIndexes.length;
      return [
        {
          title: `hd_ingestion_jobs lacks ${n} index${n === 1 ? '' : 'es'} of the migrations`,
          evidence: [
            ...c.missingIndexes.map((i) => `no index ${i.name} on (${i.columns}), created by ${i.file}`),
            `present: ${c.facts.indexes.map((i) => i.name).join(', ') || 'none'}`,
          ],
          cause: `the queue reads filter and sort on these columns; without the index each read scans the table, and ${timeoutCause(c)}`,
          fix: `apply ${files.join(', then ')}: ${files.map(apply).join(' && ')} (or the SQL editor, or supabase db push)`,
        },
      ];
    },
  },
  {
    id: 'requeue-function-missing',
    severity: 'info',
    scope: 'env',
    detect: ({ ev }) => {
      const c = seen(ev);
      if (!c) return [];
      const missing = c.missingFunctions;
      const denied = c.facts.functions.filter((f) => f.serviceRoleExecutes === false);
      if (!missing.length && !denied.length) return [];
      // The migrations that create (and grant) each function concerned, in the order they apply.
      const concerned = c.expected.functions.filter(
        (f) => missing.includes(f) || denied.some((d) => d.name === f.name),
      );
      const files = [...new Set(concerned.flatMap((f) => f.files))];
      return [
        {
          title: missing.length
            ? `${missing.map((f) => f.name).join(', ')} is not installed: a bulk requeue writes one job per request`
            : `service_role may not execute ${denied.map((f) => f.name).join(', ')}: a bulk requeue writes one job per request`,
          evidence: [
            ...missing.map((f) => `no function public.${f.name} (created by ${f.files.join(', then ')})`),
            ...denied.map((f) => `public.${f.name}(${f.args}) exists; service_role lacks EXECUTE`),
          ],
          cause:
            'requeue.mts falls back to one compare-and-set PATCH per job: the same guarantees, one request per job instead of one per 1,000',
          fix: `apply ${files.join(', then ')}: ${files.map(apply).join(' && ')}`,
        },
      ];
    },
  },
];
