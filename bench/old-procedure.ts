/**
 * The old ops page's procedure (shared/seed/000_*.txt, "Job Debug (schnell)"), scripted as written: log in to
 * Spark with OpenSSH and run the list-jobs Python snippet with the worker's .env loaded, then, in a second SSH
 * session as an operator pastes it, `tail -n 200` of the worker log. The only liberty: the snippet goes to
 * `bash -s` on stdin instead of being pasted into an interactive shell (the sandbox's Spark offers exec, not a
 * login shell); that is the same one connection and one channel per step.
 */
import { type ChildResult, childEnv, runTimed } from './child.ts';

/** Step 1 of the old page, verbatim (the heredoc included). */
export const OLD_LIST_JOBS = `cd ~/srv/hd-worker
set -a; source .env; set +a

python3 - <<'PY'
import os,requests
url=os.environ['SUPABASE_URL']
key=os.environ['SUPABASE_SERVICE_ROLE_KEY']
h={'apikey':key,'Authorization':f'Bearer {key}'}
params={'select':'id,account_id,job_type,status,attempts,error,debug,created_at,started_at,finished_at','order':'created_at.desc','limit':'10'}
r=requests.get(f"{url}/rest/v1/hd_ingestion_jobs", params=params, headers=h, timeout=30)
print(r.status_code)
print(r.text)
PY
`;

/** The same request with the standard library, for a Spark without `requests`. */
export const OLD_LIST_JOBS_URLLIB = `cd ~/srv/hd-worker
set -a; source .env; set +a

python3 - <<'PY'
import os,urllib.request,urllib.parse
url=os.environ['SUPABASE_URL']
key=os.environ['SUPABASE_SERVICE_ROLE_KEY']
h={'apikey':key,'Authorization':f'Bearer {key}'}
params={'select':'id,account_id,job_type,status,attempts,error,debug,created_at,started_at,finished_at','order':'created_at.desc','limit':'10'}
req=urllib.request.Request(f"{url}/rest/v1/hd_ingestion_jobs?"+urllib.parse.urlencode(params), headers=h)
with urllib.request.urlopen(req, timeout=30) as r:
    print(r.status)
    print(r.read().decode())
PY
`;

/** Step 2 of the old page, verbatim. */
export const OLD_TAIL_LOG = 'tail -n 200 ~/srv/hd-worker/logs/worker.log';

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  keyPath: string;
  knownHosts: string;
}

/** OpenSSH as an operator runs it, with no personal config in the way (`-F /dev/null`), never prompting. */
export function sshArgs(t: SshTarget, remote: string[]): string[] {
  return [
    '-F',
    '/dev/null',
    '-p',
    String(t.port),
    '-i',
    t.keyPath,
    '-o',
    `UserKnownHostsFile=${t.knownHosts}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'LogLevel=ERROR',
    `${t.user}@${t.host}`,
    ...remote,
  ];
}

export interface OldProcedureRun {
  wallMs: number;
  steps: Array<{ what: string; wallMs: number; code: number | null }>;
  ok: boolean;
  output: string;
}

/** Runs both steps one after the other, as pasted; wall time is the sum, the operator's typing excluded. */
export async function runOldProcedure(
  t: SshTarget,
  opts: { cwd: string; useRequests: boolean; timeoutMs: number },
): Promise<OldProcedureRun> {
  const steps: OldProcedureRun['steps'] = [];
  const run = async (what: string, remote: string[], stdin?: string): Promise<ChildResult> => {
    const r = await runTimed('ssh', sshArgs(t, remote), {
      cwd: opts.cwd,
      env: childEnv(),
      timeoutMs: opts.timeoutMs,
      stdin,
      memory: false,
    });
    steps.push({ what, wallMs: r.wallMs, code: r.code });
    return r;
  };
  const list = await run(
    'ssh + list-jobs snippet',
    ['bash', '-s'],
    opts.useRequests ? OLD_LIST_JOBS : OLD_LIST_JOBS_URLLIB,
  );
  const tail = await run('ssh + tail -n 200', [OLD_TAIL_LOG]);
  const ok = list.code === 0 && /^200$/m.test(list.stdout) && tail.code === 0;
  return {
    wallMs: steps.reduce((n, s) => n + s.wallMs, 0),
    steps,
    ok,
    output: `${list.stdout}\n${list.stderr}\n${tail.stderr}`.slice(0, 2_000),
  };
}
