"""The settings table of docs/CONFIGURATION.md, generated from coupon.settings.Settings (`make config-doc`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, get_args

from pydantic import SecretStr

from coupon.settings import Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "CONFIGURATION.md"
# The generated table sits between these markers; the rest of the page is hand-written prose.
BEGIN = "<!-- settings table: generated from coupon/settings.py by `make config-doc`; edit the class, not this -->"
END = "<!-- end of the settings table -->"
HEADER = ("| variable | default | accepts | meaning |", "|---|---|---|---|")


def _extra(name: str) -> dict[str, Any]:
    extra = Settings.model_fields[name].json_schema_extra
    return extra if isinstance(extra, dict) else {}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def default_of(name: str) -> str:
    if "doc_default" in _extra(name):
        return str(_extra(name)["doc_default"])
    default = Settings.model_fields[name].get_default()
    if isinstance(default, SecretStr):
        default = default.get_secret_value()
    return "empty" if default in ("", None) else f"`{default}`"


def bounds_of(name: str) -> str:
    """What a field accepts: its range, its choices, or the words given with its pattern or check."""
    if "doc_bounds" in _extra(name):
        return str(_extra(name)["doc_bounds"])
    field = Settings.model_fields[name]
    choices = get_args(field.annotation)
    if choices and all(isinstance(c, str) for c in choices):
        return " / ".join(f"`{c}`" for c in choices)
    ge = next((m.ge for m in field.metadata if getattr(m, "ge", None) is not None), None)
    le = next((m.le for m in field.metadata if getattr(m, "le", None) is not None), None)
    if ge is not None and le is not None:
        return f"{ge}–{le}"
    return f"≥ {ge}" if ge is not None else ""


def row(name: str) -> str:
    description = Settings.model_fields[name].description or ""
    return f"| `{name.upper()}` | {_cell(default_of(name))} | {_cell(bounds_of(name))} | {_cell(description)} |"


def table() -> str:
    return "\n".join([BEGIN, *HEADER, *(row(name) for name in Settings.model_fields), END])


def documented(text: str) -> str:
    """The generated part of a page: from BEGIN through END (empty if the markers are missing)."""
    start, end = text.find(BEGIN), text.find(END)
    return text[start : end + len(END)] if 0 <= start < end else ""


def rewrite(text: str) -> str:
    current = documented(text)
    if not current:
        raise SystemExit(f"{DOC}: the markers of the settings table are missing")
    return text.replace(current, table())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coupon.settings_doc", description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"rewrite the table in {DOC.name} (else print it)")
    args = parser.parse_args(argv)
    if not args.write:
        print(table())
        return 0
    DOC.write_text(rewrite(DOC.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
