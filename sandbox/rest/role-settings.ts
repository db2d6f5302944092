/**
 * The settings of the roles the API impersonates (`alter role anon set statement_timeout = '3s'`), read and applied
 * as PostgREST does: read once from the catalog (PostgREST's `queryRoleSettings` in src/PostgREST/Config/Database.hs:
 * the settings of every role the authenticator is a member of, those a user may set), then applied in each request's
 * transaction with `set_config(key, value, true)` before the role itself (`setPgLocals` in src/PostgREST/Query.hs).
 * `SET ROLE` alone would not apply them: PostgreSQL applies a role's settings only at login.
 */
import type { Queryable } from './schema.ts';

/** role → [setting, value] pairs. */
export type RoleSettings = Map<string, [string, string][]>;

const ROLE_SETTINGS_SQL = `
WITH role_setting AS (
  SELECT r.rolname, unnest(r.rolconfig) AS setting
  FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
  WHERE m.member = current_user::regrole::oid
), kv AS (
  SELECT rolname, substr(setting, 1, strpos(setting, '=') - 1) AS key,
         lower(substr(setting, strpos(setting, '=') + 1)) AS value
  FROM role_setting
)
SELECT kv.rolname, json_agg(json_build_array(kv.key, kv.value)) AS settings
FROM kv JOIN pg_settings ps ON ps.name = kv.key AND ps.context = 'user'
GROUP BY kv.rolname`;

/** Reads the settings of the roles the connected user (the authenticator) may switch to. */
export async function loadRoleSettings(db: Queryable): Promise<RoleSettings> {
  const { rows } = await db.query(ROLE_SETTINGS_SQL);
  return new Map(rows.map((r) => [String(r.rolname), r.settings as [string, string][]]));
}

/**
 * The `set_config` calls for `role`'s settings, numbered from `$first`, and their values: to go first in the select
 * list that sets the request's role and claims.
 */
export function roleSettingCalls(
  settings: RoleSettings | undefined,
  role: string,
  first: number,
): { sql: string[]; values: string[] } {
  const sql: string[] = [];
  const values: string[] = [];
  for (const [key, value] of settings?.get(role) ?? []) {
    sql.push(`set_config($${first + values.length}, $${first + values.length + 1}, true)`);
    values.push(key, value);
  }
  return { sql, values };
}
