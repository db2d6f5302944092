#!/usr/bin/env python3
"""
A small hd_ingestion_jobs worker in Python, for the end-to-end corpus (test/integration/python-worker-corpus.test.ts):
started in the sandbox's Spark home instead of the reference worker, it polls the sandbox's REST API with urllib as a
production worker would, claims the oldest queued job (compare-and-set on status and attempts), runs it through real
Python code paths and writes the outcome back. Every failure is the library's own: json.dumps of a structure that
refers to itself, json.loads of a bad JSONL line, requests' raise_for_status on a missing Storage object, urllib's
connection refused, a write to a full device, an import of a module that is not installed.

    cd ~/srv/hd-worker && python3 ~/srv/hd-worker/worker.py      (reads ./.env, appends ./logs/worker.log)

.env: SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_SECRET_KEY), WORKER_POLL_MS, and the switches that put a
bug or a broken dependency in place:
    WORKER_SOURCE_LINE=full        import_assets_jsonl keeps the whole parsed line as metadata.source_line (failure B)
    WORKER_THUMBNAIL_DEBUG=full    generate_thumbnails keeps the parent record in each variant's debug (a cycle)
    WORKER_PLUGINS=a,b             modules imported at start (a deploy that forgot one: ModuleNotFoundError)
    EMBEDDINGS_URL=http://…        where embed_assets posts its batches
    WORKER_CACHE_FILE=/path        where cache_model writes its model cache
    WORKER_LOG_LAYOUT=iso|basic|json|ansi
"""

import importlib
import json
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

CWD = os.getcwd()
LOG_FILE = os.path.join(CWD, "logs", "worker.log")
SELECT = "id,account_id,job_type,status,attempts,payload,debug,created_at"


def read_env(path):
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            key = key.strip().removeprefix("export ").strip()
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out[key] = value
    return out


ENV = read_env(os.path.join(CWD, ".env"))
URL = ENV.get("SUPABASE_URL", "").rstrip("/")
KEY = ENV.get("SUPABASE_SERVICE_ROLE_KEY") or ENV.get("SUPABASE_SECRET_KEY") or ""
POLL_SECONDS = int(ENV.get("WORKER_POLL_MS") or "500") / 1000


class IsoFormatter(logging.Formatter):
    converter = time.gmtime
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"


class JsonFormatter(IsoFormatter):
    def format(self, record):
        out = {"ts": self.formatTime(record), "level": record.levelname, "logger": record.name, "msg": record.getMessage()}
        if getattr(record, "job_id", None):
            out["job_id"] = record.job_id
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out)


class AnsiFormatter(IsoFormatter):
    COLORS = {"INFO": "\x1b[32m", "WARNING": "\x1b[33m", "ERROR": "\x1b[31m"}

    def format(self, record):
        record.log_color = self.COLORS.get(record.levelname, "")
        record.reset = "\x1b[0m"
        return super().format(record)


