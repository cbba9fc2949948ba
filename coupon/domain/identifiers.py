"""Identifiers: every id the service mints or accepts is a UUID in its canonical lower-case text form."""

from __future__ import annotations

import re

CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
