/**
 * The Supabase CLI's local-development keys. They are public and the same on every machine (the CLI signs them
 * with a documented demo secret), so a runbook can count the jobs stranded in a developer's local instance
 * (failure A) without asking for a key. Signed at run time rather than pasted as strings: an HS256 JWT is two
 * base64url JSON objects and an HMAC-SHA256, so node:crypto does it without a JOSE library on the runbook's path.
 */
import { createHmac } from 'node:crypto';

/** The CLI's documented default JWT secret for `supabase start`; it protects nothing by design. */
export const SUPABASE_CLI_DEMO_JWT_SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';
const DEMO_EXP = 1983812996;

const base64url = (json: unknown) => Buffer.from(JSON.stringify(json)).toString('base64url');

function sign(role: 'anon' | 'service_role'): string {
  const signingInput = `${base64url({ alg: 'HS256', typ: 'JWT' })}.${base64url({ iss: 'supabase-demo', role, exp: DEMO_EXP })}`;
  const signature = createHmac('sha256', SUPABASE_CLI_DEMO_JWT_SECRET).update(signingInput).digest('base64url');
  return `${signingInput}.${signature}`;
}

export async function supabaseCliDefaultKeys(): Promise<{ anonKey: string; serviceRoleKey: string }> {
  return { anonKey: sign('anon'), serviceRoleKey: sign('service_role') };
}
