"""JSON log lines and the request id they carry. Standard library (and orjson) only: gunicorn's master loads this file
by path (importing the `coupon` package there would import kafka and redis before the workers patch)."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from contextvars import ContextVar

import orjson

# The id of the request (or Kafka event) being handled, per greenlet/thread; None outside one.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}

# Defence in depth: whatever a library puts in a message, these never reach a log line.
_SECRETS = re.compile(
    r"(?i)(bearer\s+)[^\s\"',]+"  # Authorization: Bearer <token>
    r"|eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]+"  # a JWT anywhere
    r"|(://[^:/@\s]+:)[^@\s]+(@)"  # user:password@ in URLs
    r"|((?:password|passwd|secret|token|authorization)[\w-]*[\"']?\s*[=:]\s*[\"']?(?:bearer\s+)?)[^\s\"',&}]+"
)


def _redact_match(m: re.Match[str]) -> str:
    if m.group(1):
        return m.group(1) + "[REDACTED]"
    if m.group(2):
        return m.group(2) + "[REDACTED]" + m.group(3)
    if m.group(4):
        return m.group(4) + "[REDACTED]"
    return "[REDACTED]"


def redact(text: str) -> str:
    return _SECRETS.sub(_redact_match, text)


def process_name() -> str:
    """A short name of this process for the `proc` field: gunicorn, consumer, rq, flask, schedule..."""
    path = sys.argv[0] if sys.argv and sys.argv[0] else "python"
    name = os.path.basename(path)
    name = name[:-3] if name.endswith(".py") else name
    if name == "__main__":  # python -m package
        name = os.path.basename(os.path.dirname(path))
    return "cli" if name == "flask" else name


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, proc, pid, msg, request_id, extra fields, exc."""

    def __init__(self, proc: str | None = None) -> None:
        super().__init__()
        self.proc = proc or process_name()

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "proc": self.proc,
            "pid": record.process,
            "msg": redact(record.getMessage()),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            doc["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            doc["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            doc["exc"] = redact(record.exc_text)
        return orjson.dumps(doc, default=str).decode()
