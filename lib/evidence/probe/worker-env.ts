/** The worker's .env, read as data (never sourced): its Supabase URL and key are the worker's side. */
import type { SupabaseSide } from '../../io/config.ts';
import { parseEnvText } from '../../io/env-file.ts';
import { describeKey, inspectKey } from '../../io/keys.ts';
import { check } from '../../io/steps.ts';
import { classifySupabaseUrl } from '../../io/supabase-url.ts';
import { defineSection, notReceived } from './section.ts';
import type { SparkEvidence } from './spark-evidence.ts';

/** The most of the .env that is read. */
export const ENV_MAX_BYTES = 65_536;

const TITLE = "Read the worker's .env";
const KEY_VARS = ['SUPABASE_SERVICE_ROLE_KEY', 'SUPABASE_SECRET_KEY'] as const;

/** The worker's Supabase URL and key, from its .env. */
export function workerSide(vars: Record<string, string>, workerDirPath: string): SupabaseSide {
  const url = classifySupabaseUrl(vars.SUPABASE_URL);
  const keyVar = KEY_VARS.find((k) => vars[k]);
  return {
    source: `SUPABASE_URL in ${workerDirPath}/.env`,
    urlVar: 'SUPABASE_URL',
    url: url.ok ? url : undefined,
    urlProblem: url.ok ? undefined : url.problem,
    keyVar,
    key: keyVar ? inspectKey(vars[keyVar]) : undefined,
    declaredRef: vars.SUPABASE_PROJECT_REF,
  };
}

export const workerEnvSection = defineSection({
  name: 'worker-env',
  outputs: { env: ['base64', 'head'] },
  // A regular file only: a folder or a FIFO named .env is as unusable as one without read permission (and a FIFO
  // would block the probe).
  script: () => [
    `section env; if [ -f "$W/.env" ] && [ -r "$W/.env" ]; then head -c ${ENV_MAX_BYTES} "$W/.env" | base64 | tr -d '\\n'; echo; elif [ -e "$W/.env" ]; then echo unreadable; else echo missing; fi`,
  ],
  // base64 makes 4 bytes of 3; twice leaves room.
  outputBytes: () => ENV_MAX_BYTES * 2,
  parse: (out): Pick<SparkEvidence, 'env'> => {
    const raw = out.text('env').trim();
    if (raw === 'missing' || raw === '') return { env: { status: 'missing' } };
    if (raw === 'unreadable') return { env: { status: 'unreadable' } };
    try {
      return { env: { status: 'ok', vars: parseEnvText(Buffer.from(raw, 'base64').toString('utf8')) } };
    } catch {
      return { env: { status: 'malformed' } };
    }
  },
  show: ({ probe, now, unseen }) => {
    const dir = probe.workerDir.path;
    if (probe.env.status === 'ok') {
      const worker = workerSide(probe.env.vars, dir);
      const line = `${worker.url?.origin ?? `SUPABASE_URL ${worker.urlProblem ?? 'missing'}`}; key ${worker.keyVar ?? '(none)'}: ${worker.key ? describeKey(worker.key, now) : 'missing'}`;
      return [check('worker-env', TITLE, worker.url && worker.key?.privileged ? 'ok' : 'warning', line)];
    }
    if (unseen('env')) return [notReceived('worker-env', TITLE)];
    return [
      check('worker-env', TITLE, 'failed', `${dir}/.env is ${probe.env.status}`, {
        fix: `make ${dir}/.env a file the worker's user can read, with SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY`,
      }),
    ];
  },
});
