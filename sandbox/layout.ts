import { readFileSync } from 'node:fs';
import path from 'node:path';

/** What `up` writes to DIR/sandbox.json: everything a test or runbook needs to reach the sandbox. */
export interface SandboxInfo {
  dir: string;
  supervisorPid: number;
  control: { url: string; token: string };
  cloud: {
    url: string;
    ref: string;
    anonKey: string;
    serviceRoleKey: string;
    secretKey: string;
    publishableKey: string;
  };
  local: { url: string; ref: string; anonKey: string; serviceRoleKey: string };
  spark: {
    host: string;
    port: number;
    user: string;
    keyPath: string;
    knownHosts: string;
    hostKeyFingerprint: string;
    home: string;
    workerDir: string;
  };
  worker: { pid: number | null };
  app: { envFile: string };
  postgres: { port: number };
  latencyMs: number;
  /**
   * The limits it enforces (`up` flags; sandbox/rest/limits.ts): 0 is off; statementTimeoutMs null means Supabase's
   * role timeouts (service_role 8 s through the authenticator, anon 3 s, authenticated 8 s).
   */
  limits?: {
    maxRows: number;
    pool: number;
    poolTimeoutMs: number;
    postgrest: number;
    maxUrlBytes: number;
    maxBodyBytes: number;
    statementTimeoutMs: number | null;
  };
}

/** Paths of the files a sandbox keeps in its folder. */
export function sandboxPaths(dir: string) {
  const root = path.resolve(dir);
  return {
    root,
    info: path.join(root, 'sandbox.json'),
    pid: path.join(root, 'sandbox.pid'),
    log: path.join(root, 'sandbox.log'),
    laptopEnv: path.join(root, '.env'),
    appEnv: path.join(root, 'app.env'),
    pgData: path.join(root, 'pg'),
    sparkHome: path.join(root, 'spark-home'),
    workerDir: path.join(root, 'spark-home', 'srv', 'hd-worker'),
    sshDir: path.join(root, 'ssh'),
  };
}

/** Reads DIR/sandbox.json; throws with the command to run when there is none. */
export function readSandboxInfo(dir: string): SandboxInfo {
  const file = sandboxPaths(dir).info;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SandboxInfo;
  } catch {
    throw new Error(`no sandbox in ${path.resolve(dir)}: start one with \`npm run sandbox -- up --dir ${dir}\``);
  }
}

/**
 * Calls a running sandbox's control API (scenario, stats, worker, controls, sql). Scenarios wait for the worker,
 * and the bench's bulk inserts take a while, hence the generous default timeout.
 */
export async function callSandboxControl<T = unknown>(
  info: Pick<SandboxInfo, 'control'>,
  method: string,
  route: string,
  body?: unknown,
  timeoutMs = 300_000,
): Promise<T> {
  const res = await fetch(`${info.control.url}${route}`, {
    method,
    headers: { 'x-sandbox-token': info.control.token, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const json = (await res.json()) as T & { error?: string };
  if (!res.ok) throw new Error(`sandbox ${method} ${route}: ${json.error ?? `control API answered ${res.status}`}`);
  return json;
}
