#!/usr/bin/env python3
"""
Renders each incident's worker log (test/diagnosis-corpus/incidents/*.json, its "log" field) with Python's own
logging module, into test/diagnosis-corpus/logs/<incident>.log, and records a hash of each spec in logs/index.json
(the unit test fails when an incident's log spec changed and its log was not rendered again).

    python3 test/diagnosis-corpus/render-logs.py

What is genuine here: the layout is what logging's formatters print (logging.BASIC_FORMAT, a timestamped format, a
JSON formatter as python-json-logger / structlog users write them, a colorlog-style ANSI formatter, a stream opened
with CRLF newlines), and every traceback is a file of test/fixtures/tracebacks/ (made by the real libraries, see its
README) attached as the record's exc_text, exactly where logging puts a formatted exception; an uncaught exception
("stderr") is written as Python's default excepthook prints it. Only the worker's own messages ("job … failed") come
from the incident. Time is fixed: the corpus's "now" is 2026-01-15T12:00:00Z and each record is `at` minutes before.

A log spec:
    { "layout": "iso" | "asctime" | "basic" | "json" | "ansi", "crlf": false,
      "records": [ { "at": 12, "level": "ERROR", "logger": "hd_worker", "msg": "job %s failed: %s",
                     "args": ["<id>", "timed out"], "job": "<id>", "exc": "<fixture>", "pid": 4242 },
                   { "at": 11, "stderr": "<fixture>" },
                   { "repeat": 5, "every": 0.5, "records": [ ...the latest repeat; each earlier one `every` minutes before ] } ] }
"""

import calendar
import hashlib
import json
import logging
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "tracebacks")
NOW = calendar.timegm((2026, 1, 15, 12, 0, 0))

ANSI = {
    "DEBUG": "\x1b[36m",
    "INFO": "\x1b[32m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;31m",
}


class UtcFormatter(logging.Formatter):
    converter = time.gmtime


class IsoFormatter(UtcFormatter):
    """`2026-01-15T11:58:00.123Z INFO message`, as the reference worker (and many Python workers) write it."""

    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"


class JsonFormatter(IsoFormatter):
    """One JSON object a line: {"ts", "level", "logger", "msg", "job_id", "exc_info"}."""

    def format(self, record):
        out = {
            "ts": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if getattr(record, "job_id", None):
            out["job_id"] = record.job_id
        if record.exc_text:
            out["exc_info"] = record.exc_text
        return json.dumps(out)


class AnsiFormatter(UtcFormatter):
    """colorlog's way: the record's start (time and level) wrapped in the level's colour."""

    def format(self, record):
        record.log_color = ANSI.get(record.levelname, "")
        record.reset = "\x1b[0m"
        return super().format(record)


def formatter(layout):
    if layout == "iso":
        return IsoFormatter("%(asctime)s %(levelname)s %(message)s")
    if layout == "asctime":
        return UtcFormatter("%(asctime)s %(levelname)s [%(name)s] %(message)s")
    if layout == "basic":
        return logging.Formatter(logging.BASIC_FORMAT)
    if layout == "json":
        return JsonFormatter()
    if layout == "ansi":
        return AnsiFormatter("%(log_color)s%(asctime)s %(levelname)-8s%(reset)s %(name)s: %(message)s")
    sys.exit(f"unknown layout {layout!r}")


def fixture(name):
    with open(os.path.join(FIXTURES, f"{name}.txt")) as f:
        return f.read()


def flatten(records, offset=0.0):
    for r in records:
        if "repeat" in r:
            # The group again every `every` minutes before its own `at`, oldest first.
            for i in reversed(range(r["repeat"])):
                yield from flatten(r["records"], offset + i * r.get("every", 1))
        else:
            yield {**r, "at": r["at"] + offset}


def render(spec, stream):
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(spec.get("layout", "iso")))
    for r in flatten(spec["records"]):
        created = NOW - r["at"] * 60
        if "stderr" in r:
            handler.flush()
            stream.write(fixture(r["stderr"]))
            continue
        level = logging.getLevelName(r.get("level", "INFO"))
        record = logging.LogRecord(
            r.get("logger", "hd_worker"), level, "worker.py", 0, r["msg"], tuple(r.get("args", [])), None
        )
        record.created = created
        record.msecs = int((created - int(created)) * 1000) + 0.0
        record.process = r.get("pid", 4242)
        if r.get("job"):
            record.job_id = r["job"]
        if r.get("exc"):
            record.exc_text = fixture(r["exc"]).rstrip("\n")
        handler.handle(record)
    handler.flush()


def canonical(spec):
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def main():
    incidents = os.path.join(HERE, "incidents")
    logs = os.path.join(HERE, "logs")
    os.makedirs(logs, exist_ok=True)
    index = {}
    for name in sorted(os.listdir(incidents)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(incidents, name)) as f:
            incident = json.load(f)
        spec = incident.get("log")
        if spec is None:
            continue
        stem = name[: -len(".json")]
        newline = "\r\n" if spec.get("crlf") else "\n"
        with open(os.path.join(logs, f"{stem}.log"), "w", newline=newline) as out:
            render(spec, out)
        index[stem] = hashlib.sha256(canonical(spec).encode()).hexdigest()
    for name in os.listdir(logs):
        if name.endswith(".log") and name[: -len(".log")] not in index:
            os.remove(os.path.join(logs, name))
    with open(os.path.join(logs, "index.json"), "w") as f:
        json.dump({"python": sys.version.split()[0], "specs": index}, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
