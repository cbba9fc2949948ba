"""The README, checked by reading it: its error table and configuration table cover the code."""

from __future__ import annotations

import re
from pathlib import Path

from coupon.config import load_config
from coupon.domain.errors import all_error_classes

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_error_table_lists_every_code_with_its_status_and_class() -> None:
    rows = {
        m.group(1): (int(m.group(2)), m.group(3))
        for m in re.finditer(r"^\| `(E\d+)` \| (\d{3}) \| ([^|]+?) \|", README, re.M)
    }
    missing = [
        (c.code, c.status, c.__name__) for c in all_error_classes() if rows.get(c.code) != (c.status, c.__name__)
    ]
    assert not missing, f"README error table lacks or misstates: {missing}"


def test_the_hashing_settings_are_documented() -> None:
    cfg = load_config({"APP_ENV": "test"})
    for name in ("HASH_THREADS", "HASH_MAX_QUEUE", "HASH_NICE"):
        assert re.search(rf"^\| `{name}` \| `{cfg[name]}` \|", README, re.M), name