def setup_logging():
    os.makedirs(os.path.dirname(LOG_FILE), exist_ok=True)
    handler = logging.FileHandler(LOG_FILE)
    layout = ENV.get("WORKER_LOG_LAYOUT", "iso")
    if layout == "basic":
        handler.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
    elif layout == "json":
        handler.setFormatter(JsonFormatter())
    elif layout == "ansi":
        handler.setFormatter(AnsiFormatter("%(log_color)s%(asctime)s %(levelname)-8s%(reset)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(IsoFormatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return logging.getLogger("hd_worker")


log = setup_logging()


def now_iso():
    return datetime.now(timezone.utc).isoformat()


def rest(method, path, body=None, prefer=None, raw=None):
    """One PostgREST request with urllib (`body` as JSON, or `raw` text already encoded); returns the parsed body."""
    headers = {"apikey": KEY, "Accept": "application/json"}
    if KEY.startswith("eyJ"):
        headers["Authorization"] = f"Bearer {KEY}"
    data = raw.encode() if raw is not None else None if body is None else json.dumps(body).encode()
    if data is not None:
        headers["Content-Type"] = "application/json"
    if prefer:
        headers["Prefer"] = prefer
    req = urllib.request.Request(f"{URL}/rest/v1/{path}", data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=15) as res:
        text = res.read().decode()
    return json.loads(text) if text.strip() else None


# --- the jobs ----------------------------------------------------------------------------------------------------


def download(path):
    """The job's input from Supabase Storage, with requests (as supabase-py's storage client and most workers do)."""
    import requests

    res = requests.get(f"{URL}/storage/v1/object/{path}", headers={"apikey": KEY, "Authorization": f"Bearer {KEY}"}, timeout=15)
    res.raise_for_status()
    return res.text


def import_assets_jsonl(job):
    payload = job.get("payload") or {}
    text = payload["jsonl"] if "jsonl" in payload else download(payload["source"])
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        obj = json.loads(line)
        metadata = {"line": number}
        if ENV.get("WORKER_SOURCE_LINE") == "full":
            # Failure B: the whole parsed object, which the asset's metadata refers back to.
            obj["metadata"] = metadata
            metadata["source_line"] = obj
        else:
            metadata["source_line"] = {"line": number, "id": obj.get("id"), "name": obj.get("name")}
        rows.append({"job_id": job["id"], "account_id": job.get("account_id"), "name": str(obj.get("name") or f"line-{number}"), "metadata": metadata})
    if rows:
        body = json.dumps(rows)
        rest("POST", "hd_assets", raw=body, prefer="return=minimal")
    return len(rows)


def generate_thumbnails(job):
    payload = job.get("payload") or {}
    record = {"asset": payload.get("asset", "unknown"), "variants": []}
    for size in (64, 256, 1024):
        variant = {"size": size}
        if ENV.get("WORKER_THUMBNAIL_DEBUG") == "full":
            variant["parent"] = record
        record["variants"].append(variant)
    debug = json.dumps({"thumbnails": record})
    return len(debug) and len(record["variants"])


def embed_assets(job):
    payload = job.get("payload") or {}
    batches = int(payload.get("batches", 1))
    for i in range(batches):
        log.info("job %s embedding batch %d/%d", job["id"], i + 1, batches, extra={"job_id": job["id"]})
        if payload.get("seconds_per_batch"):
            time.sleep(float(payload["seconds_per_batch"]))
        if ENV.get("EMBEDDINGS_URL"):
            req = urllib.request.Request(ENV["EMBEDDINGS_URL"], data=b"{}", headers={"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=5).close()
    return batches


def cache_model(job):
    with open(ENV.get("WORKER_CACHE_FILE", os.path.join(CWD, "cache.bin")), "wb", buffering=0) as f:
        f.write(b"\0" * 4096)
    return 1


HANDLERS = {
    "import_assets_jsonl": import_assets_jsonl,
    "generate_thumbnails": generate_thumbnails,
    "embed_assets": embed_assets,
    "cache_model": cache_model,
}


# --- the loop ------------------------------------------------------------------------------------------------------


def finish(job, status, error, started_at, assets):
    debug = job.get("debug") if isinstance(job.get("debug"), dict) else {}
    body = {
        "status": status,
        "error": error,
        "finished_at": now_iso(),
        "debug": {**debug, "last_run": {"worker_pid": os.getpid(), "started_at": started_at, "assets": assets}},
    }
    rest("PATCH", f"hd_ingestion_jobs?id=eq.{job['id']}&status=eq.running", body, prefer="return=representation")


def poll_once():
    try:
        rows = rest("GET", f"hd_ingestion_jobs?select={SELECT}&status=in.(queued,pending)&order=created_at.asc&limit=1")
    except (urllib.error.URLError, OSError) as e:
        log.error("poll failed: %s", e)
        return
    log.info("poll queued=%d", len(rows))
    if not rows or stopping:
        return
    seen = rows[0]
    attempts = int(seen.get("attempts") or 0)
    started_at = now_iso()
    claimed = rest(
        "PATCH",
        f"hd_ingestion_jobs?id=eq.{seen['id']}&status=eq.{seen['status']}&attempts=eq.{attempts}",
        {"status": "running", "started_at": started_at, "finished_at": None, "attempts": attempts + 1},
        prefer="return=representation",
    )
    if not claimed:
        return
    job = claimed[0]
    log.info("job %s claimed", job["id"], extra={"job_id": job["id"]})
    try:
        handler = HANDLERS.get(job["job_type"])
        assets = handler(job) if handler else 0
    except Exception as e:  # noqa: BLE001 - every failure of a job is written to its row
        log.exception("job %s failed: %s", job["id"], e, extra={"job_id": job["id"]})
        finish(job, "failed", f"{type(e).__name__}: {e}", started_at, 0)
        return
    finish(job, "done", None, started_at, assets)
    log.info("job %s done assets=%d", job["id"], assets, extra={"job_id": job["id"]})


stopping = False


def on_signal(signum, _frame):
    global stopping
    if not stopping:
        log.info("worker stopping signal=%s", signal.Signals(signum).name)
    stopping = True


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("worker starting pid=%d url=%s", os.getpid(), URL)
    for name in filter(None, ENV.get("WORKER_PLUGINS", "").split(",")):
        # Uncaught on purpose: a missing dependency ends the process with Python's own traceback on stderr.
        importlib.import_module(name.strip())
    while not stopping:
        try:
            poll_once()
        except Exception as e:  # noqa: BLE001 - a poll's failure must not end the worker
            log.error("poll failed: %s", e)
        deadline = time.monotonic() + POLL_SECONDS
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.05)
    log.info("worker stopped pid=%d", os.getpid())


if __name__ == "__main__":
    main()
    sys.exit(0)
