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
    // the last assignment wins. The laptop shows these same values.
    String.raw`envval() { [ -f "$W/.env" ] || return 0; awk -v k="$1" '{ sub(/\r$/, ""); l = $0; sub(/^[ \t]*/, "", l); sub(/^export[ \t]+/, "", l); if (substr(l, 1, length(k)) != k) next; r = substr(l, length(k) + 1); if (r !~ /^[ \t]*=/) next; sub(/^[ \t]*=[ \t]*/, "", r); q = substr(r, 1, 1); e = index(substr(r, 2), q); if ((q == "\"" || q == "\047" || q == "\140") && e) v = substr(r, 2, e - 1); else { sub(/#.*/, "", r); sub(/[ \t]+$/, "", r); v = r } } END { printf "%s", v }' "$W/.env" 2>/dev/null; }`,
    // curl's config syntax: a quoted string, with \ and " escaped.
    String.raw`cfgq() { printf '%s' "$1" | sed 's/[\\"]/\\&/g'; }`,
    'reach() {',
    '  U=$(envval SUPABASE_URL | sed "s:/*$::"); K=$(envval SUPABASE_SERVICE_ROLE_KEY); [ -n "$K" ] || K=$(envval SUPABASE_SECRET_KEY)',
    '  if [ -z "$U" ]; then echo "skipped no-url";',
    '  elif ! command -v curl >/dev/null 2>&1; then echo "skipped no-curl";',
    '  else',
    '    case "$K" in eyJ*) H=1;; *) H=0;; esac',
    // The URL and the key reach curl through its config on stdin, never argv (a value starting with - would be
    // an option there, and argv is visible to every user of the host).
    `    { printf 'url = "%s/rest/v1/hd_ingestion_jobs?select=id&limit=1"\\n' "$(cfgq "$U")"; printf 'header = "apikey: %s"\\n' "$(cfgq "$K")"; [ "$H" = 1 ] && printf 'header = "Authorization: Bearer %s"\\n' "$(cfgq "$K")"; } | curl -sS -o /dev/null -K - --max-time ${o.reachTimeoutSeconds} -w 'http %{http_code} %{time_total}\\n' 2>&1 | tail -n 2`,
    '  fi',
    '}',
    // The request from Spark is the slowest part; it runs while the rest of the probe reads local files.
    'R=$(mktemp 2>/dev/null || echo "/tmp/hd-probe-$$"); reach >"$R" 2>&1 & RP=$!',
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
    o.reachCheck ? 'wait "$RP" 2>/dev/null; cat "$R" 2>/dev/null; rm -f "$R"' : 'echo "skipped not-asked"',
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
