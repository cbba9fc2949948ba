"""The docs, checked by reading them: the error table (docs/API.md) covers the code; the README stays a landing page
(the configuration table: test_configuration_doc.py)."""

from __future__ import annotations

import re
from pathlib import Path

from coupon.domain.errors import all_error_classes

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
API = (ROOT / "docs" / "API.md").read_text()
LANDING_PAGE_LINES = 250


def test_the_error_table_lists_every_code_with_its_status_and_class() -> None:
    rows = {
        m.group(1): (int(m.group(2)), m.group(3))
        for m in re.finditer(r"^\| `(E\d+)` \| (\d{3}) \| ([^|]+?) \|", API, re.M)
    }
    missing = [
        (c.code, c.status, c.__name__) for c in all_error_classes() if rows.get(c.code) != (c.status, c.__name__)
    ]
    assert not missing, f"docs/API.md error table lacks or misstates: {missing}"


def test_the_readme_is_a_landing_page_whose_links_resolve() -> None:
    assert len(README.splitlines()) <= LANDING_PAGE_LINES, "detail belongs in docs/"
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), f"README links to a missing {target}"
