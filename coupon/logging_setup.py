"""Process logging: level from LOG_LEVEL, one line per record."""
from __future__ import annotations

import logging
import os

from flask import Flask


def configure(level: str | None = None) -> None:
    level = (level or os.environ.get("LOG_LEVEL", "INFO")).upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
    # kafka-python logs every refused reconnect at ERROR; an outage would drown the log.
    logging.getLogger("kafka").setLevel(os.environ.get("KAFKA_LOG_LEVEL", "CRITICAL").upper())


def init_app(app: Flask) -> None:
    configure()
