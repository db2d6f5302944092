/**
 * Failure B as a family: a job writes a structure that cannot be stored as JSON. Each regex is the wording of a real
 * encoder or server (test/fixtures/tracebacks/ holds them, made by the libraries themselves).
 */
import type { ErrorPattern } from './pattern.ts';

/** A structure the encoder refuses: circular, or an object it cannot serialise. */
const NOT_SERIALISABLE: readonly RegExp[] = [
  // Python json and simplejson (check_circular on), requests' InvalidJSONError around them.
  /Circular reference detected/i,
  // Python json with check_circular=False: the C encoder recurses until the interpreter stops it.
  /maximum recursion depth exceeded while encoding a JSON (?:object|array)/i,
  // orjson: JSONEncodeError (a TypeError) on a cycle or on a nesting deeper than it allows.
  /Recursion limit reached/i,
  // ujson on a cycle.
  /Maximum recursion level reached/i,
  // json/simplejson "Object of type X is …", orjson "Type is not JSON serializable: X", ujson "<X object …> is …".
  /is not JSON serializable/i,
  /Type is not JSON serializable/i,
  // Node's JSON.stringify.
  /Converting circular structure to JSON/i,
  /Do not know how to serialize a BigInt/i,
];

/** A structure too large to store: PostgreSQL's jsonb limits, and a gateway's 413 as the HTTP client reports it. */
const TOO_LARGE: readonly RegExp[] = [
  /total size of jsonb (?:object|array) elements exceeds the maximum/i,
  /string too long to represent as jsonb string/i,
  // requests "413 Client Error: Request Entity Too Large", httpx "'413 Request Entity Too Large'", Node's phrase.
  /\b(?:Payload|Request Entity|Content) Too Large\b/i,
];

/** A 413 from Storage is an upload too large for the bucket, not a structure written into a row. */
const STORAGE_URL = /\/storage\/v1\//i;

export const SERIALISATION_PATTERNS: readonly ErrorPattern[] = [
  {
    id: 'circular-metadata',
    title:
      'import_assets_jsonl writes a structure into metadata that cannot be stored (circular, not JSON-serialisable or too large)',
    severity: 'critical',
    cause:
      'the worker puts a whole parsed object (self-referencing, of a type the encoder does not know, or too large) into metadata.source_line, which JSON and jsonb cannot hold',
    fix: 'store only a small flat subset as source_line (line number, id, name: no nested objects, no self-references, no whole payloads), deploy the worker, then requeue the failed jobs',
    requeueSafe: true,
    jobType: 'import_assets_jsonl',
    fields: ['error', 'log'],
    error: [...NOT_SERIALISABLE, ...TOO_LARGE],
    log: [...NOT_SERIALISABLE, ...TOO_LARGE],
    unless: [STORAGE_URL],
  },
  {
    id: 'unstorable-structure',
    title: 'a job writes a structure that cannot be stored (circular, not JSON-serialisable or too large)',
    severity: 'critical',
    cause:
      'the worker hands the JSON encoder (or the database) a structure it cannot store: one that refers to itself, an object the encoder does not know, or more than a jsonb value holds; which field it writes is not known for this job type',
    fix: "find the write in the worker's code for this job type (the traceback in the log names it), store a small flat subset instead, deploy, then requeue the jobs yourself once a test job passes",
    requeueSafe: false,
    fields: ['error', 'log'],
    error: [...NOT_SERIALISABLE, ...TOO_LARGE],
    log: [],
    unless: [STORAGE_URL],
  },
];
