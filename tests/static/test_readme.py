"""The docs, checked by reading them: the error table (docs/API.md) covers the code; the README stays a landing
page; every link resolves; figures that code states are quoted as the code states them (the configuration table:
test_configuration_doc.py)."""

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


def test_the_readme_is_a_landing_page() -> None:
    assert len(README.splitlines()) <= LANDING_PAGE_LINES, "detail belongs in docs/"


def _anchors(markdown: str) -> set[str]:
    """The ids GitHub gives a page's headings: lower case, punctuation dropped, spaces to dashes, repeats numbered."""
    seen: dict[str, int] = {}
    anchors = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not (m := re.match(r"#{1,6} (.+)", line)):
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def test_every_relative_link_of_the_readme_and_docs_resolves_to_a_file_and_heading() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "bench").glob("*.md"))]
    broken = []
    for page in pages:
        text = page.read_text()
        for target, anchor in re.findall(r"\]\((?!https?:|mailto:)([^)#\s]*)(?:#([^)\s]*))?\)", text):
            path = (page.parent / target).resolve() if target else page
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)} → {target}")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path.read_text()):
                broken.append(f"{page.relative_to(ROOT)} → {target}#{anchor}")
    assert not broken, f"links to a missing file or heading: {broken}"


def test_no_doc_splits_a_table_with_a_blank_line() -> None:
    for page in (ROOT / "docs").glob("*.md"):
        text = page.read_text()
        assert not re.search(r"^\|.*\|\n\n\| [^-]", text, re.M), f"{page.name}: a table row after a blank line"


def test_the_schemathesis_time_boxes_are_quoted_as_the_test_sets_them() -> None:
    source = (ROOT / "tests" / "integration" / "test_openapi.py").read_text()
    boxes = re.search(r'\[\("examples,coverage,fuzzing", (\d+), \d+\), \("stateful", (\d+), \d+\)\]', source)
    assert boxes, "test_openapi.py's parametrization moved: update this test"
    case_by_case, stateful = boxes.groups()
    for page in ("DEVELOPMENT.md", "SECURITY.md"):
        text = (ROOT / "docs" / page).read_text()
        assert f"for {case_by_case} s" in text and f"for {stateful} s" in text, page
        assert "120 s" not in text, f"{page} still quotes the old single 120 s box"


def test_no_doc_speaks_of_this_machine() -> None:
    # Readers run it on their own machine: a figure names the machine it was measured on.
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        assert not re.search(r"\bthis (?:2-core )?(?:machine|box|VM)\b", page.read_text()), page.name
