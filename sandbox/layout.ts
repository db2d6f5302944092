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
