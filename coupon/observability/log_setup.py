"""Process logging: JSON lines on stderr (coupon.observability.log_format), level from LOG_LEVEL, for every process."""

from __future__ import annotations

import logging
import os
import sys

from flask import Flask

from coupon.observability.log_format import JsonFormatter

# Loggers that bring their own handlers (gunicorn, rq): their lines get the same JSON format, once.
_FOREIGN = ("gunicorn.error", "gunicorn.access", "rq.worker", "rq_scheduler.scheduler")
# The attribute that marks the root handler configure() installed.
_OURS = "_coupon_json"


def configure(level: str | None = None, proc: str | None = None, kafka_level: str | None = None) -> None:
    """Idempotent: one JSON handler on the root logger; foreign handlers re-formatted, not duplicated."""
    level = (level or os.environ.get("LOG_LEVEL") or "INFO").upper()
    formatter = JsonFormatter(proc)
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, _OURS, False)]
    if ours:
        for handler in ours:
            handler.setFormatter(formatter)
    else:
        # Handlers someone installed before us (gunicorn's dictConfig) write JSON too, from now on.
        for handler in root.handlers:
            handler.setFormatter(formatter)
        if not root.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(formatter)
            setattr(handler, _OURS, True)
            root.addHandler(handler)
    root.setLevel(level)
    for name in _FOREIGN:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if logger.propagate:
                logger.removeHandler(handler)  # its records reach the root handler anyway: no line twice
            else:
                handler.setFormatter(formatter)
    # kafka-python logs every refused reconnect at ERROR; an outage would drown the log.
    logging.getLogger("kafka").setLevel((kafka_level or os.environ.get("KAFKA_LOG_LEVEL") or "CRITICAL").upper())


def init_app(app: Flask, level: str, kafka_level: str) -> None:
    configure(level, kafka_level=kafka_level)
