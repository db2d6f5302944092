/**
 * The Supabase CLI's local-development keys. They are public and the same on every machine (the CLI signs them
 * with a documented demo secret), so a runbook can count the jobs stranded in a developer's local instance
 * (failure A) without asking for a key. Signed at run time rather than pasted as strings.
 */
import { SignJWT } from 'jose';

/** The CLI's documented default JWT secret for `supabase start`; it protects nothing by design. */
export const SUPABASE_CLI_DEMO_JWT_SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';
const DEMO_EXP = 1983812996;

async function sign(role: 'anon' | 'service_role'): Promise<string> {
  return new SignJWT({ iss: 'supabase-demo', role, exp: DEMO_EXP })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(SUPABASE_CLI_DEMO_JWT_SECRET));
}

export async function supabaseCliDefaultKeys(): Promise<{ anonKey: string; serviceRoleKey: string }> {
  return { anonKey: await sign('anon'), serviceRoleKey: await sign('service_role') };
}
