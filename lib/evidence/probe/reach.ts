/**
 * The worker's own request to its SUPABASE_URL, made from Spark with the key in its .env. Started in the background
 * before every other section (it is the slowest part) and collected last.
 */

import { GATEWAY_STATUS_NAMES } from '../../io/db-failure.ts';
import { check } from '../../io/steps.ts';
import { defineSection, type ScriptOptions } from './section.ts';
import type { SparkEvidence } from './spark-evidence.ts';

const TITLE = 'Reach Supabase from Spark';

function reachSetup(o: ScriptOptions): string[] {
  if (!o.reachCheck) return [];
  return [
    // Values are read without sourcing the file (it is data, not a script) and stay in shell variables:
    // the key reaches curl through its config on stdin, never through argv.
    // Read as dotenv (the laptop's parser) reads it: `export`, quotes, a comment after an unquoted value, CRLF;
    // the last assignment wins. The laptop shows these same values. One line each, for the names given, in one read.
    String.raw`envvals() { [ -f "$W/.env" ] || return 0; awk -v keys="$*" 'BEGIN { n = split(keys, ks, " ") } { sub(/\r$/, ""); l = $0; sub(/^[ \t]*/, "", l); sub(/^export[ \t]+/, "", l); for (i = 1; i <= n; i++) { k = ks[i]; if (substr(l, 1, length(k)) != k) continue; r = substr(l, length(k) + 1); if (r !~ /^[ \t]*=/) continue; sub(/^[ \t]*=[ \t]*/, "", r); q = substr(r, 1, 1); e = index(substr(r, 2), q); if ((q == "\"" || q == "\047" || q == "\140") && e) v[k] = substr(r, 2, e - 1); else { sub(/#.*/, "", r); sub(/[ \t]+$/, "", r); v[k] = r } } } END { for (i = 1; i <= n; i++) print v[ks[i]] }' < "$W/.env" 2>/dev/null; }`,
    // curl's config syntax: a quoted string, with \ and " escaped (as `sed 's/[\\"]/\\&/g'` would), into Q.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's own ${…} expansions, in a bash line
    'cfgq() { local b=\'\\\' q=\'"\'; Q=${1//"$b"/"$b$b"}; Q=${Q//"$q"/"$b$q"}; }',
    'reach() {',
    '  { IFS= read -r U; IFS= read -r K; IFS= read -r K2; } < <(envvals SUPABASE_URL SUPABASE_SERVICE_ROLE_KEY SUPABASE_SECRET_KEY)',
    // The URL without its trailing slashes; the service-role key, else the secret key.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's own ${…} expansions, in a bash line
    '  while [ "${U%/}" != "$U" ]; do U=${U%/}; done; [ -n "$K" ] || K=$K2',
    '  if [ -z "$U" ]; then echo "skipped no-url";',
    '  elif ! command -v curl >/dev/null 2>&1; then echo "skipped no-curl";',
    '  else',
    '    case "$K" in eyJ*) H=1;; *) H=0;; esac',
    '    cfgq "$U"; UQ=$Q; cfgq "$K"; KQ=$Q',
    // The URL and the key reach curl through its config on stdin, never argv (a value starting with - would be
    // an option there, and argv is visible to every user of the host).
    `    C=$( { printf 'url = "%s/rest/v1/hd_ingestion_jobs?select=id&limit=1"\\n' "$UQ"; printf 'header = "apikey: %s"\\n' "$KQ"; [ "$H" = 1 ] && printf 'header = "Authorization: Bearer %s"\\n' "$KQ"; } | curl -sS -o /dev/null -K - --max-time ${o.reachTimeoutSeconds} -w 'http %{http_code} %{time_total}\\n' 2>&1 )`,
    // Its last two lines (an error, then the -w line), as `| tail -n 2` would keep them.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's own ${…} expansions, in a bash line
    "    case \"$C\" in *$'\\n'*) L=${C%$'\\n'*}; L=${L##*$'\\n'}; C=${C##*$'\\n'}; printf '%s\\n%s\\n' \"$L\" \"$C\";; ?*) printf '%s\\n' \"$C\";; esac",
    '  fi',
    '}',
    // The request from Spark is the slowest part; it runs while the rest of the probe reads local files. Its answer
    // comes back through a pipe, read when the reach section prints it: no file to clean up, even when the probe is
    // cut short. (Its stdin is /dev/null, as a job started with & has.)
    'exec 3< <(reach </dev/null 2>&1)',
  ];
}

function parseReach(text: string, arrived: boolean): SparkEvidence['reach'] {
  const r = text.trim();
  const http = /^http (\d{3}) ([\d.]+)$/m.exec(r);
  if (http) {
    const code = Number(http[1]);
    const curlError = /^curl: \(\d+\)\s*(.*)$/m.exec(r)?.[1];
    if (code === 0) return { status: 'failed', message: curlError || 'no HTTP answer' };
    return { status: code >= 200 && code < 300 ? 'ok' : 'http-error', httpStatus: code, seconds: Number(http[2]) };
  }
  if (r.startsWith('skipped ')) return { status: 'skipped', reason: r.slice(8) };
  if (!arrived) return { status: 'skipped', reason: 'not reached' };
  return { status: 'failed', message: r.split('\n')[0]?.replace(/^curl: \(\d+\)\s*/, '') || 'no answer' };
}

export const reachSection = defineSection({
  name: 'reach',
  // curl's absence is the check's own answer (skipped no-curl), not an unknown section.
  outputs: { reach: [] },
  runs: 'last',
  setup: reachSetup,
  script: (o) => [
    'section reach',
    // All of the request's answer: read until the pipe closes (the request is done), as it came.
    o.reachCheck ? 'A=; IFS= read -r -d "" -u 3 A; printf "%s" "$A"; exec 3<&-' : 'echo "skipped not-asked"',
  ],
  parse: (out): Pick<SparkEvidence, 'reach'> => ({ reach: parseReach(out.text('reach'), out.has('reach')) }),
  show: ({ probe: { reach } }) => {
    switch (reach.status) {
      case 'ok':
        return [
          check(
            'spark-reach',
            TITLE,
            'ok',
            `HTTP ${reach.httpStatus} in ${Math.round(reach.seconds * 1000)} ms, with the worker's key`,
          ),
        ];
      case 'http-error':
        return [
          check(
            'spark-reach',
            TITLE,
            'warning',
            // The gateway's own answers are named (522: Connection timed out, 540: project paused).
            `HTTP ${reach.httpStatus}${GATEWAY_STATUS_NAMES[reach.httpStatus] ? ` (${GATEWAY_STATUS_NAMES[reach.httpStatus]})` : ''} with the worker's key`,
          ),
        ];
      case 'failed':
        return [check('spark-reach', TITLE, 'failed', reach.message)];
      case 'skipped':
        return reach.reason === 'no-curl'
          ? [
              check(
                'spark-reach',
                TITLE,
                'warning',
                "curl is not installed on Spark: the worker's own request to Supabase was not tried",
                { fix: 'install curl on Spark (sudo apt install curl) to include this check' },
              ),
            ]
          : [check('spark-reach', TITLE, 'skipped', reach.reason)];
    }
  },
});
